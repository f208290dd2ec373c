package app

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/evmlb/evmlb/internal/adminapi"
	"github.com/evmlb/evmlb/internal/evmtest"
	"github.com/evmlb/evmlb/internal/jsonrpc"
)

// objectConfig is UPSTREAM_CONFIG in the object form: chains is the JSON of the "chains" member, to which every
// chain gets "cache": false unless it says otherwise (configJSON says why).
func objectConfig(chains string, ups ...upstream) string {
	var m map[string]map[string]any
	if err := json.Unmarshal([]byte(chains), &m); err != nil {
		panic(err)
	}
	for _, u := range ups {
		if m[u.chain] == nil {
			m[u.chain] = map[string]any{}
		}
		if _, ok := m[u.chain]["cache"]; !ok {
			m[u.chain]["cache"] = false
		}
	}
	b, _ := json.Marshal(m)
	return `{"chains":` + string(b) + `,"upstreams":` + upstreamsJSON(ups...) + `}`
}

// started starts a balancer and runs every upstream's first health check.
func started(t *testing.T, env map[string]string, ups ...upstream) *harness {
	h := newHarness(t, env, ups...)
	h.admin(http.MethodPost, "/admin/init_upstreams", nil)
	h.checks(0)
	return h
}

// upstreamEntry is name's entry in /admin/upstreams.
func (h *harness) upstreamEntry(name string) adminapi.UpstreamEntry {
	h.t.Helper()
	var ups struct{ Upstreams []adminapi.UpstreamEntry }
	h.admin(http.MethodGet, "/admin/upstreams", &ups)
	for _, u := range ups.Upstreams {
		if u.Name == name {
			return u
		}
	}
	h.t.Fatalf("no upstream %s in %+v", name, ups.Upstreams)
	return adminapi.UpstreamEntry{}
}

// count is how many non-health calls of method the node received.
func count(n *evmtest.Node, method string) int {
	c := 0
	for _, m := range n.Methods() {
		if m == method {
			c++
		}
	}
	return c
}

const headerNotFound = `"error":{"code":-32000,"message":"header not found"}`

// A node that lacks the data ("header not found") sends the read to the next upstream; when every upstream lacks
// it, the last answer is passed on as it is rather than a 503.
func TestMissingDataGoesToNextUpstream(t *testing.T) {
	a := evmtest.NewNode(t, "a", 1, 105) // higher: tried first
	b := evmtest.NewNode(t, "b", 1, 100)
	h := started(t, nil, upstream{"eth", "a", a.URL}, upstream{"eth", "b", b.URL})
	a.SetFault(evmtest.MissingData)
	status, got := h.post("eth", rpcBody)
	if status != http.StatusOK || servedBy(t, got) != "b" {
		t.Fatalf("got %d %s, want b's answer", status, got)
	}
	if count(a, "eth_call") != 1 {
		t.Fatalf("a received %v: it was not tried first", a.Methods())
	}
	// Missing data is not the upstream's failure: a stays healthy and first.
	if e := h.upstreamEntry("a"); e.State != "healthy" {
		t.Errorf("a after missing data: %+v", e)
	}
	b.SetFault(evmtest.MissingData)
	status, got = h.post("eth", rpcBody)
	if want := directly(t, b, rpcBody); status != http.StatusOK || got != want || !strings.Contains(got, headerNotFound) {
		t.Errorf("every upstream lacks the data: got %d %s, want 200 %s", status, got, want)
	}
	if count(a, "eth_call") != 2 || count(b, "eth_call") != 3 { // b: twice from the balancer, once directly
		t.Errorf("a got %v, b got %v: both should have been tried", a.Methods(), b.Methods())
	}
	// A batch whose elements all lack data: the same, element by element.
	batch := `[{"jsonrpc":"2.0","id":1,"method":"eth_call","params":[]},{"jsonrpc":"2.0","id":"x","method":"eth_getBalance","params":[]}]`
	status, got = h.post("eth", batch)
	if want := directly(t, b, batch); status != http.StatusOK || got != want || strings.Count(got, headerNotFound) != 2 {
		t.Errorf("batch: got %d %s, want 200 %s", status, got, want)
	}
}

// In a batch, only the elements that failed with a retry class are asked again of the next upstream; the others
// stay the first upstream's bytes.
func TestBatchElementRepair(t *testing.T) {
	a := evmtest.NewNode(t, "a", 1, 105) // higher: answers first
	b := evmtest.NewNode(t, "b", 1, 100)
	h := started(t, nil, upstream{"eth", "a", a.URL}, upstream{"eth", "b", b.URL})
	const (
		call    = `{"jsonrpc":"2.0","id":7,"method":"eth_call","params":[{"to":"0x0"},"latest"]}`
		balance = `{"jsonrpc":"2.0","id":"q","method":"eth_getBalance","params":["0x0000000000000000000000000000000000000001","latest"]}`
	)
	batch := "[" + call + "," + balance + "]"

	// Nothing to repair: the node's bytes, unchanged.
	status, got := h.post("eth", batch)
	if want := directly(t, a, batch); status != http.StatusOK || got != want {
		t.Fatalf("unrepaired batch: got %d %s, want %s", status, got, want)
	}

	a.SetMissingData("eth_call")
	aBefore, bBefore := a.Methods(), b.Methods()
	status, got = h.post("eth", batch)
	aGot, bGot := a.Methods()[len(aBefore):], b.Methods()[len(bBefore):]
	if !slices.Equal(aGot, []string{"eth_call", "eth_getBalance"}) || !slices.Equal(bGot, []string{"eth_call"}) {
		t.Errorf("a received %v, b received %v: want the batch at a and only the failed eth_call at b", aGot, bGot)
	}
	// The expected elements, as each node writes them.
	fromB := strings.TrimSuffix(strings.TrimPrefix(directly(t, b, "["+call+"]"), "["), "]")
	fromA := strings.Split(strings.TrimSuffix(directly(t, a, batch), "]"), ",\n")[1]
	if want := "[" + fromB + "," + fromA + "]"; status != http.StatusOK || got != want {
		t.Errorf("repaired batch: got %d %s, want %s", status, got, want)
	}

	// The other upstream lacks it too: a's answer is passed on byte for byte.
	b.SetMissingData("eth_call")
	status, got = h.post("eth", batch)
	if want := directly(t, a, batch); status != http.StatusOK || got != want || strings.Count(got, headerNotFound) != 1 {
		t.Errorf("nothing repaired: got %d %s, want %s", status, got, want)
	}
}

// eth_blockNumber never answers less than it did: a lower upstream serving after the higher one failed is
// answered with the highest block seen.
func TestBlockNumberNeverGoesBackwards(t *testing.T) {
	a := evmtest.NewNode(t, "a", 1, 105)
	b := evmtest.NewNode(t, "b", 1, 100)
	h := started(t, nil, upstream{"eth", "a", a.URL}, upstream{"eth", "b", b.URL})
	const body = `{"jsonrpc":"2.0","id":"n1","method":"eth_blockNumber","params":[]}`
	if _, got := h.post("eth", body); got != directly(t, a, body) || !strings.Contains(got, `"0x69"`) {
		t.Fatalf("first answer %s, want a's 0x69", got)
	}
	a.SetFault(evmtest.Status500)
	bCalls := b.Calls()
	status, got := h.post("eth", body)
	if status != http.StatusOK || got != `{"jsonrpc":"2.0","id":"n1","result":"0x69"}` {
		t.Errorf("after a failed: got %d %s, want 0x69 (b is at 0x64)", status, got)
	}
	if b.Calls() == bCalls {
		t.Error("b was not asked: the test did not exercise the lower upstream")
	}
}

// An upstream more than max_lag_blocks behind the best gets no traffic while a healthy one exists, even when
// the ranking alone would put it first; it still serves when the healthy ones fail.
func TestLaggingUpstreamOnlyAsFallback(t *testing.T) {
	lag := evmtest.NewNode(t, "lag", 1, 100)
	top := evmtest.NewNode(t, "top", 1, 111) // lag is 11 behind: over the default 10
	mid := evmtest.NewNode(t, "mid", 1, 105) // confirms top's head (two upstreams 11 apart: neither is believed over the other)
	h := started(t, nil, upstream{"eth", "lag", lag.URL}, upstream{"eth", "top", top.URL}, upstream{"eth", "mid", mid.URL})
	if e := h.upstreamEntry("lag"); e.State != "lagging" || !strings.Contains(e.Reason, "11 blocks behind") {
		t.Fatalf("lag: %+v", e)
	}
	// The healthy upstreams fail: the lagging one answers rather than none.
	mid.SetFault(evmtest.Status500)
	top.SetFault(evmtest.Status500)
	if status, got := h.post("eth", rpcBody); status != http.StatusOK || servedBy(t, got) != "lag" {
		t.Fatalf("fallback: got %d %s", status, got)
	}
	// top and mid are back but have a failure on record, which ranks them behind clean upstreams: only the lag
	// rule keeps lag out now.
	top.SetFault(evmtest.None)
	mid.SetFault(evmtest.None)
	before := count(lag, "eth_call")
	for range 5 {
		if status, got := h.post("eth", rpcBody); status != http.StatusOK || (servedBy(t, got) != "top" && servedBy(t, got) != "mid") {
			t.Errorf("got %d %s, want top or mid", status, got)
		}
	}
	if n := count(lag, "eth_call") - before; n != 0 {
		t.Errorf("the lagging upstream got %d requests while a healthy one existed", n)
	}
}

// A request for block n goes only to upstreams known to have it, even when the ranking prefers another.
func TestBlockAwareRouting(t *testing.T) {
	low := evmtest.NewNode(t, "low", 1, 105) // first in config
	high := evmtest.NewNode(t, "high", 1, 115)
	h := started(t, nil, upstream{"eth", "low", low.URL}, upstream{"eth", "high", high.URL})
	// high fails once: it ranks behind low for reads that any upstream can serve.
	high.SetFault(evmtest.Status500)
	if _, got := h.post("eth", rpcBody); servedBy(t, got) != "low" {
		t.Fatalf("served by %s", servedBy(t, got))
	}
	high.SetFault(evmtest.None)
	if _, got := h.post("eth", rpcBody); servedBy(t, got) != "low" {
		t.Fatalf("latest read served by %s: the ranking should prefer low", servedBy(t, got))
	}
	if e := h.upstreamEntry("low"); e.State != "healthy" {
		t.Fatalf("low at 105, 10 behind 115, must be in rotation: %+v", e)
	}
	// Block 110 (0x6e): low at 105 lacks it.
	const body = `{"jsonrpc":"2.0","id":3,"method":"eth_getBalance","params":["0x0000000000000000000000000000000000000001","0x6e"]}`
	for range 3 {
		if status, got := h.post("eth", body); status != http.StatusOK || servedBy(t, got) != "high" {
			t.Errorf("block 110: got %d %s, want high", status, got)
		}
	}
	if n := count(low, "eth_getBalance"); n != 0 {
		t.Errorf("low (at 105) got %d requests for block 110", n)
	}
}

// An upstream on another chain id than the majority's, or the configured one, is quarantined.
func TestWrongChainQuarantined(t *testing.T) {
	t.Run("majority", func(t *testing.T) {
		odd := evmtest.NewNode(t, "odd", 5, 500) // highest and first: would serve if not quarantined
		b := evmtest.NewNode(t, "b", 1, 100)
		c := evmtest.NewNode(t, "c", 1, 100)
		h := started(t, nil, upstream{"eth", "odd", odd.URL}, upstream{"eth", "b", b.URL}, upstream{"eth", "c", c.URL})
		for range 4 {
			if status, got := h.post("eth", rpcBody); status != http.StatusOK || servedBy(t, got) == "odd" {
				t.Errorf("got %d %s", status, got)
			}
		}
		if n := count(odd, "eth_call"); n != 0 {
			t.Errorf("the wrong-chain upstream got %d requests", n)
		}
		if e := h.upstreamEntry("odd"); e.State != "wrong_chain" || !strings.Contains(e.Reason, "eth_chainId is 5, the chain's is 1") {
			t.Errorf("odd: %+v", e)
		}
		for _, n := range []string{"b", "c"} {
			if e := h.upstreamEntry(n); e.State != "healthy" {
				t.Errorf("%s: %+v", n, e)
			}
		}
	})
	t.Run("configured chain_id", func(t *testing.T) {
		a := evmtest.NewNode(t, "a", 5, 100)
		b := evmtest.NewNode(t, "b", 1, 500) // the majority, and higher: would serve if not quarantined
		c := evmtest.NewNode(t, "c", 1, 500)
		ups := []upstream{{"eth", "a", a.URL}, {"eth", "b", b.URL}, {"eth", "c", c.URL}}
		h := started(t, map[string]string{"UPSTREAM_CONFIG": objectConfig(`{"eth":{"chain_id":5}}`, ups...)})
		for range 4 {
			if status, got := h.post("eth", rpcBody); status != http.StatusOK || servedBy(t, got) != "a" {
				t.Errorf("got %d %s, want a", status, got)
			}
		}
		for _, n := range []string{"b", "c"} {
			if e := h.upstreamEntry(n); e.State != "wrong_chain" || !strings.Contains(e.Reason, "eth_chainId is 1, the chain's is 5") {
				t.Errorf("%s: %+v", n, e)
			}
		}
	})
}

// A syncing upstream is out of rotation while another is healthy.
func TestSyncingUpstreamOutOfRotation(t *testing.T) {
	a := evmtest.NewNode(t, "a", 1, 105) // higher and first: would serve if in rotation
	b := evmtest.NewNode(t, "b", 1, 100)
	a.SetSyncing(true)
	h := started(t, nil, upstream{"eth", "a", a.URL}, upstream{"eth", "b", b.URL})
	for range 3 {
		if _, got := h.post("eth", rpcBody); servedBy(t, got) != "b" {
			t.Errorf("served by %s", servedBy(t, got))
		}
	}
	if e := h.upstreamEntry("a"); e.State != "syncing" || e.Reason == "" {
		t.Errorf("a: %+v", e)
	}
	a.SetSyncing(false)
	h.checks(5 * time.Second)
	if _, got := h.post("eth", rpcBody); servedBy(t, got) != "a" {
		t.Errorf("after the sync: served by %s", servedBy(t, got))
	}
}

// After a 429 an upstream gets no traffic for 60 s, even though its health checks succeed meanwhile.
func TestCooldownAfter429(t *testing.T) {
	a := evmtest.NewNode(t, "a", 1, 105)
	b := evmtest.NewNode(t, "b", 1, 100)
	h := started(t, nil, upstream{"eth", "a", a.URL}, upstream{"eth", "b", b.URL})
	a.SetFault(evmtest.Status429)
	if _, got := h.post("eth", rpcBody); servedBy(t, got) != "b" {
		t.Fatalf("served by %s", servedBy(t, got))
	}
	a.SetFault(evmtest.None)
	h.checks(55 * time.Second) // a's health checks succeed: only the cool-down keeps it out
	if e := h.upstreamEntry("a"); e.State != "cooling_down" || !e.OK {
		t.Errorf("a at 55 s: %+v", e)
	}
	if _, got := h.post("eth", rpcBody); servedBy(t, got) != "b" {
		t.Errorf("at 55 s served by %s", servedBy(t, got))
	}
	if n := count(a, "eth_call"); n != 0 {
		t.Errorf("a got %d requests while cooling down", n)
	}
	h.checks(6 * time.Second)
	if _, got := h.post("eth", rpcBody); servedBy(t, got) != "a" {
		t.Errorf("after the cool-down served by %s", servedBy(t, got))
	}
}

// chainRow is name's row in the chain's table (/admin/chains).
func (h *harness) chainRow(name string) (state, reason string, failures int) {
	h.t.Helper()
	var chains struct{ Chains []adminapi.ChainSummary }
	h.admin(http.MethodGet, "/admin/chains", &chains)
	for _, r := range chains.Chains[0].Table {
		if r.Name == name {
			return string(r.State), r.Reason, r.Breaker.Failures
		}
	}
	h.t.Fatalf("no row %s", name)
	return "", "", 0
}

// Five consecutive failures open the breaker; 30 s later it is half-open; a successful health check closes it.
// Failing health checks back off: +5 s after the first failure, then 10 s, 20 s, … at most 2 min.
func TestBreakerAndHealthCheckBackoff(t *testing.T) {
	a := evmtest.NewNode(t, "a", 1, 105)
	b := evmtest.NewNode(t, "b", 1, 100)
	h := started(t, nil, upstream{"eth", "a", a.URL}, upstream{"eth", "b", b.URL})
	st := h.host.Storage("upstream", "eth/a")
	alarm := func() time.Duration {
		at, set, err := st.GetAlarm(t.Context())
		if err != nil || !set {
			t.Fatalf("alarm %v %v", set, err)
		}
		return at.Sub(h.host.Clock().Now())
	}
	if d := alarm(); d != 5*time.Second {
		t.Fatalf("healthy: next check in %v", d)
	}
	a.SetFault(evmtest.Status500)
	// The checks fail: each reports a failure; the fifth opens the breaker.
	for i, want := range []time.Duration{5, 10, 20, 40, 80} {
		h.checks(alarm())
		if d := alarm(); d != want*time.Second {
			t.Errorf("after failed check %d: next in %v, want %v", i+1, d, want*time.Second)
		}
		state, _, failures := h.chainRow("a")
		if failures != i+1 || (i < 4) != (state != "failing") {
			t.Errorf("after failed check %d: state %s, %d failures", i+1, state, failures)
		}
	}
	if state, reason, _ := h.chainRow("a"); state != "failing" || !strings.Contains(reason, "5 consecutive failures") {
		t.Errorf("breaker: %s %q", state, reason)
	}
	if _, got := h.post("eth", rpcBody); servedBy(t, got) != "b" {
		t.Errorf("open breaker: served by %s", servedBy(t, got))
	}
	if n := count(a, "eth_call"); n != 0 {
		t.Errorf("a got %d requests with its breaker open", n)
	}
	h.checks(30 * time.Second) // the breaker opened 30 s ago; the next check is 50 s away
	if state, _, _ := h.chainRow("a"); state != "recovering" {
		t.Errorf("30 s after opening: %s, want recovering", state)
	}
	// The back-off is capped at 2 min.
	h.checks(alarm())
	if d := alarm(); d != 2*time.Minute {
		t.Errorf("after 6 failed checks: next in %v, want 2m", d)
	}
	h.checks(alarm())
	if d := alarm(); d != 2*time.Minute {
		t.Errorf("after 7 failed checks: next in %v, want 2m", d)
	}
	a.SetFault(evmtest.None)
	h.checks(alarm())
	if state, _, failures := h.chainRow("a"); state != "healthy" || failures != 0 {
		t.Errorf("after a good check: %s, %d failures", state, failures)
	}
	if d := alarm(); d != 5*time.Second {
		t.Errorf("recovered: next check in %v", d)
	}
	if _, got := h.post("eth", rpcBody); servedBy(t, got) != "a" {
		t.Errorf("recovered: served by %s", servedBy(t, got))
	}
}

// With hedging, a read the first upstream does not answer in time is also sent to the next; writes never are.
func TestHedging(t *testing.T) {
	const chains = `{"eth":{"hedge_percentile":0.9,"hedge_min_delay":"50ms"}}`
	setup := func(t *testing.T, attemptTimeout string) (*harness, *evmtest.Node, *evmtest.Node) {
		slow := evmtest.NewNode(t, "slow", 1, 105) // higher: ranks first
		fast := evmtest.NewNode(t, "fast", 1, 100)
		ups := []upstream{{"eth", "slow", slow.URL}, {"eth", "fast", fast.URL}}
		h := started(t, map[string]string{"UPSTREAM_CONFIG": objectConfig(chains, ups...), "EVMLB_ATTEMPT_TIMEOUT": attemptTimeout})
		slow.SetFault(evmtest.Hang)
		return h, slow, fast
	}
	t.Run("read", func(t *testing.T) {
		h, slow, _ := setup(t, "5s")
		callsBefore := slow.Calls()
		timers := h.host.Clock().Timers()
		done := make(chan *httptest.ResponseRecorder, 1)
		go func() { // not h.post: the harness records bodies without a lock
			rec := httptest.NewRecorder()
			h.host.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/eth", strings.NewReader(rpcBody)))
			done <- rec
		}()
		for slow.Calls() == callsBefore || h.host.Clock().Timers() == timers { // slow has it; the hedge timer is set
			time.Sleep(time.Millisecond)
		}
		select {
		case rec := <-done:
			t.Fatalf("answered before the hedge delay passed: %d %s", rec.Code, rec.Body)
		case <-time.After(50 * time.Millisecond):
		}
		h.host.Clock().Advance(50 * time.Millisecond) // the hedge delay (hedge_min_delay: no latencies seen yet)
		rec := <-done
		if rec.Code != http.StatusOK || servedBy(t, rec.Body.String()) != "fast" {
			t.Errorf("got %d %s", rec.Code, rec.Body)
		}
	})
	t.Run("write", func(t *testing.T) {
		h, slow, fast := setup(t, "300ms")
		callsBefore := slow.Calls()
		status, got := h.postTimingOut("eth", `{"jsonrpc":"2.0","id":9,"method":"eth_sendRawTransaction","params":["0x02"]}`, slow, 300*time.Millisecond)
		if status != http.StatusBadGateway || errorCode(t, got) != jsonrpc.ErrUpstreamFailed.Code {
			t.Errorf("got %d %s", status, got)
		}
		if n := count(fast, "eth_sendRawTransaction"); n != 0 {
			t.Errorf("the write was hedged: fast received it %d times", n)
		}
		if slow.Calls() == callsBefore {
			t.Error("slow was not tried first")
		}
	})
}

// max_attempts bounds the upstreams one request tries.
func TestMaxAttempts(t *testing.T) {
	var nodes []*evmtest.Node
	var ups []upstream
	for _, n := range []string{"a", "b", "c"} {
		node := evmtest.NewNode(t, n, 1, 100)
		nodes = append(nodes, node)
		ups = append(ups, upstream{"eth", n, node.URL})
	}
	h := started(t, map[string]string{"UPSTREAM_CONFIG": objectConfig(`{"eth":{"max_attempts":2}}`, ups...)})
	var before int64
	for _, n := range nodes {
		n.SetFault(evmtest.Status500)
		before += n.Calls()
	}
	status, got := h.post("eth", rpcBody)
	if status != http.StatusServiceUnavailable || errorCode(t, got) != jsonrpc.ErrNoUpstream.Code {
		t.Errorf("got %d %s", status, got)
	}
	var after int64
	for _, n := range nodes {
		after += n.Calls()
	}
	if after-before != 2 {
		t.Errorf("%d upstreams tried, want max_attempts = 2", after-before)
	}
}

// Requests that arrive together on a blind table (no init call, no check yet) all wait for the first checks:
// none is routed in configuration order to the wrong-chain upstream that comes first.
func TestConcurrentFirstRequestsWaitForChecks(t *testing.T) {
	odd := evmtest.NewNode(t, "odd", 5, 500) // first in the configuration: where a blind request goes
	b := evmtest.NewNode(t, "b", 1, 100)
	c := evmtest.NewNode(t, "c", 1, 100)
	h := newHarness(t, nil, upstream{"eth", "odd", odd.URL}, upstream{"eth", "b", b.URL}, upstream{"eth", "c", c.URL})
	const n = 8
	var wg sync.WaitGroup
	got := make([]string, n)
	for i := range n {
		wg.Go(func() {
			r := httptest.NewRequest(http.MethodPost, "/eth", strings.NewReader(rpcBody))
			r.Header.Set("Content-Type", "application/json")
			rec := httptest.NewRecorder()
			h.host.ServeHTTP(rec, r)
			got[i] = fmt.Sprint(rec.Code, " ", rec.Body.String())
		})
	}
	wg.Wait()
	for i, g := range got {
		if !strings.HasPrefix(g, "200 ") || strings.Contains(g, `"odd"`) {
			t.Errorf("request %d: %s", i, g)
		}
	}
	if k := count(odd, "eth_call"); k != 0 {
		t.Errorf("the wrong-chain upstream got %d of %d requests", k, n)
	}
}
