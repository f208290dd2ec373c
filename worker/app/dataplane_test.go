package app

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/evmlb/evmlb/internal/adminapi"
	"github.com/evmlb/evmlb/internal/contract"
	"github.com/evmlb/evmlb/internal/evmtest"
	"github.com/evmlb/evmlb/internal/protocol"
)

// exchanges counts the Worker's exchanges with chain objects so far (background work included).
func (h *harness) exchanges() int {
	h.host.Wait()
	return h.host.ObjectCalls(contract.RoleChain, protocol.PathExchange)
}

// In the steady state a client request makes no Durable Object call: the isolate routes from its snapshot, and
// exchanges with the chain object in the background once per snapshot TTL.
func TestSteadyStateMakesNoObjectCalls(t *testing.T) {
	a := evmtest.NewNode(t, "a", 1, 100)
	b := evmtest.NewNode(t, "b", 1, 100)
	h := started(t, nil, upstream{"eth", "a", a.URL}, upstream{"eth", "b", b.URL})
	h.post("eth", rpcBody)     // warm: this isolate has its snapshot
	chainCalls := func() int { // every call of every object, on any path
		h.host.Wait()
		n := 0
		for _, p := range []string{protocol.PathExchange, protocol.PathReport, protocol.PathSync, protocol.PathEnsure,
			protocol.PathStart, protocol.PathCheck, protocol.PathStatus, protocol.PathStats, protocol.PathMetrics, protocol.PathClear} {
			n += h.host.ObjectCalls(contract.RoleChain, p) + h.host.ObjectCalls(contract.RoleUpstream, p)
		}
		return n
	}
	before := chainCalls()
	for range 200 {
		if status, got := h.post("eth", rpcBody); status != http.StatusOK {
			t.Fatalf("%d %s", status, got)
		}
	}
	if n := chainCalls() - before; n != 0 {
		t.Errorf("200 requests within a snapshot TTL made %d object calls, want 0", n)
	}
	c := h.app.plane.Counters()
	if c.ObjectCallsOnPath != 1 {
		t.Errorf("object calls on the request path: %d, want 1 (the cold isolate's first snapshot)", c.ObjectCallsOnPath)
	}
	// What those requests saw is reported once the snapshot comes of age, in the background, even with no request
	// after them (a flush the last request scheduled).
	ex := h.exchanges()
	h.host.Clock().Advance(1100 * time.Millisecond)
	if n := h.exchanges() - ex; n != 1 {
		t.Errorf("the TTL passed after 200 requests: %d exchanges, want 1", n)
	}
	// The report merged the successes into runs, and the chain object counted every one of them.
	var chains struct{ Chains []adminapi.ChainSummary }
	h.admin(http.MethodGet, "/admin/chains", &chains)
	var requests uint64
	for _, row := range chains.Chains[0].Table {
		requests += row.Requests
	}
	if requests != 201 {
		t.Errorf("the chain object counted %d requests, want 201", requests)
	}
	// The snapshot is fresh again: 20 more requests make no call; nothing pending, time passing makes none either.
	ex = h.exchanges()
	for range 20 {
		h.post("eth", rpcBody)
	}
	if n := h.exchanges() - ex; n != 0 {
		t.Errorf("20 requests within the TTL made %d exchanges, want 0", n)
	}
	h.host.Clock().Advance(1100 * time.Millisecond)
	ex = h.exchanges()
	h.host.Clock().Advance(5 * time.Second)
	if n := h.exchanges() - ex; n != 0 {
		t.Errorf("an idle isolate with nothing to report made %d exchanges", n)
	}
	// Once the snapshot is older than the TTL, the next request triggers one exchange, in the background.
	for range 20 {
		h.post("eth", rpcBody)
	}
	if n := h.exchanges() - ex; n != 1 {
		t.Errorf("20 requests after the TTL made %d exchanges, want 1", n)
	}
	if c := h.app.plane.Counters(); c.ObjectCallsOnPath != 1 || c.Requests != 241 {
		t.Errorf("counters %+v", c)
	}
}

// An isolate reacts to the failures it sees at once, with its own view of the breaker, before any snapshot says
// so; failures trigger an early exchange at most every 100 ms.
func TestIsolateReactsToFailuresAtOnce(t *testing.T) {
	bad := evmtest.NewNode(t, "bad", 1, 105) // higher: served first while healthy
	good := evmtest.NewNode(t, "good", 1, 100)
	h := started(t, nil, upstream{"eth", "bad", bad.URL}, upstream{"eth", "good", good.URL})
	if _, got := h.post("eth", rpcBody); servedBy(t, got) != "bad" {
		t.Fatalf("served by %s before the fault", servedBy(t, got))
	}
	ex := h.exchanges()
	bad.SetFault(evmtest.Status500)
	if _, got := h.post("eth", rpcBody); servedBy(t, got) != "good" {
		t.Fatalf("failover: served by %s", servedBy(t, got))
	}
	calls := bad.Calls()
	for range 10 {
		if _, got := h.post("eth", rpcBody); servedBy(t, got) != "good" {
			t.Fatalf("served by %s", servedBy(t, got))
		}
	}
	if bad.Calls() != calls {
		t.Errorf("the isolate tried the failed upstream again %d times", bad.Calls()-calls)
	}
	if n := h.exchanges() - ex; n > 1 {
		t.Errorf("%d exchanges within 100 ms of each other, want at most 1", n)
	}
	// What the isolate saw reaches the chain object: the admin view shows bad's failure.
	var chains struct{ Chains []adminapi.ChainSummary }
	h.admin(http.MethodGet, "/admin/chains", &chains)
	if row := chains.Chains[0].Table[0]; row.Name != "bad" || row.LastError != "http_5xx" {
		t.Errorf("bad's row after the exchange: %+v", row)
	}
}

// The isolates' counts the chain object holds for an upstream until its next health report survive the object's
// eviction: they are stored with every exchange.
func TestPendingStatsSurviveEviction(t *testing.T) {
	n := evmtest.NewNode(t, "a", 1, 100)
	h := started(t, nil, upstream{"eth", "a", n.URL})
	for range 3 {
		h.post("eth", rpcBody)
	}
	h.app.plane.Flush(context.Background()) // the isolate reports; no health check has run since
	h.restartApp()                          // every object's memory is gone, storage stays
	var stats struct{ Upstreams []adminapi.StatsEntry }
	h.admin(http.MethodGet, "/admin/stats", &stats)
	if c := stats.Upstreams[0].Methods["eth_call"].Count; c != 3 {
		t.Errorf("eth_call count after an eviction: %d, want 3", c)
	}
}

// Exchanges are bounded per second whatever the traffic: with an upstream failing on every request, early
// exchanges come at most every 100 ms, plus the TTL's.
func TestExchangesBoundedPerSecond(t *testing.T) {
	bad := evmtest.NewNode(t, "bad", 1, 105) // the only upstream: every request fails
	h := started(t, nil, upstream{"eth", "bad", bad.URL})
	h.post("eth", rpcBody)
	bad.SetFault(evmtest.Status500)
	ex := h.exchanges()
	for range 100 { // one second of traffic, 10 ms apart, every request failing over
		h.post("eth", rpcBody)
		h.exchanges() // let a started exchange finish, as time would
		h.host.Clock().Advance(10 * time.Millisecond)
	}
	if n := h.exchanges() - ex; n > 11 || n < 9 {
		t.Errorf("one second with failures on every request: %d exchanges, want about 10 (one per 100 ms at most)", n)
	}
}
