package app

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/evmlb/evmlb/internal/evmtest"
	"github.com/evmlb/evmlb/internal/jsonrpc"
	"github.com/evmlb/evmlb/internal/platform/memplatform"
)

// answerRig is the balancer in front of nodes a and b of the chain "eth", for FuzzAnswers: built once per fuzzing
// process, its nodes switched to the faults an input asks for before each request. Both are at the same height, so
// the balancer takes turns between them.
type answerRig struct {
	host *memplatform.Host
	app  *App
	a, b *evmtest.Node
}

func newAnswerRig(tb testing.TB) *answerRig {
	a, b := evmtest.NewNode(tb, "a", 1, 100), evmtest.NewNode(tb, "b", 1, 100)
	r := &answerRig{a: a, b: b, host: memplatform.New(map[string]string{
		"UPSTREAM_CONFIG": configJSON(upstream{"eth", "a", a.URL}, upstream{"eth", "b", b.URL}),
	}, nil, t0)}
	r.app = New(r.host.Platform())
	r.host.Bind(r.app)
	// Health checks: the table knows both heights and the chain id (eth_chainId is answered locally).
	r.app.plane.Flush(tb.Context())
	r.host.Clock().Advance(10 * time.Second)
	r.app.plane.Flush(tb.Context())
	r.post(`{"jsonrpc":"2.0","id":0,"method":"eth_blockNumber"}`) // the served head: 100
	return r
}

// The faults an input's knobs switch on, one bit each.
const (
	knobANotes       = 1 << iota // a answers notifications (with a null id), as some providers do
	knobABehind                  // a says a head 3 below the one served
	knobAMissing                 // a lacks the data of eth_call and eth_getBalance: batches are repaired on b
	knobBNotes                   // b answers notifications
	knobA500                     // a answers HTTP 500: every read goes to b
	knobBUnsupported             // b does not know eth_getBalance (-32601)
	knobBBehind                  // b says a head 3 below the one served
)

func (r *answerRig) set(knobs uint8) {
	r.a.SetAnswerNotifications(knobs&knobANotes != 0)
	r.a.SetHeadOffset(0)
	if knobs&knobABehind != 0 {
		r.a.SetHeadOffset(-3)
	}
	r.a.SetMissingData()
	if knobs&knobAMissing != 0 {
		r.a.SetMissingData("eth_call", "eth_getBalance")
	}
	r.b.SetAnswerNotifications(knobs&knobBNotes != 0)
	r.a.SetFault(evmtest.None)
	if knobs&knobA500 != 0 {
		r.a.SetFault(evmtest.Status500)
	}
	r.b.SetHeadOffset(0)
	if knobs&knobBBehind != 0 {
		r.b.SetHeadOffset(-3)
	}
	r.b.SetUnsupported()
	if knobs&knobBUnsupported != 0 {
		r.b.SetUnsupported("eth_getBalance")
	}
}

func (r *answerRig) post(body string) (int, string) {
	req := httptest.NewRequest(http.MethodPost, "/eth", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	r.host.ServeHTTP(rec, req)
	b, _ := io.ReadAll(rec.Result().Body)
	return rec.Code, string(b)
}

// checkAnswer says what is wrong with the answer (status, out) to the client's body, "" when nothing is: every
// answer is valid JSON (or, for notifications only, 204 and nothing); a request that parses gets its own ids back:
// a single call its id, a batch one element per id it holds (and, beside them, only null ids answering its
// notifications); a notification alone gets nothing or an object with a null id.
func checkAnswer(body []byte, status int, out string) string {
	req, perr := jsonrpc.Parse(body, 100)
	if out == "" {
		if status != http.StatusNoContent || perr != nil || slices.ContainsFunc(req.Calls, func(c jsonrpc.Call) bool { return !c.Notification() }) {
			return fmt.Sprintf("an empty answer (%d) to a request that is not notifications only", status)
		}
		return ""
	}
	if !json.Valid([]byte(out)) {
		return "the answer is not JSON"
	}
	if perr != nil {
		return ""
	}
	var ids []string // the client's ids, compacted
	notes := false
	for _, c := range req.Calls {
		if c.Notification() {
			notes = true
			continue
		}
		ids = append(ids, compact(c.ID))
	}
	idOf := func(elem json.RawMessage) (string, bool) {
		var m map[string]json.RawMessage
		if json.Unmarshal(elem, &m) != nil {
			return "", false
		}
		id, ok := m["id"]
		if !ok {
			return "(none)", true
		}
		return compact(id), true
	}
	if !req.Batch {
		id, ok := idOf(json.RawMessage(out))
		switch {
		case !ok:
			return "a single call answered with something else than an object"
		case len(ids) == 1 && id != ids[0]:
			return fmt.Sprintf("id %s, the client's is %s", id, ids[0])
		case len(ids) == 0 && id != "null" && id != "(none)":
			return fmt.Sprintf("a notification answered with the id %s", id)
		}
		return ""
	}
	if len(ids) == 0 { // notifications only: an error object with a null id, or the upstream's null-id answers
		return ""
	}
	var elems []json.RawMessage
	if json.Unmarshal([]byte(out), &elems) != nil {
		return "a batch holding calls answered with something else than an array"
	}
	var got []string
	for _, e := range elems {
		id, ok := idOf(e)
		if !ok {
			return "a batch element that is not an object"
		}
		if !slices.Contains(ids, id) && !(notes && id == "null") {
			return fmt.Sprintf("an element with the id %s, not the client's (%v)", id, ids)
		}
		got = append(got, id)
	}
	for _, id := range ids {
		if !slices.Contains(got, id) {
			return fmt.Sprintf("no element for the id %s", id)
		}
	}
	return ""
}

func compact(raw json.RawMessage) string {
	var b bytes.Buffer
	if json.Compact(&b, raw) != nil {
		return string(raw)
	}
	return b.String()
}

// FuzzAnswers: whatever the client sends and whatever the upstreams' faults (knobs), every answer of the request
// path (parse and deny errors, chain id answered locally, the monotonic head, failover, batch repair) is valid
// JSON and carries the client's own ids (checkAnswer). scripts/fuzz.sh (make fuzz, CI) runs it.
func FuzzAnswers(f *testing.F) {
	for _, s := range []struct {
		body  string
		knobs uint8
	}{
		{`{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber"}`, 0},
		// Issue 18: `"id":,` (whichever of a and b the balancer asks).
		{`{"jsonrpc":"2.0","method":"eth_blockNumber"}`, knobANotes | knobABehind | knobBNotes | knobBBehind},
		{`{"jsonrpc":"2.0","id":"x","method":"eth_blockNumber","params":[]}`, knobABehind},
		{`{"jsonrpc":"2.0","method":"eth_blockNumber"}`, knobABehind},
		{`[{"jsonrpc":"2.0","method":"eth_getBalance","params":["0x1","latest"]},{"jsonrpc":"2.0","id":7,"method":"eth_getBalance","params":["0x0","latest"]}]`, knobAMissing | knobANotes | knobBNotes},
		{`[{"jsonrpc":"2.0","id":1,"method":"eth_call","params":[]},{"jsonrpc":"2.0","id":2,"method":"eth_getBalance","params":["0x0","latest"]}]`, knobAMissing | knobBUnsupported},
		{`[{"jsonrpc":"2.0","id":1,"method":"eth_chainId"},{"jsonrpc":"2.0","id":"2","method":"net_version"}]`, 0},
		{`{"jsonrpc":"2.0","id":null,"method":"eth_chainId"}`, 0},
		{`{"jsonrpc":"2.0","method":"eth_chainId"}`, knobANotes},
		{`{"jsonrpc":"2.0","method":"admin_peers"}`, 0},
		{`[{"jsonrpc":"2.0","method":"admin_peers"},{"jsonrpc":"2.0","id":3,"method":"eth_call"}]`, 0},
		{`[{"jsonrpc":"2.0","method":"eth_call"}]`, knobA500},
		{`[{"jsonrpc":"2.0","id":1.0,"method":"eth_call"},{"jsonrpc":"2.0","id":-0,"method":"eth_call"}]`, knobA500 | knobBNotes},
		{`{"jsonrpc":"2.0","id":1,"method":"eth_call"`, 0},
		{`[]`, 0},
		{`[1,{"jsonrpc":"2.0","id":1,"method":"eth_call"}]`, 0},
	} {
		f.Add([]byte(s.body), s.knobs)
	}
	r := newAnswerRig(f)
	f.Fuzz(func(t *testing.T, body []byte, knobs uint8) {
		r.set(knobs)
		status, out := r.post(string(body))
		if p := checkAnswer(body, status, out); p != "" {
			t.Fatalf("%s\nrequest (knobs %06b): %s\nanswer %d: %s", p, knobs, body, status, out)
		}
	})
}
