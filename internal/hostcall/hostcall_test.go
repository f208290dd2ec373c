package hostcall

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/evmlb/evmlb/internal/contract"
	"github.com/evmlb/evmlb/internal/platform"
)

// fakeHost records the messages of one call and lets the test answer them.
type fakeHost struct {
	mu  sync.Mutex
	ops []Op
	got chan Op
}

func newFakeHost() *fakeHost { return &fakeHost{got: make(chan Op, 100)} }

func (h *fakeHost) deliver(op Op) {
	h.mu.Lock()
	h.ops = append(h.ops, op)
	h.mu.Unlock()
	h.got <- op
}

func (h *fakeHost) next(t *testing.T) Op {
	t.Helper()
	select {
	case op := <-h.got:
		return op
	case <-time.After(5 * time.Second):
		t.Fatal("no message from the call")
		return Op{}
	}
}

func TestDoAndComplete(t *testing.T) {
	h := newFakeHost()
	c := New("", h.deliver)
	ctx := With(context.Background(), c)
	done := make(chan Result, 1)
	go func() {
		r, err := c.Do(ctx, Op{Kind: contract.OpSleep, Sleep: time.Second})
		if err != nil {
			t.Error(err)
		}
		done <- r
	}()
	op := h.next(t)
	if op.Kind != contract.OpSleep || op.ID == 0 || op.Sleep != time.Second {
		t.Fatalf("op = %+v", op)
	}
	if err := c.Complete(op.ID, Result{Value: "x"}); err != nil {
		t.Fatal(err)
	}
	if r := <-done; r.Value != "x" {
		t.Fatalf("result = %+v", r)
	}
	if err := c.Complete(op.ID, Result{}); err == nil {
		t.Fatal("a second result for the same operation was accepted")
	}
	if err := c.Complete(99, Result{}); err == nil {
		t.Fatal("a result for an operation never issued was accepted")
	}
}

func TestCanceledDoAbortsAndCallWaitsForTheResult(t *testing.T) {
	h := newFakeHost()
	c := New("", h.deliver)
	ctx, cancel := context.WithCancel(With(context.Background(), c))
	errc := make(chan error, 1)
	go func() {
		_, err := c.Do(ctx, Op{Kind: contract.OpFetch, URL: "http://x"})
		errc <- err
	}()
	fetch := h.next(t)
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
	abort := h.next(t)
	if abort.Kind != contract.OpAbort || abort.Target != fetch.ID {
		t.Fatalf("abort = %+v, want target %d", abort, fetch.ID)
	}
	idle := c.Finish("")
	select {
	case <-idle:
		t.Fatal("the call ended while the host still ran an operation")
	case <-time.After(20 * time.Millisecond):
	}
	if err := c.Complete(fetch.ID, Result{Err: contract.ErrAborted}); err != nil {
		t.Fatal(err)
	}
	<-idle
	if done := h.next(t); done.Kind != contract.OpDone {
		t.Fatalf("last message = %+v", done)
	}
	if _, err := c.Do(context.Background(), Op{Kind: contract.OpSleep}); !errors.Is(err, ErrEnded) {
		t.Fatalf("Do after the end: %v", err)
	}
}

func TestBackgroundKeepsTheCallOpen(t *testing.T) {
	h := newFakeHost()
	c := New("", h.deliver)
	ctx, cancel := context.WithCancel(With(context.Background(), c))
	release := make(chan struct{})
	var sawCanceled bool
	if !c.Go(ctx, func(bctx context.Context) {
		<-release
		sawCanceled = bctx.Err() != nil
	}) {
		t.Fatal("Go refused")
	}
	cancel() // the handler's context ends with its answer; background work goes on
	c.Respond(200, http.Header{"A": {"b"}}, []byte("hi"))
	c.Respond(500, nil, nil)
	idle := c.Finish("failed")
	if c.Go(ctx, func(context.Context) {}) {
		t.Fatal("Go accepted work after Finish")
	}
	if r := h.next(t); r.Kind != contract.OpResponse || r.Status != 200 || string(r.Body) != "hi" {
		t.Fatalf("response = %+v", r)
	}
	select {
	case <-idle:
		t.Fatal("ended before the background work returned")
	case <-time.After(20 * time.Millisecond):
	}
	close(release)
	<-idle
	if sawCanceled {
		t.Fatal("the background context was canceled with the handler's")
	}
	if d := h.next(t); d.Kind != contract.OpDone || d.Err != "failed" {
		t.Fatalf("done = %+v", d)
	}
	if len(h.got) != 0 {
		t.Fatalf("messages after done: %d (a second response?)", len(h.got))
	}
}

func TestPostAndStorageOverTheCall(t *testing.T) {
	h := newFakeHost()
	c := New("obj-1", h.deliver)
	ctx, cancel := context.WithTimeout(With(context.Background(), c), time.Minute)
	defer cancel()
	go func() {
		for op := range h.got {
			switch op.Kind {
			case contract.OpFetch:
				if op.Timeout <= 0 || op.Timeout > time.Minute || string(op.Body) != "ping" || op.Header.Get("Content-Type") != "application/json" || op.Method != http.MethodPost || op.Limit != 100 {
					c.Complete(op.ID, Result{Err: contract.ErrInvalid, Message: "bad op"})
					continue
				}
				if strings.HasSuffix(op.URL, "/slow") {
					c.Complete(op.ID, Result{Err: contract.ErrTimeout})
					continue
				}
				if strings.HasSuffix(op.URL, "/big") {
					c.Complete(op.ID, Result{Err: contract.ErrTooLarge})
					continue
				}
				c.Complete(op.ID, Result{Status: 200, Header: http.Header{"X": {"1"}}, Body: []byte("pong")})
			case contract.OpStorage:
				c.Complete(op.ID, Result{Value: op.Call + ":" + op.Key, Found: true})
			}
		}
	}()
	status, b, err := Post(ctx, "http://node/rpc", []byte("ping"), 100)
	if err != nil || status != 200 || string(b) != "pong" {
		t.Fatalf("answer %d %q %v", status, b, err)
	}
	if _, _, err := Post(ctx, "http://node/slow", []byte("ping"), 100); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a host timeout is %v, want DeadlineExceeded", err)
	}
	if _, _, err := Post(ctx, "http://node/big", []byte("ping"), 100); !errors.Is(err, platform.ErrTooLarge) {
		t.Fatalf("an answer over the limit is %v, want platform.ErrTooLarge", err)
	}
	v, ok, err := Storage{Object: "obj-1"}.Get(ctx, "k")
	if err != nil || !ok || v != "get:k" {
		t.Fatalf("Get = %q %v %v", v, ok, err)
	}
	if _, _, err := (Storage{Object: "obj-2"}).Get(ctx, "k"); err == nil {
		t.Fatal("a call used another object's storage")
	}
	if _, _, err := Post(context.Background(), "http://node/rpc", []byte("ping"), 100); !errors.Is(err, errNoCall) {
		t.Fatalf("I/O without a call: %v", err)
	}
}

func TestRespondAndFinish(t *testing.T) {
	h := newFakeHost()
	c := New("", h.deliver)
	<-c.RespondAndFinish(200, nil, []byte("a"))
	if m := h.next(t); m.Kind != contract.OpResponse || !m.Last {
		t.Fatalf("an idle call's answer: %+v, want the last message", m)
	}
	if len(h.got) != 0 {
		t.Fatal("a message after the last one")
	}

	h = newFakeHost()
	c = New("", h.deliver)
	release := make(chan struct{})
	c.Go(context.Background(), func(context.Context) { <-release })
	idle := c.RespondAndFinish(200, nil, []byte("b"))
	if m := h.next(t); m.Kind != contract.OpResponse || m.Last {
		t.Fatalf("with background work: %+v, want a response that is not the last", m)
	}
	close(release)
	<-idle
	if m := h.next(t); m.Kind != contract.OpDone {
		t.Fatalf("then %+v, want done", m)
	}
}

// WithTimeout's context: the earlier deadline of its own and its parent's, Err once that passed or after cancel,
// and its parent's cancellation (Done and Err) passed through.
func TestWithTimeout(t *testing.T) {
	parent, cancelParent := context.WithCancel(context.Background())
	ctx, cancel := WithTimeout(parent, time.Hour)
	if dl, ok := ctx.Deadline(); !ok || time.Until(dl) < 59*time.Minute {
		t.Fatalf("deadline %v %v", dl, ok)
	}
	if ctx.Err() != nil {
		t.Fatal(ctx.Err())
	}
	inner, cancelInner := WithTimeout(ctx, 2*time.Hour)
	if dl, _ := inner.Deadline(); time.Until(dl) > time.Hour {
		t.Errorf("a child's deadline %v is later than its parent's", dl)
	}
	cancelInner()
	if inner.Err() != context.Canceled || ctx.Err() != nil {
		t.Errorf("after cancel: %v, parent %v", inner.Err(), ctx.Err())
	}
	cancelParent()
	select {
	case <-ctx.Done():
	default:
		t.Error("Done did not follow the parent's cancellation")
	}
	if ctx.Err() != context.Canceled {
		t.Errorf("Err after the parent's cancellation: %v", ctx.Err())
	}
	cancel()
	past, cancelPast := WithTimeout(context.Background(), -time.Second)
	defer cancelPast()
	if past.Err() != context.DeadlineExceeded {
		t.Errorf("past deadline: %v", past.Err())
	}
}
