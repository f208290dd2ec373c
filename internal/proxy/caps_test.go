package proxy

import (
	"context"
	"net/http/httptest"
	"testing"

	"github.com/evmlb/evmlb/internal/balance"
	"github.com/evmlb/evmlb/internal/jsonrpc"
	"github.com/evmlb/evmlb/internal/retry"
)

const traceBlock = `{"jsonrpc":"2.0","id":1,"method":"trace_block","params":["0x10"]}`

// A method an upstream answered as not offered goes straight to the others after, in this isolate at once and
// in every isolate once the chain object has it (issue 20).
func TestMethodLackLearned(t *testing.T) {
	r := newRig(t, noCache(""))
	r.nodes["a"].SetUnsupported("trace_block")
	if _, body := r.serve(traceBlock); true {
		if node, code := answer(t, body); node != "b" || code != 0 {
			t.Fatalf("first trace_block: node %q code %d, want b's answer: %s", node, code, body)
		}
	}
	if got := r.calls(); got != "a=1 b=1 c=0" {
		t.Fatalf("first: %s", got)
	}
	for range 3 {
		if _, body := r.serve(traceBlock); true {
			if node, _ := answer(t, body); node != "b" {
				t.Fatalf("later trace_block answered by %q: %s", node, body)
			}
		}
	}
	if got := r.calls(); got != "a=1 b=4 c=0" {
		t.Fatalf("a asked again for a method it lacks: %s", got)
	}
	ex := r.report()
	if len(ex.Learned) != 1 || ex.Learned[0].Upstream != "a" || ex.Learned[0].Lack != retry.LacksMethod {
		t.Fatalf("learned reported %+v, want a lacking trace_block once", ex.Learned)
	}
	// The three calls routed without a are counted (evmlb_upstream_skipped_total), the first one is not.
	if mu := ex.Metrics.Upstreams["a"]; mu == nil || mu.Skipped["method"] != 3 || mu.Skipped["state"] != 0 {
		t.Fatalf("skips of a counted %+v, want method 3", mu)
	}
	for _, l := range ex.Learned {
		l.Apply(r.obj.table) // the stand-in applies outcomes and seen heights only
	}
	other := New(r.host.Platform(), r.cfg, r.settings)
	other.Flush(context.Background()) // its first snapshot
	before := r.nodes["a"].Calls()
	req := traceBlock
	rec := r.serveWith(other, req)
	if node, _ := answer(t, rec); node != "b" || r.nodes["a"].Calls() != before {
		t.Fatalf("another isolate sent trace_block to a (answer %s)", rec)
	}
}

// A read of old state that an upstream failed with "header not found" far below its head goes to the others after.
func TestOldStateLackLearned(t *testing.T) {
	r := newRig(t, noCache(""))
	for i, n := range []string{"a", "b", "c"} { // a highest: first
		r.nodes[n].SetHeight(uint64(1000 - i))
		r.obj.table.Report(n, balance.Report{At: t0, Height: uint64(1000 - i), ChainID: 1})
	}
	r.nodes["a"].SetMissingData("eth_getBalance")
	old := `{"jsonrpc":"2.0","id":1,"method":"eth_getBalance","params":["0x0000000000000000000000000000000000000001","0x10"]}`
	for range 4 {
		if _, body := r.serve(old); true {
			if _, code := answer(t, body); code != 0 {
				t.Fatalf("old read failed: %s", body)
			}
		}
	}
	if got := r.nodes["a"].Calls(); got != 1 {
		t.Fatalf("a asked %d times for state it proved it lacks", got)
	}
	// Near the head a is asked as before.
	recent := `{"jsonrpc":"2.0","id":1,"method":"eth_getBalance","params":["0x0000000000000000000000000000000000000001","0x3e0"]}`
	r.nodes["a"].SetMissingData()
	r.serve(recent)
	if got := r.nodes["a"].Calls(); got != 2 {
		t.Fatalf("a not asked for recent state: %d calls", got)
	}
}

// serveWith sends body to plane (another isolate's) as a client's request for "eth" and returns the answer.
func (r *rig) serveWith(plane *Plane, body string) string {
	r.t.Helper()
	req, perr := jsonrpc.Parse([]byte(body), 100)
	if perr != nil {
		r.t.Fatalf("%s: %v", body, perr)
	}
	rec := httptest.NewRecorder()
	plane.Serve(context.Background(), rec, "eth", req, []byte(body))
	return rec.Body.String()
}
