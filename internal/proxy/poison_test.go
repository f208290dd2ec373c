package proxy

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/evmlb/evmlb/internal/evmtest"
	"github.com/evmlb/evmlb/internal/jsonrpc"
)

const traceCall = `{"jsonrpc":"2.0","id":%s,"method":"debug_traceCall","params":[{"to":"0x0000000000000000000000000000000000000004","data":"0x00"},"latest",{"tracer":"callTracer"}]}`

func traceBody(id string) string { return strings.Replace(traceCall, "%s", id, 1) }

// poisonCount is the poison counter summed over what the isolate reported.
func (r *rig) poisonCount() uint64 {
	r.host.Wait()
	r.report()
	var n uint64
	for _, ex := range r.obj.exchanges() {
		if ex.Metrics != nil {
			n += ex.Metrics.Poison
		}
	}
	return n
}

// A request whose connection the best upstream drops, and which then finds that upstream gone (its probe is
// refused), is a poison request: it is not sent to the next upstream, which would go down too; the client gets
// -32072; the same calls (another id) are refused again without an attempt; the counter counts both.
func TestPoisonRequestNotSentOn(t *testing.T) {
	r := newRig(t, "")
	for _, n := range []string{"a", "b", "c"} {
		r.nodes[n].SetDrop(true, "debug_traceCall") // each node would die of it
	}
	status, body := r.serve(traceBody("7"))
	if status != 502 || !strings.Contains(body, `"code":-32072`) || !strings.Contains(body, `"id":7`) {
		t.Fatalf("answered %d %s, want 502 with -32072 and the client's id", status, body)
	}
	if !r.nodes["a"].Stopped() {
		t.Fatal("a did not stop: the test's node did not do what it should")
	}
	for _, n := range []string{"b", "c"} {
		if slices.Contains(r.nodes[n].Methods(), "debug_traceCall") || r.nodes[n].Stopped() {
			t.Errorf("%s received the poison request (stopped %v)", n, r.nodes[n].Stopped())
		}
	}
	before := r.calls()
	status, body = r.serve(traceBody(`"again"`))
	if status != 502 || !strings.Contains(body, `"code":-32072`) || !strings.Contains(body, "refused again") || !strings.Contains(body, `"id":"again"`) {
		t.Errorf("the same calls again: %d %s, want 502 -32072 refused again", status, body)
	}
	if after := r.calls(); after != before {
		t.Errorf("the repeat reached upstreams: %s, then %s", before, after)
	}
	// Other requests are served by the upstreams left.
	if status, body := r.serve(`{"jsonrpc":"2.0","id":1,"method":"eth_getBalance","params":["0x0000000000000000000000000000000000000001","latest"]}`); status != 200 || !strings.Contains(body, `"node":"b"`) {
		t.Errorf("a read after the poison request: %d %s, want b's answer", status, body)
	}
	if n := r.poisonCount(); n != 2 {
		t.Errorf("poison counter %d, want 2 (found, refused again)", n)
	}
	// After poisonMemory the calls are tried again (on b, now first: a is gone).
	r.host.Clock().Advance(poisonMemory + time.Second)
	r.nodes["b"].SetDrop(false)
	if status, body := r.serve(traceBody("8")); status != 200 || !strings.Contains(body, `"node":"b"`) {
		t.Errorf("after %v: %d %s, want b's answer", poisonMemory, status, body)
	}
}

// A connection dropped by an upstream that then answers its probe is transient: the request fails over as before,
// and the client gets the next upstream's answer.
func TestTransientDropFailsOver(t *testing.T) {
	r := newRig(t, "")
	r.nodes["a"].SetDrop(false, "debug_traceCall")
	status, body := r.serve(traceBody("7"))
	if status != 200 || !strings.Contains(body, `"node":"b"`) {
		t.Fatalf("answered %d %s, want b's answer", status, body)
	}
	if !slices.Contains(r.nodes["a"].Methods(), "debug_traceCall") {
		t.Error("a never received the request: no drop exercised")
	}
	if n := r.poisonCount(); n != 0 {
		t.Errorf("poison counter %d, want 0", n)
	}
	// And again: nothing was remembered.
	if status, body := r.serve(traceBody("8")); status != 200 || !strings.Contains(body, `"node":"b"`) {
		t.Errorf("again: %d %s, want b's answer", status, body)
	}
}

// A plain state read cannot crash a node: when its upstream drops it and goes away, it fails over as before
// (workerd reports a refused connection as a dropped one, so this is also how a refused upstream behaves there).
func TestDropOfPlainReadFailsOver(t *testing.T) {
	for method, body := range map[string]string{
		"eth_getBalance": `{"jsonrpc":"2.0","id":1,"method":"eth_getBalance","params":["0x0000000000000000000000000000000000000001","latest"]}`,
		// eth_call fails over too: in workerd a node that died on its own looks like one the call killed.
		"eth_call": `{"jsonrpc":"2.0","id":1,"method":"eth_call","params":[{"to":"0x0000000000000000000000000000000000000004","data":"0x00"},"latest"]}`,
	} {
		r := newRig(t, "")
		r.nodes["a"].SetDrop(true, method)
		status, body := r.serve(body)
		if status != 200 || !strings.Contains(body, `"node":"b"`) {
			t.Fatalf("%s: answered %d %s, want b's answer", method, status, body)
		}
		if !r.nodes["a"].Stopped() {
			t.Errorf("%s: a did not stop: no drop exercised", method)
		}
	}
}

// Traces are never hedged: the hedge would hand a request that is crashing its node to the next upstream.
func TestTracesNotHedged(t *testing.T) {
	for body, want := range map[string]bool{
		traceBody("1"): true,
		`{"jsonrpc":"2.0","id":1,"method":"trace_block","params":["latest"]}`:                                                                    true,
		`[{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber"},{"jsonrpc":"2.0","id":2,"method":"DEBUG_traceBlockByNumber","params":["latest"]}]`: true,
		`{"jsonrpc":"2.0","id":1,"method":"eth_call","params":[{},"latest"]}`:                                                                    false,
		`{"jsonrpc":"2.0","id":1,"method":"debug","params":[]}`:                                                                                  false,
	} {
		req, err := jsonrpc.Parse([]byte(body), 100)
		if err != nil {
			t.Fatal(err)
		}
		if got := traces(req); got != want {
			t.Errorf("traces(%s) = %v, want %v", body, got, want)
		}
	}
}

// An upstream that was failing before the request (its failures in a row in the isolate's table) did not go down
// because of it: its drop is a network failure, not poison (workerd reports refused connections as drops).
func TestDropByFailingUpstreamNotPoison(t *testing.T) {
	r := newRig(t, "")
	r.nodes["a"].SetDrop(false, "eth_getBalance") // a transient drop: one failure of a, counted
	if status, body := r.serve(`{"jsonrpc":"2.0","id":1,"method":"eth_getBalance","params":["0x0000000000000000000000000000000000000001","latest"]}`); status != 200 || !strings.Contains(body, `"node":"b"`) {
		t.Fatalf("the read: %d %s, want b's answer", status, body)
	}
	// Now a is tried last, after b and c fail, and goes down with the trace.
	r.nodes["b"].SetFault(evmtest.Status500)
	r.nodes["c"].SetFault(evmtest.Status500)
	r.nodes["a"].SetDrop(true, "debug_traceCall")
	status, body := r.serve(traceBody("7"))
	if !r.nodes["a"].Stopped() {
		t.Fatalf("a never received the trace: no drop exercised (%d %s)", status, body)
	}
	if strings.Contains(body, "-32072") {
		t.Errorf("answered %d %s: an upstream failing before the request was judged poison", status, body)
	}
	if n := r.poisonCount(); n != 0 {
		t.Errorf("poison counter %d, want 0", n)
	}
}
