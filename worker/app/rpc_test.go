package app

import (
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

func TestAnswerIsUpstreamBytes(t *testing.T) {
	n := evmtest.NewNode(t, "a", 1, 100)
	h := newHarness(t, nil, upstream{"eth", "a", n.URL})
	for _, body := range []string{
		rpcBody,
		`{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber","params":[]}`,
		`[{"jsonrpc":"2.0","id":1,"method":"eth_chainId"},{"jsonrpc":"2.0","id":"two","method":"eth_call","params":[]}]`,
	} {
		status, got := h.post("eth", body)
		if want := directly(t, n, body); status != http.StatusOK || got != want {
			t.Errorf("%s: got %d %s, want %s", body, status, got, want)
		}
	}
}

func TestIDsPreserved(t *testing.T) {
	n := evmtest.NewNode(t, "a", 1, 100)
	h := newHarness(t, nil, upstream{"eth", "a", n.URL})
	for _, id := range []string{`1`, `0`, `-7`, `1.50`, `1e3`, `123456789012345678901234567890`, `"abc"`, `""`, `"\u00e9\n"`, `null`} {
		body := `{"jsonrpc":"2.0","id":` + id + `,"method":"eth_call","params":[]}`
		if _, got := h.post("eth", body); !strings.Contains(got, `"id":`+id+` ,`) {
			t.Errorf("id %s: answer %s", id, got)
		}
	}
	_, got := h.post("eth", `[{"jsonrpc":"2.0","id":"x","method":"a"},{"jsonrpc":"2.0","id":2.0,"method":"b"}]`)
	if !strings.Contains(got, `"id":"x" ,`) || !strings.Contains(got, `"id":2.0 ,`) {
		t.Errorf("batch answer %s", got)
	}
}

func TestNoInitNeeded(t *testing.T) {
	a := evmtest.NewNode(t, "a", 1, 100)
	b := evmtest.NewNode(t, "b", 1, 105) // within max lag: a lead of more would not be believed at once
	h := newHarness(t, nil, upstream{"eth", "a", a.URL}, upstream{"eth", "b", b.URL})
	// No health check has run: the first request checks every upstream before it routes, so the higher one
	// serves it, not the first in the configuration.
	before := a.Calls()
	if _, got := h.post("eth", rpcBody); servedBy(t, got) != "b" {
		t.Errorf("served by %s on the first request", servedBy(t, got))
	}
	if m := a.Methods(); a.Calls() == before || slices.Contains(m, "eth_call") {
		t.Errorf("a: %d calls %v, want a health check and no eth_call", a.Calls()-before, m)
	}
	// That check left every upstream object with its next check scheduled.
	for _, name := range []string{"eth/a", "eth/b"} {
		if st := h.host.Storage("upstream", name); st == nil {
			t.Fatalf("%s never started", name)
		} else if _, set, _ := st.GetAlarm(t.Context()); !set {
			t.Errorf("%s has no alarm", name)
		}
	}
	// Only once per instance: a later request asks the upstream objects nothing.
	st := h.host.Storage("upstream", "eth/b")
	st.DeleteAlarm(t.Context())
	h.post("eth", rpcBody)
	if _, set, _ := st.GetAlarm(t.Context()); set {
		t.Error("a second request fanned out to the upstream objects")
	}
	st.SetAlarm(t.Context(), t0)
	h.checks(0)
	if _, got := h.post("eth", rpcBody); servedBy(t, got) != "b" {
		t.Errorf("served by %s after the checks", servedBy(t, got))
	}
}

func TestHigherUpstreamWins(t *testing.T) {
	a := evmtest.NewNode(t, "a", 1, 100)
	b := evmtest.NewNode(t, "b", 1, 90)
	c := evmtest.NewNode(t, "c", 1, 95)
	h := newHarness(t, nil, upstream{"eth", "a", a.URL}, upstream{"eth", "b", b.URL}, upstream{"eth", "c", c.URL})
	h.admin(http.MethodPost, "/admin/init_upstreams", nil)
	h.checks(0)
	for step, tc := range []struct {
		heights [3]uint64
		want    string
	}{
		// Each new best is within max_lag_blocks of another upstream: a lead over every other would not be
		// believed at once (issue 8).
		{[3]uint64{100, 90, 95}, "a"},
		{[3]uint64{100, 108, 95}, "b"},
		{[3]uint64{100, 112, 121}, "c"},
	} {
		a.SetHeight(tc.heights[0])
		b.SetHeight(tc.heights[1])
		c.SetHeight(tc.heights[2])
		h.checks(5 * time.Second)
		if _, got := h.post("eth", rpcBody); servedBy(t, got) != tc.want {
			t.Errorf("step %d: served by %s, want %s", step, servedBy(t, got), tc.want)
		}
	}
	var chains struct{ Chains []adminapi.ChainSummary }
	h.admin(http.MethodGet, "/admin/chains", &chains)
	// a is 21 blocks behind the best, over the default max lag of 10: out of rotation, with the reason shown.
	if cs := chains.Chains; len(cs) != 1 || cs[0].BestHeight != 121 || cs[0].Upstreams != 3 || cs[0].Healthy != 2 ||
		cs[0].Table[0].State != "lagging" || !strings.Contains(cs[0].Table[0].Reason, "21 blocks behind") {
		t.Errorf("chains %+v", cs)
	}
}

func TestTwoChains(t *testing.T) {
	e := evmtest.NewNode(t, "e", 1, 100)
	p := evmtest.NewNode(t, "p", 137, 5000)
	h := newHarness(t, nil, upstream{"eth", "e", e.URL}, upstream{"polygon", "p", p.URL})
	for chain, want := range map[string]string{"eth": "e", "polygon": "p"} {
		if _, got := h.post(chain, rpcBody); servedBy(t, got) != want {
			t.Errorf("%s served by %s", chain, servedBy(t, got))
		}
	}
	h.checks(0)
	var ups struct{ Upstreams []adminapi.UpstreamEntry }
	h.admin(http.MethodGet, "/admin/upstreams", &ups)
	want := map[string]string{"e": "0x1", "p": "0x89"}
	for _, u := range ups.Upstreams {
		if u.ChainID != want[u.Name] || !u.OK || u.Height == 0 || u.LastCheck.IsZero() || u.Error != "" {
			t.Errorf("upstream %+v", u)
		}
		if u.Endpoint != strings.Split(e.URL, "/v3/")[0] && u.Endpoint != strings.Split(p.URL, "/v3/")[0] {
			t.Errorf("endpoint %q is not scheme://host", u.Endpoint)
		}
	}
	if len(ups.Upstreams) != 2 {
		t.Errorf("%d upstreams", len(ups.Upstreams))
	}
}

// faults are the failures after which the next upstream is tried.
var faults = []struct {
	name  string
	fault evmtest.Fault // for a running node
	class string
}{
	{"refused", evmtest.None, "refused"}, // the node's URL is replaced by a refusing one
	{"500", evmtest.Status500, "http_5xx"},
	{"429", evmtest.Status429, "http_429"},
	{"non-JSON", evmtest.NonJSON, "non_json"},
	{"hang", evmtest.Hang, "timeout"},
}

func TestFailover(t *testing.T) {
	for _, f := range faults {
		t.Run(f.name, func(t *testing.T) {
			// bad is higher, and both are within the default max lag (10 blocks): both in rotation.
			bad := evmtest.NewNode(t, "bad", 1, 105)
			good := evmtest.NewNode(t, "good", 1, 100)
			badURL := bad.URL
			if f.name == "refused" {
				badURL = evmtest.RefusingURL(t)
			}
			h := newHarness(t, nil, upstream{"eth", "bad", badURL}, upstream{"eth", "good", good.URL})
			h.admin(http.MethodPost, "/admin/init_upstreams", nil)
			h.checks(0) // both healthy; bad is higher (refused: bad is unhealthy from here on)
			bad.SetFault(f.fault)
			var status int
			var got string
			if f.fault == evmtest.Hang { // bad holds it until its attempt timeout (300 ms) passes on the host's clock
				status, got = h.postTimingOut("eth", rpcBody, bad, 300*time.Millisecond)
			} else {
				status, got = h.post("eth", rpcBody)
			}
			if status != http.StatusOK || servedBy(t, got) != "good" {
				t.Fatalf("got %d %s", status, got)
			}
			var chains struct{ Chains []adminapi.ChainSummary }
			h.admin(http.MethodGet, "/admin/chains", &chains)
			row := chains.Chains[0].Table[0]
			if row.Name != "bad" || row.Breaker.Failures == 0 || string(row.LastError) != f.class {
				t.Errorf("bad's row %+v, want class %s", row, f.class)
			}
			// The next request goes straight to good.
			before := bad.Calls()
			if _, got := h.post("eth", rpcBody); servedBy(t, got) != "good" || bad.Calls() != before {
				t.Errorf("second request: %s, bad called %d times", got, bad.Calls()-before)
			}
			if f.name != "refused" {
				// Recovery: the fault goes, the next health check brings bad back at the top (after a 429, once
				// the 60 s cool-down has passed).
				bad.SetFault(evmtest.None)
				h.checks(61 * time.Second)
				if _, got := h.post("eth", rpcBody); servedBy(t, got) != "bad" {
					t.Errorf("after recovery served by %s", servedBy(t, got))
				}
			}
		})
	}
}

func TestAllDown(t *testing.T) {
	var ups []upstream
	var nodes []*evmtest.Node
	for i, f := range faults {
		n := evmtest.NewNode(t, f.name, 1, 100)
		nodes = append(nodes, n)
		n.SetFault(f.fault)
		u := n.URL
		if f.name == "refused" {
			u = evmtest.RefusingURL(t)
		}
		ups = append(ups, upstream{"eth", fmt.Sprint("u", i), u})
	}
	h := newHarness(t, nil, ups...)
	hang := nodes[len(nodes)-1] // may be among those tried: it holds the request until its attempt timeout
	status, got := h.postTimingOut("eth", `{"jsonrpc":"2.0","id":"q1","method":"eth_call","params":[]}`, hang, 300*time.Millisecond)
	if status != http.StatusServiceUnavailable || errorCode(t, got) != jsonrpc.ErrNoUpstream.Code || !strings.Contains(got, `"id":"q1"`) {
		t.Errorf("got %d %s", status, got)
	}
	status, got = h.postTimingOut("eth", `[{"jsonrpc":"2.0","id":7,"method":"a"},{"jsonrpc":"2.0","method":"n"},{"jsonrpc":"2.0","id":"x","method":"b"}]`, hang, 300*time.Millisecond)
	if status != http.StatusServiceUnavailable || !strings.HasPrefix(got, `[{"jsonrpc":"2.0","id":7,`) || !strings.Contains(got, `"id":"x"`) || strings.Count(got, "-32070") != 2 {
		t.Errorf("batch: got %d %s", status, got)
	}
	// Attempts are bounded: max_attempts (default 3) upstreams tried once each, never one twice.
	var stats struct{ Upstreams []adminapi.StatsEntry }
	h.admin(http.MethodGet, "/admin/stats", &stats)
	tried := 0
	for _, s := range stats.Upstreams {
		m := s.Methods["eth_call"]
		if m.Count > 1 || m.Errors != m.Count {
			t.Errorf("%s eth_call stats %+v", s.Name, m)
		}
		tried += int(m.Count)
	}
	if tried != 3 {
		t.Errorf("eth_call tried on %d upstreams, want max_attempts = 3", tried)
	}
	if h.t.Failed() {
		t.Logf("logs: %q", h.host.Logs())
	}
}

func TestStatsAndRestart(t *testing.T) {
	n := evmtest.NewNode(t, "a", 1, 100)
	h := newHarness(t, nil, upstream{"eth", "a", n.URL})
	for range 3 {
		h.post("eth", rpcBody)
	}
	h.post("eth", `[{"jsonrpc":"2.0","id":1,"method":"eth_call"},{"jsonrpc":"2.0","id":2,"method":"eth_getBalance","params":[]}]`)
	h.checks(5 * time.Second) // the next alarm persists the stats
	want := map[string]uint64{"eth_call": 4, "eth_getBalance": 1}
	check := func(when string) {
		var stats struct{ Upstreams []adminapi.StatsEntry }
		h.admin(http.MethodGet, "/admin/stats", &stats)
		m := stats.Upstreams[0].Methods
		if len(m) != len(want) {
			t.Errorf("%s: methods %v", when, m)
		}
		for k, c := range want {
			if m[k].Count != c {
				t.Errorf("%s: %s %+v, want count %d", when, k, m[k], c)
			}
		}
	}
	check("before restart")
	h.host.Restart() // new instances, same runtime
	check("after instance restart")
	h.restartApp() // new runtime
	check("after runtime restart")
	// A new instance token means the memory is gone: what storage holds is what the object knows. Stats stored
	// before methods were counted by a known list hold junk names (and "(other)"): they are folded into "other".
	h.host.Storage("upstream", "eth/a").Put(t.Context(), map[string]string{"stats": `{"eth_getCode":{"count":5,"errors":1,"sum_us":5000,"max_us":2000},` +
		`"junk_1":{"count":2,"errors":0,"sum_us":20,"max_us":10},"(other)":{"count":1,"errors":1,"sum_us":5,"max_us":5}}`})
	h.host.Restart()
	want = map[string]uint64{"eth_getCode": 5, "other": 3}
	check("after storage changed under a new instance")
	// Junk sent through the balancer counts under "other" too, and never hides a real method.
	for i := range 210 {
		h.post("eth", fmt.Sprintf(`{"jsonrpc":"2.0","id":1,"method":"junk_%d","params":[]}`, i))
	}
	h.post("eth", rpcBody)
	want = map[string]uint64{"eth_getCode": 5, "other": 213, "eth_call": 1}
	check("after 210 junk methods")
	// The chain's table came back from storage too: healthy, height known.
	var chains struct{ Chains []adminapi.ChainSummary }
	h.admin(http.MethodGet, "/admin/chains", &chains)
	if c := chains.Chains[0]; c.BestHeight != 100 || c.Healthy != 1 {
		t.Errorf("chain after restart %+v", c)
	}
}

func TestWriteNeverSentTwice(t *testing.T) {
	const write = `{"jsonrpc":"2.0","id":9,"method":"eth_sendRawTransaction","params":["0x02"]}`
	for _, tc := range []struct {
		name    string
		fault   evmtest.Fault
		refused bool
		status  int // of the answer
		atGood  int // eth_sendRawTransaction calls that reached good
	}{
		{"hang", evmtest.Hang, false, http.StatusBadGateway, 0},
		{"500", evmtest.Status500, false, http.StatusBadGateway, 0},
		{"refused: never left, so the next upstream gets it", evmtest.None, true, http.StatusOK, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bad := evmtest.NewNode(t, "bad", 1, 105)
			good := evmtest.NewNode(t, "good", 1, 100)
			h := newHarness(t, nil, upstream{"eth", "bad", bad.URL}, upstream{"eth", "good", good.URL})
			h.admin(http.MethodPost, "/admin/init_upstreams", nil)
			h.checks(0)
			bad.SetFault(tc.fault)
			if tc.refused {
				restartWith(h, map[string]string{
					"UPSTREAM_CONFIG":       configJSON(upstream{"eth", "bad", evmtest.RefusingURL(t)}, upstream{"eth", "good", good.URL}),
					"EVMLB_ATTEMPT_TIMEOUT": "300ms",
				})
			}
			var status int
			var got string
			if tc.fault == evmtest.Hang {
				status, got = h.postTimingOut("eth", write, bad, 300*time.Millisecond)
			} else {
				status, got = h.post("eth", write)
			}
			if status != tc.status || !strings.Contains(got, `"id":9`) {
				t.Errorf("got %d %s", status, got)
			}
			if tc.status == http.StatusBadGateway && errorCode(t, got) != jsonrpc.ErrUpstreamFailed.Code {
				t.Errorf("code %d", errorCode(t, got))
			}
			if n := strings.Count(strings.Join(good.Methods(), ","), "eth_sendRawTransaction"); n != tc.atGood {
				t.Errorf("good received the write %d times, want %d", n, tc.atGood)
			}
			// Reads still fail over.
			if _, got := h.post("eth", rpcBody); servedBy(t, got) != "good" {
				t.Errorf("read served by %s", servedBy(t, got))
			}
		})
	}
}

func TestConcurrentRequests(t *testing.T) {
	a := evmtest.NewNode(t, "a", 1, 100)
	b := evmtest.NewNode(t, "b", 1, 100)
	// The checks below move the fake clock by 10 s while requests are in flight: an attempt timeout under that
	// (the harness's 300 ms) would time out a's attempts that happen to be in flight (-32070 about once in a
	// hundred runs).
	h := newHarness(t, map[string]string{"EVMLB_ATTEMPT_TIMEOUT": "1m"}, upstream{"eth", "a", a.URL}, upstream{"eth", "b", b.URL})
	b.SetFault(evmtest.Status500)
	h.checks(0)
	errs := make(chan string, 64)
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			for j := range 4 {
				body := fmt.Sprintf(`{"jsonrpc":"2.0","id":"%d-%d","method":"eth_call","params":[]}`, i, j)
				r := httptest.NewRequest(http.MethodPost, "/eth", strings.NewReader(body))
				rec := httptest.NewRecorder()
				h.host.ServeHTTP(rec, r)
				if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), fmt.Sprintf(`"id":"%d-%d"`, i, j)) {
					errs <- rec.Body.String()
				}
			}
		})
	}
	wg.Go(func() { h.checks(10 * time.Second) })
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Errorf("answer %s", e)
	}
}

// A notification gets no answer from a node (geth and anvil say 204 and nothing): the balancer passes that on,
// and the upstream is not blamed for an empty body.
func TestNotifications(t *testing.T) {
	n := evmtest.NewNode(t, "a", 1, 100)
	h := newHarness(t, nil, upstream{"eth", "a", n.URL})
	for _, body := range []string{
		`{"jsonrpc":"2.0","method":"eth_call","params":[]}`,
		`[{"jsonrpc":"2.0","method":"eth_call"},{"jsonrpc":"2.0","method":"eth_chainId"}]`,
	} {
		status, _, got := h.do(http.MethodPost, "/eth", body, false)
		if status != http.StatusNoContent || got != "" {
			t.Errorf("%s: got %d %q, want 204 and no body", body, status, got)
		}
	}
	// A batch mixing calls and notifications: answers for the calls only.
	if status, got := h.post("eth", `[{"jsonrpc":"2.0","method":"eth_call"},{"jsonrpc":"2.0","id":3,"method":"eth_chainId"}]`); status != http.StatusOK || strings.Count(got, `"id"`) != 1 {
		t.Errorf("mixed batch: %d %s", status, got)
	}
	var stats struct{ Upstreams []adminapi.StatsEntry }
	h.admin(http.MethodGet, "/admin/stats", &stats)
	if m := stats.Upstreams[0].Methods["eth_call"]; m.Count != 3 || m.Errors != 0 {
		t.Errorf("eth_call stats %+v: a notification's empty answer is not the upstream's failure", m)
	}
}
