package proxy

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/evmlb/evmlb/internal/jsonrpc"
)

// hostileAnswers are answers an upstream may send that do not answer the client's calls (issue 18), by name: each
// a function of the request body it got.
var hostileAnswers = map[string]func([]byte) []byte{
	"wrong id":          fixed(`{"jsonrpc":"2.0","id":999999,"result":"0x1"}`),
	"array for single":  fixed(`[{"jsonrpc":"2.0","id":1,"result":"0x1"}]`),
	"object for batch":  fixed(`{"jsonrpc":"2.0","id":1,"result":"0x1"}`),
	"short batch":       fixed(`[{"jsonrpc":"2.0","id":1,"result":"0x1"},{"jsonrpc":"2.0","id":2,"result":"0x1"}]`),
	"long batch":        fixed(`[{"jsonrpc":"2.0","id":1,"result":"0x1"},{"jsonrpc":"2.0","id":2,"result":"0x1"},{"jsonrpc":"2.0","id":3,"result":"0x1"},{"jsonrpc":"2.0","id":424242,"result":"0x1"}]`),
	"duplicated batch":  fixed(`[{"jsonrpc":"2.0","id":1,"result":"0x1"},{"jsonrpc":"2.0","id":1,"result":"0x1"},{"jsonrpc":"2.0","id":1,"result":"0x1"}]`),
	"invalid UTF-8":     fixed("{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":\"\xff\"}"),
	"nested 10,001":     fixed(`{"jsonrpc":"2.0","id":1,"result":` + strings.Repeat("[", 10000) + strings.Repeat("]", 10000) + `}`),
	"no jsonrpc member": fixed(`{"id":1,"result":"0x1"}`),
}

func fixed(s string) func([]byte) []byte { return func([]byte) []byte { return []byte(s) } }

// batch3's calls differ: identical ones would be sent once (the answer cache's coalescing), as a smaller batch.
const batch3 = `[{"jsonrpc":"2.0","id":1,"method":"eth_call","params":[{"to":"0x1"}]},{"jsonrpc":"2.0","id":2,"method":"eth_call","params":[{"to":"0x2"}]},{"jsonrpc":"2.0","id":3,"method":"eth_call","params":[{"to":"0x3"}]}]`

// TestBadAnswerNeverPassedOn: an answer that does not answer the calls sent is the upstream's fault, bad_answer
// (or non_json when it is not JSON-RPC 2.0): a read goes to the next upstream, whose answer the client gets with
// its own ids; with every upstream so, the client gets -32070; a write is not sent again (-32071).
func TestBadAnswerNeverPassedOn(t *testing.T) {
	for name, hostile := range hostileAnswers {
		for _, body := range []string{read, batch3} {
			if name == "object for batch" && body == read { // an answer for one call with id 1: a good one
				continue
			}
			class := "bad_answer"
			if name == "invalid UTF-8" || name == "nested 10,001" || name == "no jsonrpc member" && body == read {
				class = "non_json" // not JSON-RPC 2.0; an object for a batch is bad_answer first
			}
			t.Run(name+"/"+body[:1], func(t *testing.T) {
				r := newRig(t, "")
				r.nodes["a"].SetRawAnswer(hostile)
				status, out := r.serve(body)
				if status != 200 {
					t.Fatalf("answered %d %s", status, out)
				}
				if body == read {
					if node, _ := answer(t, out); node != "b" || !strings.Contains(out, `"id":1 ,`) {
						t.Errorf("answer %s, want b's with id 1", out)
					}
				} else {
					var elems []json.RawMessage
					if json.Unmarshal([]byte(out), &elems) != nil || len(elems) != 3 || !strings.Contains(out, `"node":"b"`) || strings.Contains(out, `"node":"a"`) {
						t.Errorf("answer %s, want b's three elements", out)
					}
				}
				if got := outcomes(r.report()); got != "a:"+class+" b:ok" {
					t.Errorf("reported %q, want a:%s b:ok", got, class)
				}
			})
		}
	}
	t.Run("every upstream", func(t *testing.T) {
		r := newRig(t, "")
		for _, n := range r.nodes {
			n.SetRawAnswer(hostileAnswers["wrong id"])
		}
		status, out := r.serve(read)
		if _, code := answer(t, out); status != 503 || code != jsonrpc.ErrNoUpstream.Code || !strings.Contains(out, `"id":1,`) {
			t.Errorf("answered %d %s, want 503 -32070 with id 1", status, out)
		}
	})
	t.Run("a write", func(t *testing.T) {
		r := newRig(t, "")
		r.nodes["a"].SetRawAnswer(hostileAnswers["wrong id"])
		status, out := r.serve(write)
		if _, code := answer(t, out); status != 502 || code != jsonrpc.ErrUpstreamFailed.Code || !strings.Contains(out, "bad_answer") {
			t.Errorf("answered %d %s, want 502 -32071 bad_answer", status, out)
		}
		if got := r.calls(); got != "a=1 b=0 c=0" {
			t.Errorf("calls %s: a write was sent again", got)
		}
	})
	t.Run("an error with the id null", func(t *testing.T) {
		// JSON-RPC gives an error the id null when the node could not read the call's id: an answer, written
		// with the client's id.
		r := newRig(t, "")
		r.nodes["a"].SetRawAnswer(fixed(`{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"invalid id","data":[1]}}`))
		status, out := r.serve(read)
		if want := `{"jsonrpc":"2.0","id":1,"error":{"code":-32600,"message":"invalid id","data":[1]}}`; status != 200 || out != want {
			t.Errorf("answered %d %s, want 200 %s", status, out, want)
		}
		if got := r.calls(); got != "a=1 b=0 c=0" {
			t.Errorf("calls %s: the error is an answer", got)
		}
	})
	t.Run("a repair batch answered badly", func(t *testing.T) {
		r := newRig(t, "")
		r.nodes["a"].SetMissingData("eth_getBalance")
		r.nodes["b"].SetRawAnswer(fixed(`[{"jsonrpc":"2.0","id":424242,"result":"0x1"}]`))
		status, out := r.serve(`[{"jsonrpc":"2.0","id":1,"method":"eth_call","params":[]},{"jsonrpc":"2.0","id":2,"method":"eth_getBalance","params":["0x0","latest"]}]`)
		if status != 200 || strings.Contains(out, "424242") || !strings.Contains(out, `"node":"c"`) {
			t.Errorf("answered %d %s, want the second element from c", status, out)
		}
	})
}
