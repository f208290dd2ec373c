package app

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
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
		if json.Unmarshal(elem, &m) != nil || m == nil {
			return "", false
		}
		// A JSON-RPC 2.0 response: "jsonrpc":"2.0", and a result or an error (an error null is none), not both.
		var v string
		e, hasErr := m["error"]
		hasErr = hasErr && string(e) != "null"
		if _, hasResult := m["result"]; json.Unmarshal(m["jsonrpc"], &v) != nil || v != "2.0" || hasErr == hasResult {
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
			return "a single call answered with something else than a JSON-RPC 2.0 response object"
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
			return "a batch element that is not a JSON-RPC 2.0 response object"
		}
		if !slices.Contains(ids, id) && !(notes && id == "null") {
			return fmt.Sprintf("an element with the id %s, not the client's (%v)", id, ids)
		}
		got = append(got, id)
	}
	for _, id := range ids {
		want, n := 0, 0
		for _, x := range ids {
			if x == id {
				want++
			}
		}
		for _, x := range got {
			if x == id {
				n++
			}
		}
		if n != want {
			return fmt.Sprintf("%d elements for the id %s, the client sent it %d times", n, id, want)
		}
	}
	return ""
}

// compact is an id as a value: a number as an exact fraction (1, 1.0 and 10e-1 are one id, as the balancer
// compares them: an upstream may re-encode a number), a string as its decoded text, quoted; anything else
// compacted.
func compact(raw json.RawMessage) string {
	var b bytes.Buffer
	if json.Compact(&b, raw) != nil {
		return string(raw)
	}
	s := b.String()
	if r, ok := new(big.Rat).SetString(s); ok && s != "" && (s[0] == '-' || s[0] >= '0' && s[0] <= '9') {
		return r.RatString()
	}
	var str string
	if s != "" && s[0] == '"' && json.Unmarshal(raw, &str) == nil {
		q, _ := json.Marshal(str)
		return string(q)
	}
	return s
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

// rawAnswer is what a node answers in FuzzUpstreamAnswers: the fuzzer's bytes, with "@0" to "@9" replaced by the
// ids of the calls the node was sent (null for a notification, for a call beyond them), so that inputs reach
// answers with the right ids, the wrong ones, too few and too many, as well as anything else.
func rawAnswer(answer []byte) func([]byte) []byte {
	return func(sent []byte) []byte {
		req, err := jsonrpc.Parse(sent, 1000)
		if err != nil {
			return answer
		}
		var out []byte
		for i := 0; i < len(answer); i++ {
			if answer[i] == '@' && i+1 < len(answer) && answer[i+1] >= '0' && answer[i+1] <= '9' {
				id := json.RawMessage("null")
				if n := int(answer[i+1] - '0'); n < len(req.Calls) && req.Calls[n].ID != nil {
					id = req.Calls[n].ID
				}
				out = append(out, id...)
				i++
				continue
			}
			out = append(out, answer[i])
		}
		return out
	}
}

// The upstreams' raw answers an input's mode switches on.
const (
	modeARaw   = 1 << iota // a answers the input's bytes
	modeBRaw               // b too: no good upstream
	modeRepair             // a lacks eth_getBalance's data: a batch is repaired on b
)

// FuzzUpstreamAnswers: whatever an upstream answers (the fuzzer's bytes, see rawAnswer) to whatever the client
// sends, every path of the request (single, batch, notifications, batch repair, failover, the balancer's own
// errors, the monotonic head) answers valid JSON-RPC 2.0 with the client's own ids (checkAnswer), and an answer
// that does not answer the calls never reaches the client. scripts/fuzz.sh (make fuzz, CI) runs it.
func FuzzUpstreamAnswers(f *testing.F) {
	r := func(id string) string { return `{"jsonrpc":"2.0","id":` + id + `,"result":"0x1"}` }
	single := `{"jsonrpc":"2.0","id":7,"method":"eth_call","params":[]}`
	batch := `[{"jsonrpc":"2.0","id":1,"method":"eth_call","params":[]},{"jsonrpc":"2.0","id":2,"method":"eth_getBalance","params":["0x0","latest"]},{"jsonrpc":"2.0","id":"3","method":"eth_call","params":[]}]`
	mixed := `[{"jsonrpc":"2.0","method":"eth_call","params":[]},{"jsonrpc":"2.0","id":1.0,"method":"eth_getBalance","params":["0x0","latest"]}]`
	for _, s := range []struct {
		body, answer string
		mode         uint8
	}{
		{single, r("@0"), modeARaw},
		{single, r("999999"), modeARaw},
		{single, r("999999"), modeARaw | modeBRaw},
		{single, "[" + r("@0") + "]", modeARaw},
		{single, "{\"jsonrpc\":\"2.0\",\"id\":@0,\"result\":\"\xff\"}", modeARaw},
		{single, `{"jsonrpc":"2.0","id":@0,"result":` + strings.Repeat("[", 300) + strings.Repeat("]", 300) + `}`, modeARaw},
		{single, `{"jsonrpc":"2.0","id":@0,"result":` + strings.Repeat("[", 10000) + strings.Repeat("]", 10000) + `}`, modeARaw | modeBRaw},
		{batch, r("@0"), modeARaw},
		{batch, "[" + r("@0") + "," + r("@1") + "]", modeARaw},
		{batch, "[" + r("@0") + "," + r("@1") + "," + r("@2") + "," + r("424242") + "]", modeARaw},
		{batch, "[" + r("@0") + "," + r("@0") + "," + r("@0") + "]", modeARaw | modeBRaw},
		{batch, "[" + r("@2") + "," + r("@1") + "," + r("@0") + "]", modeARaw | modeBRaw},
		{batch, "[" + r("@0") + "]", modeRepair | modeBRaw},
		{batch, "[" + r("@0") + "," + r("@1") + "]", modeRepair | modeBRaw},
		{mixed, "[" + r("@0") + "," + r("@1") + "]", modeARaw},
		{mixed, "[" + r("1") + "]", modeARaw | modeBRaw},
		{`{"jsonrpc":"2.0","method":"eth_call","params":[]}`, r("@0"), modeARaw},
		{`{"jsonrpc":"2.0","method":"eth_call","params":[]}`, ``, modeARaw | modeBRaw},
		{`{"jsonrpc":"2.0","id":5,"method":"eth_blockNumber"}`, `{"jsonrpc":"2.0","id":@0,"result":"0x5"}`, modeARaw | modeBRaw},
		{`{"jsonrpc":"2.0","method":"eth_blockNumber"}`, `{"jsonrpc":"2.0","id":null,"result":"0x5"}`, modeARaw},
	} {
		f.Add([]byte(s.body), []byte(s.answer), s.mode)
	}
	rig := newAnswerRig(f)
	f.Fuzz(func(t *testing.T, body, answer []byte, mode uint8) {
		rig.set(0)
		rig.a.SetRawAnswer(nil)
		rig.b.SetRawAnswer(nil)
		if mode&modeARaw != 0 {
			rig.a.SetRawAnswer(rawAnswer(answer))
		}
		if mode&modeBRaw != 0 {
			rig.b.SetRawAnswer(rawAnswer(answer))
		}
		if mode&modeRepair != 0 {
			rig.a.SetMissingData("eth_call", "eth_getBalance")
		}
		type result struct {
			status int
			out    string
		}
		done := make(chan result, 1)
		go func() {
			status, out := rig.post(string(body))
			done <- result{status, out}
		}()
		var res result
		select {
		case res = <-done:
		case <-time.After(10 * time.Second): // the fuzzing engine reports no hang by itself
			t.Fatalf("no answer after 10 s\nrequest (mode %03b): %s\nupstream answer: %.300q", mode, body, answer)
		}
		if p := checkAnswer(body, res.status, res.out); p != "" {
			t.Fatalf("%s\nrequest (mode %03b): %s\nupstream answer: %.300q\nanswer %d: %.300s", p, mode, body, answer, res.status, res.out)
		}
	})
}
