package app

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/evmlb/evmlb/internal/contract"
	"github.com/evmlb/evmlb/internal/evmtest"
)

// A poison request found by one isolate is refused by the others too: the chain object hands its fingerprint to
// every isolate with their snapshots, so that a client's repeat landing on another isolate does not take down the
// upstream that is left.
func TestPoisonSharedBetweenIsolates(t *testing.T) {
	a := evmtest.NewNode(t, "a", 1, 100)
	b := evmtest.NewNode(t, "b", 1, 99)
	for _, n := range []*evmtest.Node{a, b} {
		n.SetDrop(true, "debug_traceCall") // each node dies of it
	}
	h := newHarness(t, nil, upstream{"eth", "a", a.URL}, upstream{"eth", "b", b.URL})
	trace := `{"jsonrpc":"2.0","id":%s,"method":"debug_traceCall","params":[{"to":"0x0000000000000000000000000000000000000004"},"latest",{"tracer":"callTracer"}]}`
	status, body := h.post("eth", strings.Replace(trace, "%s", "1", 1))
	if status != http.StatusBadGateway || !strings.Contains(body, `"code":-32072`) {
		t.Fatalf("first isolate: %d %s, want 502 -32072", status, body)
	}
	if a.Stopped() == b.Stopped() {
		t.Fatalf("a stopped %v, b stopped %v: want exactly one down", a.Stopped(), b.Stopped())
	}
	if code, _, body := h.do(http.MethodGet, "/admin/upstreams", "", true); code != http.StatusOK { // flushes the isolate's report
		t.Fatalf("admin: %d %s", code, body)
	}
	// A second isolate (a new runtime beside the first, the same chain object): its first snapshot carries the mark.
	other := New(h.host.Platform())
	req := httptest.NewRequest(http.MethodPost, "/eth", strings.NewReader(strings.Replace(trace, "%s", "2", 1)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(contract.HeaderRole, contract.RoleWorker) // as the host sets it
	rec := httptest.NewRecorder()
	other.ServeHTTP(rec, req)
	if rec.Code != http.StatusBadGateway || !strings.Contains(rec.Body.String(), "refused again") {
		t.Errorf("second isolate: %d %s, want 502 -32072 refused again", rec.Code, rec.Body.String())
	}
	if a.Stopped() && b.Stopped() {
		t.Error("the second isolate sent the poison request on: both nodes are down")
	}
	for _, n := range []*evmtest.Node{a, b} {
		if got := slices.Collect(func(yield func(string) bool) {
			for _, m := range n.Methods() {
				if m == "debug_traceCall" && !yield(m) {
					return
				}
			}
		}); len(got) > 1 {
			t.Errorf("node %s received the request %d times", n.Name, len(got))
		}
	}
}
