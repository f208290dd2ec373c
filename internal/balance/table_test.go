package balance

import (
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/evmlb/evmlb/internal/blockref"
	"github.com/evmlb/evmlb/internal/retry"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func report(tb *Table, name string, at time.Time, height, chainID uint64) {
	tb.Report(name, Report{At: at, Height: height, ChainID: chainID})
}

func latest() blockref.Ref { return blockref.Ref{Kind: blockref.Latest} }

func TestUnknownUpstreamsServeInConfigOrder(t *testing.T) {
	tb := New(Settings{}, []string{"a", "b", "c"}, nil)
	if got := tb.Candidates(latest(), t0); !reflect.DeepEqual(got, []string{"a", "b", "c"}) {
		t.Fatalf("candidates before any report = %v", got)
	}
}

func TestHighestFirstThenUnknown(t *testing.T) {
	tb := New(Settings{}, []string{"a", "b", "c"}, nil)
	report(tb, "a", t0, 100, 1)
	report(tb, "b", t0, 105, 1)
	if got := tb.Candidates(latest(), t0); !reflect.DeepEqual(got, []string{"b", "a", "c"}) {
		t.Fatalf("got %v, want b (highest), a, then unknown c", got)
	}
}

func TestLaggingByBlocksAndByStaleHead(t *testing.T) {
	tb := New(Settings{MaxLagBlocks: 10, StaleAfter: 30 * time.Second}, []string{"a", "b", "c"}, nil)
	report(tb, "a", t0, 100, 1)
	report(tb, "b", t0, 111, 1)
	report(tb, "c", t0, 105, 1) // confirms b's head (within 10 of it)
	if s := tb.State("a", t0); s != Lagging {
		t.Fatalf("11 blocks behind with max lag 10: state %s, want lagging", s)
	}
	if got := tb.Candidates(latest(), t0); !reflect.DeepEqual(got, []string{"b", "c"}) {
		t.Fatalf("lagging upstream still a candidate: %v", got)
	}
	// Stale head: a stays at 105 while b keeps moving for longer than StaleAfter.
	tb = New(Settings{MaxLagBlocks: 10, StaleAfter: 30 * time.Second}, []string{"a", "b"}, nil)
	report(tb, "a", t0, 105, 1)
	report(tb, "b", t0, 105, 1)
	for i := 1; i <= 4; i++ {
		at := t0.Add(time.Duration(i) * 10 * time.Second)
		report(tb, "a", at, 105, 1)
		report(tb, "b", at, uint64(105+i), 1)
	}
	if s := tb.State("a", t0.Add(40*time.Second)); s != Lagging {
		t.Fatalf("head stopped 40s while b moved: state %s, want lagging", s)
	}
	// Everyone stopped (chain halted): nobody is stale.
	tb = New(Settings{StaleAfter: 30 * time.Second}, []string{"a", "b"}, nil)
	report(tb, "a", t0, 105, 1)
	report(tb, "b", t0, 105, 1)
	report(tb, "a", t0.Add(time.Hour), 105, 1)
	if s := tb.State("a", t0.Add(time.Hour)); s != Healthy {
		t.Fatalf("halted chain: state %s, want healthy", s)
	}
}

func TestWrongChainQuarantinedByMajorityOrConfig(t *testing.T) {
	tb := New(Settings{}, []string{"a", "b", "c"}, nil)
	report(tb, "a", t0, 100, 1)
	report(tb, "b", t0, 100, 1)
	report(tb, "c", t0, 500, 5)
	if s := tb.State("c", t0); s != WrongChain {
		t.Fatalf("minority chain id: state %s", s)
	}
	if tb.Best() != 100 || tb.Head() != 100 {
		t.Fatalf("a wrong-chain upstream moved best/head: %d/%d", tb.Best(), tb.Head())
	}
	tb = New(Settings{ExpectedChainID: 5}, []string{"a", "b", "c"}, nil)
	report(tb, "a", t0, 100, 1)
	report(tb, "b", t0, 100, 1)
	report(tb, "c", t0, 500, 5)
	if got := tb.Candidates(latest(), t0); !reflect.DeepEqual(got, []string{"c"}) {
		t.Fatalf("configured chain id 5: candidates %v, want [c]", got)
	}
}

func TestSyncingAndCooldown(t *testing.T) {
	tb := New(Settings{CooldownAfter429: time.Minute}, []string{"a", "b"}, nil)
	report(tb, "a", t0, 100, 1)
	tb.Report("b", Report{At: t0, Height: 100, ChainID: 1, Syncing: true})
	if s := tb.State("b", t0); s != Syncing {
		t.Fatalf("state %s, want syncing", s)
	}
	tb.Observe("a", retry.HTTP429, time.Millisecond, t0)
	if s := tb.State("a", t0.Add(59*time.Second)); s != CoolingDown {
		t.Fatalf("state %s, want cooling_down", s)
	}
	if s := tb.State("a", t0.Add(61*time.Second)); s != Healthy {
		t.Fatalf("after cool-down: state %s, want healthy", s)
	}
}

func TestBreakerOpensHalfOpensCloses(t *testing.T) {
	tb := New(Settings{BreakerFailures: 3, BreakerOpenFor: 10 * time.Second, ProbeShare: 0.5}, []string{"a", "b"}, func() float64 { return 0.9 })
	report(tb, "a", t0, 100, 1)
	report(tb, "b", t0, 100, 1)
	for i := 0; i < 2; i++ {
		tb.Observe("a", retry.HTTP5xx, time.Millisecond, t0)
	}
	if s := tb.State("a", t0); s != Healthy {
		t.Fatalf("two failures of three: state %s", s)
	}
	tb.Observe("a", retry.Timeout, time.Millisecond, t0)
	if s := tb.State("a", t0.Add(time.Second)); s != Failing {
		t.Fatalf("three failures: state %s, want failing", s)
	}
	if got := tb.Candidates(latest(), t0.Add(time.Second)); !reflect.DeepEqual(got, []string{"b"}) {
		t.Fatalf("open breaker still a candidate: %v", got)
	}
	half := t0.Add(11 * time.Second)
	if s := tb.State("a", half); s != Recovering {
		t.Fatalf("after open period: state %s, want recovering", s)
	}
	if got := tb.Candidates(latest(), half); !reflect.DeepEqual(got, []string{"b", "a"}) {
		t.Fatalf("recovering upstream should come last without a probe draw: %v", got)
	}
	tb.rand = func() float64 { return 0.1 }
	if got := tb.Candidates(latest(), half); got[0] != "a" {
		t.Fatalf("probe draw should put the recovering upstream first: %v", got)
	}
	tb.Observe("a", retry.HTTP5xx, time.Millisecond, half)
	if s := tb.State("a", half.Add(time.Second)); s != Failing {
		t.Fatalf("failed probe: state %s, want failing again", s)
	}
	tb.Observe("a", retry.OK, time.Millisecond, half.Add(20*time.Second))
	if s := tb.State("a", half.Add(20*time.Second)); s != Healthy {
		t.Fatalf("successful probe: state %s, want healthy", s)
	}
}

func TestMissingDataDoesNotPenalise(t *testing.T) {
	tb := New(Settings{BreakerFailures: 1}, []string{"a"}, nil)
	report(tb, "a", t0, 100, 1)
	tb.Observe("a", retry.MissingData, time.Millisecond, t0)
	tb.Observe("a", retry.Unsupported, time.Millisecond, t0)
	if s := tb.State("a", t0); s != Healthy {
		t.Fatalf("missing data / unsupported must not open the breaker: %s", s)
	}
}

func TestBlockAwareCandidates(t *testing.T) {
	tb := New(Settings{MaxLagBlocks: 100}, []string{"a", "b", "c"}, nil)
	report(tb, "a", t0, 100, 1)
	report(tb, "b", t0, 90, 1)
	if got := tb.Candidates(blockref.Ref{Kind: blockref.Number, Number: 95}, t0); !reflect.DeepEqual(got, []string{"a", "c"}) {
		t.Fatalf("block 95: %v, want a (has it) and unknown c, never b at 90", got)
	}
	if got := tb.Candidates(blockref.Ref{Kind: blockref.Number, Number: 50}, t0); !reflect.DeepEqual(got, []string{"a", "b", "c"}) {
		t.Fatalf("block 50: %v", got)
	}
	report(tb, "c", t0, 99, 1)
	if got := tb.Candidates(blockref.Ref{Kind: blockref.Number, Number: 101}, t0); !reflect.DeepEqual(got, []string{"a"}) {
		t.Fatalf("block above every head: %v, want only the best upstream", got)
	}
}

func TestHeadNeverDecreases(t *testing.T) {
	tb := New(Settings{}, []string{"a", "b"}, nil)
	report(tb, "a", t0, 100, 1)
	report(tb, "b", t0, 90, 1)
	tb.Report("a", Report{At: t0.Add(time.Second), Err: retry.Network})
	if tb.Head() != 100 || tb.ServeHead("b", 95, t0) != 100 || tb.ServeHead("a", 101, t0) != 101 {
		t.Fatalf("head went backwards: %d", tb.Head())
	}
	// a's breaker opens: its height no longer counts, but what was served stays the floor.
	for range 5 {
		tb.Observe("a", retry.Timeout, time.Millisecond, t0.Add(2*time.Second))
	}
	if tb.Best() != 95 || tb.Head() != 101 || tb.ServeHead("b", 96, t0.Add(3*time.Second)) != 101 {
		t.Fatalf("best %d head %d: the served floor must hold", tb.Best(), tb.Head())
	}
}

func TestLoadSpreadAmongEquals(t *testing.T) {
	tb := New(Settings{}, []string{"a", "b", "c"}, nil)
	for _, n := range []string{"a", "b", "c"} {
		report(tb, n, t0, 100, 1)
		tb.Observe(n, retry.OK, 10*time.Millisecond, t0)
	}
	tb.Observe("c", retry.OK, 500*time.Millisecond, t0) // c is slow: never first
	first := map[string]int{}
	for i := 0; i < 100; i++ {
		first[tb.Candidates(latest(), t0)[0]]++
	}
	if first["a"] < 30 || first["b"] < 30 || first["c"] != 0 {
		t.Fatalf("first choices %v: want a and b sharing, c never", first)
	}
}

func TestPollDelay(t *testing.T) {
	for _, tc := range []struct {
		failures int
		want     time.Duration
	}{{0, 5 * time.Second}, {1, 10 * time.Second}, {3, 40 * time.Second}, {4, time.Minute}, {60, time.Minute}} {
		if got := PollDelay(5*time.Second, tc.failures, time.Minute); got != tc.want {
			t.Errorf("PollDelay(5s, %d, 1m) = %s, want %s", tc.failures, got, tc.want)
		}
	}
}

func TestRestoreAndSetUpstreams(t *testing.T) {
	tb := New(Settings{}, []string{"a", "b"}, nil)
	tb.RestoreAll([]Upstream{{Name: "a", Height: 42, ChainID: 1}, {Name: "zz", Height: 99}})
	if u, _ := tb.Get("a"); u.Height != 42 || tb.Head() != 42 {
		t.Fatalf("restore: %+v head %d", u, tb.Head())
	}
	tb.SetUpstreams([]string{"b", "a", "c"})
	if u, ok := tb.Get("a"); !ok || u.Height != 42 {
		t.Fatal("SetUpstreams dropped a kept upstream's state")
	}
	if !reflect.DeepEqual(tb.Names(), []string{"b", "a", "c"}) {
		t.Fatalf("names %v", tb.Names())
	}
}

func TestFallbackOrderAndExclusions(t *testing.T) {
	names := []string{"ok", "lag", "sync", "cool", "fail", "wrong", "unknown", "ok2"}
	tb := New(Settings{BreakerFailures: 1, BreakerOpenFor: time.Minute, CooldownAfter429: time.Minute}, names, nil)
	report(tb, "ok", t0, 100, 1)
	report(tb, "ok2", t0, 100, 1) // ok alone, 20 above lag, would be unconfirmed: nothing says which of two is right
	report(tb, "lag", t0, 80, 1)
	tb.Report("sync", Report{At: t0, Height: 90, ChainID: 1, Syncing: true})
	report(tb, "cool", t0, 100, 1)
	tb.Observe("cool", retry.HTTP429, time.Millisecond, t0) // cooling down; breaker (threshold 1) open too
	report(tb, "fail", t0, 100, 1)
	tb.Observe("fail", retry.HTTP5xx, time.Millisecond, t0.Add(-time.Second)) // opened earlier: closes first
	report(tb, "wrong", t0, 100, 5)
	now := t0.Add(time.Second)
	// Syncing (90) before lagging (80): highest first; then cooling down; then open breakers; never the wrong
	// chain, never those in rotation (ok) or unknown.
	if got := tb.Fallback(latest(), now); !reflect.DeepEqual(got, []string{"sync", "lag", "cool", "fail"}) {
		t.Fatalf("fallback %v", got)
	}
	// A request for block 85 never goes to lag at 80.
	if got := tb.Fallback(blockref.Ref{Kind: blockref.Number, Number: 85}, now); !reflect.DeepEqual(got, []string{"sync", "cool", "fail"}) {
		t.Fatalf("fallback for block 85: %v", got)
	}
	// Two open breakers: the one that closes sooner goes first.
	tb.Observe("ok", retry.Timeout, time.Millisecond, t0.Add(-2*time.Second))
	if got := tb.Fallback(latest(), now); !reflect.DeepEqual(got[len(got)-2:], []string{"ok", "fail"}) {
		t.Fatalf("open breakers not ordered by closing time: %v", got)
	}
}

func TestBlind(t *testing.T) {
	tb := New(Settings{}, []string{"a", "b"}, nil)
	if !tb.Blind() {
		t.Fatal("a new table is blind")
	}
	tb.Report("b", Report{At: t0, Err: retry.Refused}) // even a failed check is a report
	if tb.Blind() {
		t.Fatal("blind after a report")
	}
	tb = New(Settings{}, []string{"a", "b"}, nil)
	tb.Observe("a", retry.OK, time.Millisecond, t0)
	if tb.Blind() {
		t.Fatal("blind after a served request")
	}
	tb = New(Settings{}, []string{"a"}, nil)
	tb.RestoreAll([]Upstream{{Name: "a", ReportedAt: t0, Height: 5}})
	if tb.Blind() {
		t.Fatal("blind after restoring a reported row")
	}
}

func TestReason(t *testing.T) {
	tb := New(Settings{BreakerFailures: 2, BreakerOpenFor: 30 * time.Second, StaleAfter: 30 * time.Second}, []string{"ok", "lag", "sync", "cool", "fail", "wrong"}, nil)
	report(tb, "ok", t0, 100, 1)
	report(tb, "lag", t0, 85, 1)
	tb.Report("sync", Report{At: t0, Height: 100, ChainID: 1, Syncing: true})
	report(tb, "cool", t0, 100, 1)
	tb.Observe("cool", retry.HTTP429, time.Millisecond, t0)
	report(tb, "fail", t0, 100, 1)
	tb.Observe("fail", retry.HTTP5xx, time.Millisecond, t0)
	tb.Observe("fail", retry.Timeout, time.Millisecond, t0)
	report(tb, "wrong", t0, 100, 5)
	now := t0.Add(time.Second)
	for name, want := range map[string]string{
		"ok":      "",
		"lag":     "15 blocks behind the best (at most 10)",
		"sync":    "eth_syncing reports a sync in progress",
		"cool":    "answered HTTP 429: no traffic until 2026-01-01T00:01:00Z",
		"fail":    "circuit breaker open after 2 consecutive failures (last: timeout) until 2026-01-01T00:00:30Z",
		"wrong":   "eth_chainId is 5, the chain's is 1: quarantined",
		"nothere": "",
	} {
		if got := tb.Reason(name, now); got != want {
			t.Errorf("Reason(%s) = %q, want %q", name, got, want)
		}
	}
	if got := tb.Reason("fail", t0.Add(31*time.Second)); !strings.Contains(got, "half-open") {
		t.Errorf("half-open reason %q", got)
	}
	// Stale head: others moved, lag's did not for longer than StaleAfter (and it is within max lag).
	tb = New(Settings{StaleAfter: 30 * time.Second}, []string{"a", "b"}, nil)
	report(tb, "a", t0, 100, 1)
	report(tb, "b", t0, 100, 1)
	report(tb, "a", t0.Add(20*time.Second), 100, 1)
	report(tb, "b", t0.Add(20*time.Second), 101, 1)
	if got := tb.Reason("a", t0.Add(20*time.Second)); got != "" {
		t.Errorf("others moved 20s after a last did: %q", got)
	}
	report(tb, "a", t0.Add(40*time.Second), 100, 1)
	report(tb, "b", t0.Add(40*time.Second), 102, 1)
	if got := tb.Reason("a", t0.Add(40*time.Second)); got != "head has not moved for over 30s while others' did" {
		t.Errorf("stale reason %q", got)
	}
}

// ObserveN is n Observe calls with the same latency, in one step: requests, latency and error rate alike.
func TestObserveNIsNObserves(t *testing.T) {
	at := time.Unix(1000, 0)
	one := New(Settings{}, []string{"a"}, nil)
	many := New(Settings{}, []string{"a"}, nil)
	for _, tb := range []*Table{one, many} {
		tb.Observe("a", retry.OK, 40*time.Millisecond, at)
		tb.Observe("a", retry.HTTP5xx, 10*time.Millisecond, at)
	}
	for range 7 {
		one.Observe("a", retry.OK, 10*time.Millisecond, at)
	}
	many.ObserveN("a", retry.OK, 10*time.Millisecond, 7, at)
	u1, _ := one.Get("a")
	un, _ := many.Get("a")
	near := func(x, y float64) bool { return x-y < 1e-9 && y-x < 1e-9 }
	if u1.Requests != 9 || un.Requests != 9 || !near(u1.LatencyMS, un.LatencyMS) || !near(u1.ErrorRate, un.ErrorRate) || u1.Breaker != un.Breaker {
		t.Errorf("7 observes %+v\nObserveN %+v", u1, un)
	}
}

// An upstream that never answered a health check and keeps failing them is down, with a reason that says how it
// fails; one not checked yet stays unknown. Down is routed as unknown is (after the healthy ones) until its
// breaker opens, and once open the reason still says it never answered. A success makes it healthy.
func TestNeverAnsweredIsDown(t *testing.T) {
	names := []string{"ok", "refused", "404", "new"}
	tb := New(Settings{BreakerFailures: 5, BreakerOpenFor: 30 * time.Second}, names, nil)
	var at time.Time
	for i := range 3 {
		at = t0.Add(time.Duration(i) * 5 * time.Second)
		report(tb, "ok", at, 100, 1)
		tb.Report("refused", Report{At: at, Err: retry.Refused})
		tb.Report("404", Report{At: at, Err: retry.HTTPOther, Status: 404})
	}
	for name, want := range map[string]struct {
		state  State
		reason string
	}{
		"ok":      {Healthy, ""},
		"refused": {Down, "never answered a health check: 3 consecutive failures (last: connection refused or host not found)"},
		"404":     {Down, "never answered a health check: 3 consecutive failures (last: HTTP 404)"},
		"new":     {Unknown, ""},
	} {
		if got := tb.State(name, at); got != want.state {
			t.Errorf("State(%s) = %q, want %q", name, got, want.state)
		}
		if got := tb.Reason(name, at); got != want.reason {
			t.Errorf("Reason(%s) = %q, want %q", name, got, want.reason)
		}
	}
	if got := tb.Candidates(latest(), at); !reflect.DeepEqual(got, []string{"ok", "refused", "404", "new"}) {
		t.Errorf("candidates %v: down goes where unknown does", got)
	}
	if slices.Index(States, Down) < 0 {
		t.Error("States lacks down")
	}
	// A live failure carries no status: the class is shown.
	tb.Observe("404", retry.Timeout, time.Millisecond, at)
	if got := tb.Reason("404", at); got != "never answered a health check: 4 consecutive failures (last: timeout)" {
		t.Errorf("after a live timeout: %q", got)
	}
	// Two more failures open the breaker: failing, and the reason still says it never answered.
	for i := range 2 {
		tb.Report("refused", Report{At: at.Add(time.Duration(i+1) * time.Second), Err: retry.Refused})
	}
	now := at.Add(3 * time.Second)
	if got, reason := tb.State("refused", now), tb.Reason("refused", now); got != Failing || !strings.HasSuffix(reason, "; it never answered a health check") || !strings.Contains(reason, "(last: connection refused or host not found)") {
		t.Errorf("refused after 5 failures: %s %q", got, reason)
	}
	if reason := tb.Reason("refused", now.Add(time.Minute)); !strings.HasSuffix(reason, "half-open: a share of requests probes it; it never answered a health check") {
		t.Errorf("refused half-open: %q", reason)
	}
	// Its first answer makes it healthy; failures after that are a known upstream's, not down.
	report(tb, "404", now, 100, 1)
	tb.Report("404", Report{At: now.Add(time.Second), Err: retry.HTTPOther, Status: 404})
	if got := tb.State("404", now.Add(time.Second)); got != Healthy {
		t.Errorf("404 after answering once, then failing once: %q", got)
	}
}
