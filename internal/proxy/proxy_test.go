package proxy

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/evmlb/evmlb/internal/balance"
	"github.com/evmlb/evmlb/internal/config"
	"github.com/evmlb/evmlb/internal/evmtest"
	"github.com/evmlb/evmlb/internal/jsonrpc"
	"github.com/evmlb/evmlb/internal/platform/memplatform"
	"github.com/evmlb/evmlb/internal/protocol"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// chainObject stands in for the chain's Durable Object: it applies what each exchange reports to its table, as
// the real one does, answers the table's snapshot, and keeps every exchange.
type chainObject struct {
	mu     sync.Mutex
	table  *balance.Table
	names  []string
	got    []protocol.Exchange
	poison map[uint64]int64
	// finalized and epoch are what the snapshots say of the chain's finality and cache epoch (set by the cache's
	// tests: the stand-in's table does not decide them).
	finalized, epoch uint64
}

func (c *chainObject) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var ex protocol.Exchange
	if r.URL.Path != protocol.PathExchange || json.NewDecoder(r.Body).Decode(&ex) != nil {
		http.Error(w, "not an exchange", http.StatusBadRequest)
		return
	}
	c.mu.Lock()
	c.got = append(c.got, ex)
	for _, o := range ex.Outcomes {
		applyOutcome(c.table, o)
	}
	for _, h := range ex.Seen {
		applySeen(c.table, h)
	}
	snap := protocol.SnapshotOf(c.table)
	snap.Finalized, snap.CacheEpoch = c.finalized, c.epoch
	if c.poison == nil {
		c.poison = map[uint64]int64{}
	}
	protocol.AddPoison(c.poison, ex.Poison, t0) // the stand-in reads no clock: an isolate drops the marks that ended
	snap.Poison = protocol.PoisonList(c.poison, t0)
	b, _ := json.Marshal(snap)
	c.mu.Unlock()
	jsonrpc.WriteJSON(w, http.StatusOK, b)
}

func (c *chainObject) Alarm(context.Context, string, string, int) error { return nil }

// exchanges is what the isolate reported so far, one Exchange per exchange.
func (c *chainObject) exchanges() []protocol.Exchange {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.got)
}

// rig is one isolate's data plane in front of three fake nodes of the chain "eth".
type rig struct {
	t     *testing.T
	host  *memplatform.Host
	obj   *chainObject
	plane *Plane
	nodes map[string]*evmtest.Node
	// cfg and settings are the plane's, for a test that makes another plane (another isolate).
	cfg      *config.Config
	settings config.Settings
}

// heights are the heads the snapshot gives the nodes: all within max_lag_blocks, so all healthy, and the
// table's order is a, b, c (highest first).
var heights = map[string]uint64{"a": 100, "b": 99, "c": 98}

// newRig starts nodes a, b and c behind a plane whose chain has the settings chainJSON (the fields of a "chains"
// entry, "" for none). The upstreams named in refused have a URL that refuses connections instead.
func newRig(t *testing.T, chainJSON string, refused ...string) *rig {
	r := &rig{t: t, obj: &chainObject{}, nodes: map[string]*evmtest.Node{}}
	names := []string{"a", "b", "c"}
	var ups []string
	for _, n := range names {
		node := evmtest.NewNode(t, n, 1, heights[n])
		r.nodes[n] = node
		url := node.URL
		if slices.Contains(refused, n) {
			url = evmtest.RefusingURL(t)
		}
		e, _ := json.Marshal(map[string]string{"chain": "eth", "name": n, "upstream": url})
		ups = append(ups, string(e))
	}
	cfg, err := config.Parse(`{"chains": {"eth": {` + chainJSON + `}}, "upstreams": [` + strings.Join(ups, ",") + `]}`)
	if err != nil {
		t.Fatal(err)
	}
	r.obj.names = names
	r.obj.table = balance.New(balance.SettingsOf(cfg.ChainSettings("eth")), names, nil)
	for _, n := range names {
		r.obj.table.Report(n, balance.Report{At: t0, Height: heights[n], ChainID: 1})
	}
	r.host = memplatform.New(nil, nil, t0)
	r.host.Bind(r.obj)
	s := config.DefaultSettings
	s.AttemptTimeout = config.TuningAttemptTimeout.MaxDuration() // no test waits for one: only canceling ends a hang
	r.cfg, r.settings = cfg, s
	r.plane = New(r.host.Platform(), cfg, s)
	return r
}

// noCache is the settings chainJSON with the answer cache off, for tests of routing that send one read again.
func noCache(chainJSON string) string {
	if chainJSON == "" {
		return `"cache": false`
	}
	return chainJSON + `, "cache": false`
}

// serve sends body to the plane as a client's request for "eth".
func (r *rig) serve(body string) (int, string) {
	r.t.Helper()
	req, perr := jsonrpc.Parse([]byte(body), 100)
	if perr != nil {
		r.t.Fatalf("%s: %v", body, perr)
	}
	rec := httptest.NewRecorder()
	r.plane.Serve(context.Background(), rec, "eth", req, []byte(body))
	return rec.Code, rec.Body.String()
}

// report exchanges now and returns what the isolate reported.
func (r *rig) report() protocol.Exchange {
	r.t.Helper()
	r.plane.Flush(context.Background())
	got := r.obj.exchanges()
	if len(got) == 0 {
		r.t.Fatal("no exchange")
	}
	return got[len(got)-1]
}

// calls is how many requests each node got, as "a=1 b=0 c=0".
func (r *rig) calls() string {
	return fmt.Sprintf("a=%d b=%d c=%d", r.nodes["a"].Calls(), r.nodes["b"].Calls(), r.nodes["c"].Calls())
}

// outcomes lists a report's outcomes as "upstream:class" ("ok" for retry.OK; "×n" for a run of n).
func outcomes(ex protocol.Exchange) string {
	var out []string
	for _, o := range ex.Outcomes {
		s := o.Upstream + ":" + string(o.Class)
		if o.Class == "" {
			s += "ok"
		}
		if o.Count() > 1 {
			s += fmt.Sprintf("×%d", o.Count())
		}
		out = append(out, s)
	}
	return strings.Join(out, " ")
}

// answer reads a single answer: the node that served it (an echo's), or its JSON-RPC error code.
func answer(t *testing.T, body string) (node string, code int) {
	t.Helper()
	var a struct {
		Result struct{ Node string } `json:"result"`
		Error  struct{ Code int }    `json:"error"`
	}
	if err := json.Unmarshal([]byte(body), &a); err != nil {
		t.Fatalf("%v in %s", err, body)
	}
	return a.Result.Node, a.Error.Code
}

const (
	read  = `{"jsonrpc":"2.0","id":1,"method":"eth_call","params":[{"to":"0x0"},"latest"]}`
	write = `{"jsonrpc":"2.0","id":1,"method":"eth_sendRawTransaction","params":["0x00"]}`
)

// TestFailover: a request tries the snapshot's candidates in order, goes to the next one when retry's table
// says so, stops at max_attempts, never sends a write twice unless it never left, and reports every attempt.
func TestFailover(t *testing.T) {
	for _, tc := range []struct {
		name     string
		chain    string // the chain's settings
		refused  []string
		faults   map[string]evmtest.Fault
		body     string
		status   int
		node     string // the node that answered, or
		code     int    // the error answered
		calls    string
		outcomes string
		retries  uint64
	}{
		{name: "the first candidate answers", body: read, status: 200, node: "a",
			calls: "a=1 b=0 c=0", outcomes: "a:ok"},
		{name: "HTTP 500 goes to the next", faults: map[string]evmtest.Fault{"a": evmtest.Status500}, body: read, status: 200, node: "b",
			calls: "a=1 b=1 c=0", outcomes: "a:http_5xx b:ok", retries: 1},
		{name: "on to the third", faults: map[string]evmtest.Fault{"a": evmtest.Status500, "b": evmtest.Status429}, body: read, status: 200, node: "c",
			calls: "a=1 b=1 c=1", outcomes: "a:http_5xx b:http_429 c:ok", retries: 2},
		{name: "a body that is not JSON-RPC goes to the next", faults: map[string]evmtest.Fault{"a": evmtest.NonJSON}, body: read, status: 200, node: "b",
			calls: "a=1 b=1 c=0", outcomes: "a:non_json b:ok", retries: 1},
		{name: "max_attempts bounds the attempts", chain: `"max_attempts": 2`, faults: map[string]evmtest.Fault{"a": evmtest.Status500, "b": evmtest.Status500, "c": evmtest.Status500},
			body: read, status: 503, code: jsonrpc.ErrNoUpstream.Code, calls: "a=1 b=1 c=0", outcomes: "a:http_5xx b:http_5xx", retries: 1},
		{name: "the last upstream's error answer is passed on", faults: map[string]evmtest.Fault{"a": evmtest.MissingData, "b": evmtest.MissingData, "c": evmtest.MissingData},
			body: read, status: 200, code: -32000, calls: "a=1 b=1 c=1", outcomes: "a:missing_data b:missing_data c:missing_data", retries: 2},
		{name: "a write that may have arrived is not sent again", faults: map[string]evmtest.Fault{"a": evmtest.Status500}, body: write,
			status: 502, code: jsonrpc.ErrUpstreamFailed.Code, calls: "a=1 b=0 c=0", outcomes: "a:http_5xx"},
		{name: "a write that never left goes to the next", refused: []string{"a"}, body: write, status: 200, node: "b",
			calls: "a=0 b=1 c=0", outcomes: "a:refused b:ok", retries: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, tc.chain, tc.refused...)
			for n, f := range tc.faults {
				r.nodes[n].SetFault(f)
			}
			status, body := r.serve(tc.body)
			node, code := answer(t, body)
			if status != tc.status || node != tc.node || code != tc.code {
				t.Errorf("answer %d %s, want %d from node %q (error %d)", status, body, tc.status, tc.node, tc.code)
			}
			if got := r.calls(); got != tc.calls {
				t.Errorf("calls %s, want %s", got, tc.calls)
			}
			ex := r.report()
			if got := outcomes(ex); got != tc.outcomes {
				t.Errorf("reported %q, want %q", got, tc.outcomes)
			}
			if ex.Metrics == nil || ex.Metrics.Retries != tc.retries {
				t.Errorf("metrics %+v, want %d retries", ex.Metrics, tc.retries)
			}
		})
	}
}

// TestOwnOutcomesReorder: the isolate applies its own outcomes at once, before any snapshot says so: an upstream
// that just failed goes last in its next request, and one whose breaker opened is out of rotation, tried only as
// a fallback after every other.
func TestOwnOutcomesReorder(t *testing.T) {
	for _, tc := range []struct {
		name     string
		chain    string
		fail     []string // the nodes failing during the first request
		thenFail []string // the nodes failing during the second
		node     string   // who answers the second request
		calls    string   // calls after both
		reported string   // both requests' outcomes, reported after them
	}{
		{name: "a failed: b first", fail: []string{"a"}, node: "b", calls: "a=1 b=2 c=0", reported: "a:http_5xx b:ok×2"},
		{name: "a and b failed: c first, then they follow in table order", fail: []string{"a", "b"}, thenFail: []string{"c"},
			node: "a", calls: "a=2 b=1 c=2", reported: "a:http_5xx b:http_5xx c:ok c:http_5xx a:ok"},
		{name: "a's breaker opened: out of rotation, tried when nothing better answers", chain: `"breaker_failures": 1`, fail: []string{"a"}, thenFail: []string{"b", "c"},
			node: "a", calls: "a=2 b=2 c=1", reported: "a:http_5xx b:ok b:http_5xx c:http_5xx a:ok"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, noCache(tc.chain)) // the same read twice: routing, not the cache
			set := func(names []string, f evmtest.Fault) {
				for _, n := range names {
					r.nodes[n].SetFault(f)
				}
			}
			set(tc.fail, evmtest.Status500)
			if status, body := r.serve(read); status != 200 {
				t.Fatalf("first request: %d %s", status, body)
			}
			set(tc.fail, evmtest.None)
			set(tc.thenFail, evmtest.Status500)
			status, body := r.serve(read)
			if node, _ := answer(t, body); status != 200 || node != tc.node {
				t.Errorf("second request answered %d %s, want node %s", status, body, tc.node)
			}
			if got := r.calls(); got != tc.calls {
				t.Errorf("calls %s, want %s", got, tc.calls)
			}
			if ex := r.obj.exchanges(); len(ex) != 1 {
				t.Fatalf("%d exchanges, want only the first snapshot's: the reordering is the isolate's own", len(ex))
			}
			if got := outcomes(r.report()); got != tc.reported {
				t.Errorf("reported %q, want %q", got, tc.reported)
			}
		})
	}
}

// TestHedgeDelay: when a request starts a second attempt beside a slow first one.
func TestHedgeDelay(t *testing.T) {
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	fill := func(ds ...time.Duration) *latencies {
		var l latencies
		for _, d := range ds {
			l.add(d)
		}
		return &l
	}
	many := func(n int, d time.Duration) []time.Duration { return slices.Repeat([]time.Duration{d}, n) }
	steps := []time.Duration{ms(100), ms(200), ms(300), ms(400), ms(500), ms(600), ms(700), ms(800), ms(900), ms(1000)}
	hedging := Policy{HedgePercentile: 0.9, HedgeMinDelay: ms(50)}
	for _, tc := range []struct {
		name  string
		pol   Policy
		write bool
		lat   *latencies
		want  time.Duration
	}{
		{"off", Policy{HedgeMinDelay: ms(50)}, false, fill(steps...), 0},
		{"never for a write", hedging, true, fill(steps...), 0},
		{"too few latencies: the least delay", hedging, false, fill(steps[:latencyMinSamples-1]...), ms(50)},
		{"the percentile of the window", hedging, false, fill(steps...), ms(1000)},
		{"the median", Policy{HedgePercentile: 0.5, HedgeMinDelay: ms(50)}, false, fill(steps...), ms(600)},
		{"never below the least delay", hedging, false, fill(many(20, ms(10))...), ms(50)},
		{"the latest window only", hedging, false, fill(append(many(latencyWindow, time.Second), many(latencyWindow, ms(80))...)...), ms(80)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := hedgeDelay(tc.pol, tc.write, tc.lat); got != tc.want {
				t.Errorf("hedgeDelay = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestHedge: a read whose first attempt hangs past the hedge delay also goes to the next upstream; the first
// answer wins, the hung attempt is canceled and not blamed. The hedge waits on the host's clock, which only the
// test moves.
func TestHedge(t *testing.T) {
	r := newRig(t, `"hedge_percentile": 0.9, "hedge_min_delay": "50ms", "request_timeout": "5m"`)
	r.nodes["a"].SetFault(evmtest.Hang)
	type result struct {
		status int
		body   string
	}
	done := make(chan result)
	go func() {
		status, body := r.serve(read)
		done <- result{status, body}
	}()
	hedged := func() bool {
		v := r.plane.view("eth")
		v.mu.Lock()
		defer v.mu.Unlock()
		return v.met.Hedges > 0
	}
	var res result
	for waiting := true; waiting; {
		select {
		case res = <-done:
			waiting = false
		default:
			if hedged() { // the hedge went: the clock stays where it is
				res, waiting = <-done, false
				break
			}
			r.host.Clock().Advance(time.Millisecond) // the hedge comes due once its timer is set
			runtime.Gosched()
		}
	}
	if node, _ := answer(t, res.body); res.status != 200 || node != "b" {
		t.Errorf("answered %d %s, want b's answer", res.status, res.body)
	}
	// The clock may have gone on a little after the hedge: what the request saw is in one exchange or another.
	r.host.Wait()
	r.plane.Flush(context.Background())
	var seen []string
	var hedges, retries uint64
	for _, ex := range r.obj.exchanges() {
		if o := outcomes(ex); o != "" {
			seen = append(seen, o)
		}
		if ex.Metrics != nil {
			hedges, retries = hedges+ex.Metrics.Hedges, retries+ex.Metrics.Retries
		}
	}
	if got := strings.Join(seen, " "); got != "b:ok" {
		t.Errorf("reported %q, want b:ok only (the canceled attempt blames nobody)", got)
	}
	if hedges != 1 || retries != 0 {
		t.Errorf("%d hedges and %d retries, want 1 and 0", hedges, retries)
	}
}

// TestBatchRepair: the elements of a batch answer that failed with a retry class are asked again of the next
// upstreams and put back in place; the others stay the first upstream's bytes, and a batch with nothing to
// repair is passed on as the upstream wrote it. A write's element is never asked again.
func TestBatchRepair(t *testing.T) {
	const (
		batch      = `[{"jsonrpc":"2.0","id":1,"method":"eth_call","params":[]},{"jsonrpc":"2.0","id":2,"method":"eth_getBalance","params":["0x0","latest"]}]`
		batchWrite = `[{"jsonrpc":"2.0","id":1,"method":"eth_call","params":[]},{"jsonrpc":"2.0","id":2,"method":"eth_sendRawTransaction","params":["0x00"]}]`
	)
	for _, tc := range []struct {
		name    string
		missing map[string]string // node → the method it lacks data for
		body    string
		second  string // who answered the second element ("" for an error)
		joined  bool   // the answer was put together (else it is the first upstream's bytes)
		calls   string
		asked   string // the methods b was asked
	}{
		{name: "nothing to repair", body: batch, second: "a", calls: "a=1 b=0 c=0"},
		{name: "one element from the next upstream", missing: map[string]string{"a": "eth_getBalance"}, body: batch,
			second: "b", joined: true, calls: "a=1 b=1 c=0", asked: "eth_getBalance"},
		{name: "on to the third", missing: map[string]string{"a": "eth_getBalance", "b": "eth_getBalance"}, body: batch,
			second: "c", joined: true, calls: "a=1 b=1 c=1", asked: "eth_getBalance"},
		{name: "nobody has it: the first answer stands", missing: map[string]string{"a": "eth_getBalance", "b": "eth_getBalance", "c": "eth_getBalance"},
			body: batch, calls: "a=1 b=1 c=1", asked: "eth_getBalance"},
		{name: "a write is not asked again", missing: map[string]string{"a": "eth_sendRawTransaction"}, body: batchWrite, calls: "a=1 b=0 c=0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, "")
			for n, m := range tc.missing {
				r.nodes[n].SetMissingData(m)
			}
			status, body := r.serve(tc.body)
			var elems []json.RawMessage
			if status != 200 || json.Unmarshal([]byte(body), &elems) != nil || len(elems) != 2 {
				t.Fatalf("answered %d %s", status, body)
			}
			if first, _ := answer(t, string(elems[0])); first != "a" || !strings.Contains(string(elems[0]), `"id":1 ,`) {
				t.Errorf("first element %s, want a's bytes", elems[0])
			}
			second, code := answer(t, string(elems[1]))
			if second != tc.second || (tc.second == "" && code != -32000) {
				t.Errorf("second element %s, want node %q's answer (or a's error)", elems[1], tc.second)
			}
			if joined := !strings.Contains(body, ",\n"); joined != tc.joined { // evmtest separates elements so
				t.Errorf("answer %q: put together %t, want %t", body, joined, tc.joined)
			}
			if got := r.calls(); got != tc.calls {
				t.Errorf("calls %s, want %s", got, tc.calls)
			}
			if got := strings.Join(r.nodes["b"].Methods(), ","); got != tc.asked {
				t.Errorf("b was asked %q, want %q", got, tc.asked)
			}
		})
	}
}

// TestExchangeTiming: the isolate fetches its first snapshot on the request's path, and afterwards exchanges in
// the background only: early after a failure (at most every failureExchangeGap), once the snapshot is older than
// the TTL, and, when its traffic stops, once more at the TTL for what it has not reported. Each exchange carries
// the outcomes since the last one.
func TestExchangeTiming(t *testing.T) {
	r := newRig(t, noCache("")) // the same read again and again: every one goes upstream
	ttl := config.DefaultSettings.SnapshotTTL
	for _, st := range []struct {
		name      string
		after     time.Duration // the clock moves on by this much first
		request   bool          // then a request is served
		failing   []string      // by these nodes failing
		exchanges int           // exchanges so far
		reported  string        // what the last one reported, when it is new
	}{
		{"cold: the first snapshot, on the path", 0, true, nil, 1, ""},
		{"a failure within the gap: none", failureExchangeGap / 2, true, []string{"a"}, 1, ""},
		{"a failure past the gap: one, early", failureExchangeGap, true, []string{"b"}, 2, "a:ok a:http_5xx b:ok b:http_5xx c:ok"},
		{"successes within the TTL: none", ttl / 2, true, nil, 2, ""},
		{"more within the TTL: none", ttl / 4, true, nil, 2, ""},
		{"no more traffic: what is left goes at the TTL", ttl / 4, false, nil, 3, "c:ok×2"},
		{"nothing left: nothing more", 2 * ttl, false, nil, 3, ""},
		{"a request past the TTL: one", 0, true, nil, 4, "c:ok"},
	} {
		r.host.Clock().Advance(st.after)
		r.host.Wait() // what came due on the way
		if st.request {
			for n, node := range r.nodes {
				node.SetFault(evmtest.None)
				if slices.Contains(st.failing, n) {
					node.SetFault(evmtest.Status500)
				}
			}
			if status, body := r.serve(read); status != 200 {
				t.Fatalf("%s: answered %d %s", st.name, status, body)
			}
			r.host.Wait() // the background exchange it may have started
		}
		got := r.obj.exchanges()
		if len(got) != st.exchanges {
			t.Fatalf("%s: %d exchanges, want %d", st.name, len(got), st.exchanges)
		}
		if st.reported != "" {
			if o := outcomes(got[len(got)-1]); o != st.reported {
				t.Errorf("%s: the last exchange reported %q, want %q", st.name, o, st.reported)
			}
		}
	}
	if c := r.plane.Counters(); c.Requests != 6 || c.Exchanges != 4 || c.ObjectCallsOnPath != 1 {
		t.Errorf("counters %+v, want 6 requests, 4 exchanges, one of them on the path", c)
	}
}
