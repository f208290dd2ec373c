package hostcall

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/evmlb/evmlb/internal/contract"
)

// answer runs fn on ctx's call and answers its one operation with the host's result text and body, as jsbind
// does (the waiter's kind decides how the text reads).
func answer[T any](t *testing.T, h *fakeHost, c *Call, fn func() (T, error), text string, body []byte) (Op, T, error) {
	t.Helper()
	type out struct {
		v   T
		err error
	}
	ch := make(chan out, 1)
	go func() {
		v, err := fn()
		ch <- out{v, err}
	}()
	op := h.next(t)
	kind, ok := c.Kind(op.ID)
	if !ok {
		t.Fatalf("operation %d is not waiting", op.ID)
	}
	if err := c.Complete(op.ID, DecodeResult(kind, text, body)); err != nil {
		t.Fatal(err)
	}
	o := <-ch
	return op, o.v, o.err
}

// TestSocketOps: each socket call's wire form, and its result read back (a socket list is not a storage list).
func TestSocketOps(t *testing.T) {
	h := newFakeHost()
	c := New("obj", h.deliver)
	ctx := With(context.Background(), c)

	op, n, err := answer(t, h, c, func() (int, error) { return Send(ctx, []byte("hi"), "a", "b") }, `["","","2"]`, nil)
	if text, body := EncodeOp(op); err != nil || n != 2 || string(body) != "hi" ||
		!strings.Contains(string(text), `"op":"socket"`) || !strings.Contains(string(text), `"call":"send","tags":["a","b"]`) {
		t.Fatalf("send: %s %q %d %v", text, body, n, err)
	}
	op, _, _ = answer(t, h, c, func() (int, error) { return SendAll(ctx, nil) }, `["","","0"]`, nil)
	if text, body := EncodeOp(op); !strings.Contains(string(text), `"call":"send","all":true`) || body == nil {
		t.Fatalf("send all: %s %v (a send always has a body)", text, body)
	}
	op, n, err = answer(t, h, c, func() (int, error) { return CloseSocket(ctx, "a", 4001, "bye") }, `["","","1"]`, nil)
	if text, _ := EncodeOp(op); err != nil || n != 1 || !strings.Contains(string(text), `"call":"close","tag":"a","code":4001,"reason":"bye"`) {
		t.Fatalf("close: %s %d %v", text, n, err)
	}
	op, _, err = answer(t, h, c, func() (int, error) { return Attach(ctx, "a", "x") }, `["","","0"]`, nil)
	if text, _ := EncodeOp(op); err != nil || !strings.Contains(string(text), `"call":"attach","tag":"a","attachment":"x"`) {
		t.Fatalf("attach: %s %v", text, err)
	}
	_, list, err := answer(t, h, c, func() ([]Socket, error) { return ListSockets(ctx) }, `["","","a","x","b",""]`, nil)
	if err != nil || len(list) != 2 || list[0] != (Socket{Tag: "a", Attachment: "x"}) || list[1] != (Socket{Tag: "b"}) {
		t.Fatalf("list: %+v %v", list, err)
	}
	_, _, err = answer(t, h, c, func() ([]Socket, error) { return ListSockets(ctx) }, `["invalid","not here"]`, nil)
	var he *Error
	if !errors.As(err, &he) || he.Kind != contract.ErrInvalid {
		t.Fatalf("a refused socket operation: %v", err)
	}

	// Limits are checked before anything is delivered.
	for _, err := range []error{
		func() error { _, err := CloseSocket(ctx, "a", 1005, ""); return err }(),
		func() error { _, err := CloseSocket(ctx, "a", 1000, strings.Repeat("r", 124)); return err }(),
		func() error {
			_, err := Attach(ctx, "a", strings.Repeat("x", contract.MaxAttachmentBytes+1))
			return err
		}(),
		Accept(ctx, "", ""),
		Accept(ctx, strings.Repeat("t", contract.MaxTagBytes+1), ""),
	} {
		if !errors.Is(err, ErrSocketLimit) {
			t.Errorf("not refused: %v", err)
		}
	}
}

// TestUpgradeAnswersTheCall: after an upgrade succeeded the call's own answer goes nowhere; Accept makes the
// answer a 101 without a body, whatever the handler wrote.
func TestUpgradeAnswersTheCall(t *testing.T) {
	h := newFakeHost()
	c := New("", h.deliver)
	ctx := With(context.Background(), c)
	op, status, err := answer(t, h, c, func() (int, error) {
		return Upgrade(ctx, contract.BindingSubs, "c1", "/accept", http.Header{"Upgrade": {"websocket"}})
	}, `["","","101"]`, nil)
	if text, body := EncodeOp(op); err != nil || status != 101 || body != nil ||
		!strings.Contains(string(text), `"op":"upgrade"`) || !strings.Contains(string(text), `"namespace":"SUBS","name":"c1","path":"/accept"`) {
		t.Fatalf("upgrade: %s %d %v", text, status, err)
	}
	<-c.RespondAndFinish(200, nil, []byte("ignored"))
	if op := h.next(t); op.Kind != contract.OpDone {
		t.Fatalf("after an upgrade the call sent %+v, want done alone", op)
	}

	h2 := newFakeHost()
	c2 := New("obj", h2.deliver)
	if err := Accept(With(context.Background(), c2), "tag", "att"); err != nil {
		t.Fatal(err)
	}
	<-c2.RespondAndFinish(200, nil, []byte("dropped"))
	op = h2.next(t)
	text, body := EncodeOp(op)
	if op.Status != 101 || body != nil || !strings.Contains(string(text), `"accept":["tag","att"]`) {
		t.Fatalf("accept: %s %q", text, body)
	}
}

func TestParseSocketEvent(t *testing.T) {
	base := []string{"", "subs", "obj", "inst", "", "", "", "0", "t", "att"}
	ev, err := ParseSocketEvent(append(append([]string{contract.CallMessage}, base[1:]...), contract.FrameBinary))
	if err != nil || ev.Kind != contract.CallMessage || !ev.Binary || ev.Tag != "t" || ev.Attachment != "att" || ev.Instance != "inst" {
		t.Fatalf("%+v %v", ev, err)
	}
	ev, err = ParseSocketEvent(append(append([]string{contract.CallClose}, base[1:]...), "1006", "gone", ""))
	if err != nil || ev.Code != contract.CloseAbnormal || ev.Reason != "gone" || ev.Clean {
		t.Fatalf("%+v %v", ev, err)
	}
	for _, f := range [][]string{base[:9], append([]string{contract.CallMessage}, base[1:]...), append([]string{contract.CallClose}, base[1:]...),
		append(append([]string{contract.CallFetch}, base[1:]...), "x")} {
		if _, err := ParseSocketEvent(f); err == nil {
			t.Errorf("%q read", f)
		}
	}
}
