package proxy

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/evmlb/evmlb/internal/balance"
	"github.com/evmlb/evmlb/internal/config"
	"github.com/evmlb/evmlb/internal/jsonrpc"
)

// cachedRig is a rig whose chain's finalized block is 90 (the heads are 100, 99, 98) and cache epoch 1, its
// first snapshot taken.
func cachedRig(t *testing.T, chainJSON string) *rig {
	r := newRig(t, chainJSON)
	r.obj.finalized, r.obj.epoch = 90, 1
	r.serveCtx(context.Background(), `{"jsonrpc":"2.0","id":0,"method":"eth_chainId"}`)
	return r
}

// served is one answer: status, body and the cache header.
type served struct {
	status int
	body   string
	cache  string
}

func (r *rig) serveCtx(ctx context.Context, body string) served {
	r.t.Helper()
	req, perr := jsonrpc.Parse([]byte(body), 100)
	if perr != nil {
		r.t.Fatalf("%s: %v", body, perr)
	}
	rec := httptest.NewRecorder()
	host := "rpc.example.org"
	r.plane.Serve(WithHost(ctx, &host), rec, "eth", req, []byte(body))
	return served{rec.Code, rec.Body.String(), rec.Header().Get(CacheHeader)}
}

// totalCalls is the requests every node got.
func (r *rig) totalCalls() int64 {
	return r.nodes["a"].Calls() + r.nodes["b"].Calls() + r.nodes["c"].Calls()
}

func call(id int, method, params string) string {
	return fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":%q,"params":%s}`, id, method, params)
}

// idOf is an answer's id member, as its raw JSON.
func idOf(t *testing.T, body string) string {
	t.Helper()
	var a struct{ ID json.RawMessage }
	if err := json.Unmarshal([]byte(body), &a); err != nil {
		t.Fatalf("%v in %s", err, body)
	}
	return string(a.ID)
}

// TestCacheSingle holds the data plane to the cache's rules for single calls: a finalized read is a miss and
// then a hit with the client's own id, reaching an upstream once; an unfinalized read, a "pending" read and a
// write are skipped every time; a read at latest is a hit until the served head moves; a lookup by hash is
// kept only once its block is finalized; an empty answer at latest is never kept; eth_chainId counts as a hit.
func TestCacheSingle(t *testing.T) {
	type step struct {
		body  string
		cache string // the header
		calls int64  // upstream requests it made
	}
	hash := `"0xab00000000000000000000000000000000000000000000000000000000000001"`
	for _, tc := range []struct {
		name  string
		raw   string // the nodes' result for every call but the health checks', "" for their own echo
		steps []step
	}{
		{"finalized block: a miss, then hits", "", []step{
			{call(1, "eth_getBlockByNumber", `["0x5a",false]`), "miss", 1},
			{call(2, "eth_getBlockByNumber", `["0x5a",false]`), "hit", 0},
			{call(3, "eth_getBlockByNumber", ` [ "0x5a" , false ] `), "hit", 0}, // whitespace is not a new key
			{call(4, "eth_getBlockByNumber", `["0x5A",false]`), "miss", 1},      // another spelling is
		}},
		{"unfinalized block: skipped", "", []step{
			{call(1, "eth_getBlockByNumber", `["0x5b",false]`), "skip", 1},
			{call(2, "eth_getBlockByNumber", `["0x5b",false]`), "skip", 1},
		}},
		{"pending: skipped", "", []step{
			{call(1, "eth_getTransactionCount", `["0x01","pending"]`), "skip", 1},
			{call(2, "eth_getTransactionCount", `["0x01","pending"]`), "skip", 1},
		}},
		{"write: skipped", `"0x1234"`, []step{
			{call(1, "eth_sendRawTransaction", `["0x00"]`), "skip", 1},
			{call(2, "eth_sendRawTransaction", `["0x00"]`), "skip", 1},
		}},
		{"realtime: a hit until the head moves", "", []step{
			{call(1, "eth_gasPrice", `[]`), "miss", 1},
			{call(2, "eth_gasPrice", `[]`), "hit", 0},
			{"head", "", 0},
			{call(3, "eth_gasPrice", `[]`), "miss", 1},
		}},
		{"latest: never kept (another isolate may be past a reorg)", "", []step{
			{call(1, "eth_call", `[{"to":"0x0"},"latest"]`), "skip", 1},
			{call(2, "eth_call", `[{"to":"0x0"},"latest"]`), "skip", 1},
			{call(3, "eth_getBlockByNumber", `["latest",false]`), "skip", 1},
			{call(4, "eth_getBlockByNumber", `["latest",false]`), "skip", 1},
		}},
		{"by hash, finalized: kept", `{"blockNumber":"0x5a","status":"0x1"}`, []step{
			{call(1, "eth_getTransactionReceipt", `[`+hash+`]`), "miss", 1},
			{call(2, "eth_getTransactionReceipt", `[`+hash+`]`), "hit", 0},
		}},
		{"by hash, not finalized: not kept", `{"blockNumber":"0x5b","status":"0x1"}`, []step{
			{call(1, "eth_getTransactionReceipt", `[`+hash+`]`), "miss", 1},
			{call(2, "eth_getTransactionReceipt", `[`+hash+`]`), "miss", 1},
		}},
		{"by hash, null: not kept", `null`, []step{
			{call(1, "eth_getTransactionReceipt", `[`+hash+`]`), "miss", 1},
			{call(2, "eth_getTransactionReceipt", `[`+hash+`]`), "miss", 1},
		}},
		{"empty and realtime: not kept", `"0x"`, []step{
			{call(1, "eth_gasPrice", `[]`), "miss", 1},
			{call(2, "eth_gasPrice", `[]`), "miss", 1},
		}},
		{"empty at a finalized block: kept", `"0x"`, []step{
			{call(1, "eth_getCode", `["0x01","0x5a"]`), "miss", 1},
			{call(2, "eth_getCode", `["0x01","0x5a"]`), "hit", 0},
		}},
		{"eth_chainId: answered by the balancer, a hit", "", []step{
			{call(1, "eth_chainId", `[]`), "hit", 0},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := cachedRig(t, "")
			if tc.raw != "" {
				for _, n := range r.nodes {
					n.SetRawAnswer(func(body []byte) []byte {
						var c struct{ ID json.RawMessage }
						_ = json.Unmarshal(body, &c)
						return []byte(`{"jsonrpc":"2.0","id":` + string(c.ID) + `,"result":` + tc.raw + `}`)
					})
				}
			}
			for i, st := range tc.steps {
				if st.body == "head" { // the chain's head moves (a health check), and the isolate hears of it
					for _, n := range r.obj.names {
						r.obj.table.Report(n, balance.Report{At: t0, Height: heights[n] + 5, ChainID: 1})
					}
					r.plane.Flush(context.Background())
					continue
				}
				before := r.totalCalls()
				got := r.serveCtx(context.Background(), st.body)
				if got.status != 200 || got.cache != st.cache {
					t.Errorf("step %d: %d %q %s, want 200 %q", i, got.status, got.cache, got.body, st.cache)
				}
				if calls := r.totalCalls() - before; calls != st.calls {
					t.Errorf("step %d: %d upstream requests, want %d", i, calls, st.calls)
				}
				var want struct{ ID json.RawMessage }
				_ = json.Unmarshal([]byte(st.body), &want)
				if id := idOf(t, got.body); id != string(want.ID) {
					t.Errorf("step %d: answered with id %s, want its own %s: %s", i, id, want.ID, got.body)
				}
			}
		})
	}
}

// TestCacheOff: a chain with "cache": false sends every call upstream, and says skip.
func TestCacheOff(t *testing.T) {
	r := cachedRig(t, `"cache": false`)
	for i := range 2 {
		got := r.serveCtx(context.Background(), call(i, "eth_getBlockByNumber", `["0x5a",false]`))
		if got.cache != "skip" {
			t.Errorf("request %d: %q", i, got.cache)
		}
	}
	if r.totalCalls() != 2 {
		t.Errorf("%d upstream requests, want 2", r.totalCalls())
	}
}

// gate holds every node's answers to calls other than the health checks' until it is opened; the first request
// that reaches a node is counted.
type gate struct {
	open    chan struct{}
	once    sync.Once
	mu      sync.Mutex
	arrived int
	answer  func(id string) string
}

func newGate(r *rig, answer func(id string) string) *gate {
	g := &gate{open: make(chan struct{}), answer: answer}
	for _, n := range r.nodes {
		n.SetRawAnswer(func(body []byte) []byte {
			g.mu.Lock()
			g.arrived++
			g.mu.Unlock()
			<-g.open
			var c struct{ ID json.RawMessage }
			_ = json.Unmarshal(body, &c)
			return []byte(g.answer(string(c.ID)))
		})
	}
	r.t.Cleanup(g.release)
	return g
}

func (g *gate) release() { g.once.Do(func() { close(g.open) }) }

// waitFor polls cond (something the test observes, never a fixed sleep) for up to 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited 10s for %s", what)
		}
		runtime.Gosched()
		time.Sleep(time.Millisecond)
	}
}

// waiters is how many calls wait on flights of r's plane.
func (r *rig) waiters() int { return r.plane.flights.Waiting() }

// concurrent sends n bodies at once (body(i) is the i-th) and returns the answers once the gate is opened after
// the n-1 others joined the first's flight.
func concurrent(t *testing.T, r *rig, g *gate, n int, body func(i int) string) []served {
	out := make([]served, n)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); out[0] = r.serveCtx(context.Background(), body(0)) }()
	waitFor(t, "the first request at a node", func() bool { g.mu.Lock(); defer g.mu.Unlock(); return g.arrived == 1 })
	for i := 1; i < n; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); out[i] = r.serveCtx(context.Background(), body(i)) }()
	}
	waitFor(t, "the others to join its flight", func() bool { return r.waiters() == n-1 })
	g.release()
	wg.Wait()
	return out
}

// TestCoalesce: 16 concurrent identical reads make one upstream request; each gets the answer with its own id;
// one is the miss (or skip) and 15 are shared. So for a cacheable read (finalized) and for ones the cache never
// keeps (latest, pending). Writes are never shared.
func TestCoalesce(t *testing.T) {
	for _, tc := range []struct {
		name, method, params, lead string
	}{
		{"eth_call at latest", "eth_call", `[{"to":"0x0","data":"0x01"},"latest"]`, "skip"},
		{"eth_call at a finalized block", "eth_call", `[{"to":"0x0","data":"0x01"},"0x5a"]`, "miss"},
		{"eth_call at pending", "eth_call", `[{"to":"0x0","data":"0x01"},"pending"]`, "skip"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := cachedRig(t, "")
			g := newGate(r, func(id string) string { return `{"jsonrpc":"2.0","id":` + id + `,"result":"0xbeef"}` })
			before := r.totalCalls()
			out := concurrent(t, r, g, 16, func(i int) string { return call(100+i, tc.method, tc.params) })
			if calls := r.totalCalls() - before; calls != 1 {
				t.Errorf("%d upstream requests, want 1", calls)
			}
			count := map[string]int{}
			for i, a := range out {
				count[a.cache]++
				want := fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"result":"0xbeef"}`, 100+i)
				if a.status != 200 || a.body != want {
					t.Errorf("request %d: %d %s, want %s", i, a.status, a.body, want)
				}
			}
			if count[tc.lead] != 1 || count["shared"] != 15 {
				t.Errorf("headers %v, want 1 %s and 15 shared", count, tc.lead)
			}
			ex := r.report()
			if got := ex.Metrics.Cache["eth_call"]; got["shared"] != 15 || got[tc.lead] != 1 {
				t.Errorf("evmlb_cache_requests_total for eth_call: %v", got)
			}
		})
	}
	t.Run("writes are never shared", func(t *testing.T) {
		r := cachedRig(t, "")
		g := newGate(r, func(id string) string { return `{"jsonrpc":"2.0","id":` + id + `,"result":"0x1"}` })
		var wg sync.WaitGroup
		for i := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r.serveCtx(context.Background(), call(i, "eth_sendRawTransaction", `["0x00"]`))
			}()
		}
		waitFor(t, "every write at a node", func() bool { g.mu.Lock(); defer g.mu.Unlock(); return g.arrived == 4 })
		g.release()
		wg.Wait()
	})
}

// TestCoalescedFailure: a failure reaches every waiter as it would have reached it alone, with its own id: an
// upstream's JSON-RPC error (and it is not kept), and no upstream at all.
func TestCoalescedFailure(t *testing.T) {
	for _, tc := range []struct {
		name   string
		answer func(id string) string
		status int
		code   int
	}{
		{"a revert", func(id string) string {
			return `{"jsonrpc":"2.0","id":` + id + `,"error":{"code":3,"message":"execution reverted","data":"0x08c379a0"}}`
		}, 200, 3},
		{"no upstream answers", func(string) string { return `<html>bad gateway</html>` }, jsonrpc.ErrNoUpstream.Status, jsonrpc.ErrNoUpstream.Code},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := cachedRig(t, "")
			g := newGate(r, tc.answer)
			out := concurrent(t, r, g, 8, func(i int) string { return call(i+1, "eth_call", `[{"to":"0x0"},"0x10"]`) })
			for i, a := range out {
				node, code := answer(t, a.body)
				if a.status != tc.status || code != tc.code || node != "" || idOf(t, a.body) != fmt.Sprint(i+1) {
					t.Errorf("request %d: %d %s, want %d with error %d and its own id", i, a.status, a.body, tc.status, tc.code)
				}
			}
			before := r.totalCalls()
			if a := r.serveCtx(context.Background(), call(99, "eth_call", `[{"to":"0x0"},"0x10"]`)); a.cache != "miss" || r.totalCalls() == before {
				t.Errorf("the failure was kept: %q %s", a.cache, a.body)
			}
		})
	}
}

// TestWaiterGivesUp: a waiter whose own context ends stops waiting (and gets what it would have alone: no
// upstream answered in its time), while the leader goes on and answers.
func TestWaiterGivesUp(t *testing.T) {
	r := cachedRig(t, "")
	g := newGate(r, func(id string) string { return `{"jsonrpc":"2.0","id":` + id + `,"result":"0x2"}` })
	body := call(1, "eth_call", `[{"to":"0x0"},"latest"]`)
	done := make(chan served)
	go func() { done <- r.serveCtx(context.Background(), body) }()
	waitFor(t, "the leader at a node", func() bool { g.mu.Lock(); defer g.mu.Unlock(); return g.arrived == 1 })
	ctx, cancel := context.WithCancel(context.Background())
	gone := make(chan served)
	go func() { gone <- r.serveCtx(ctx, call(2, "eth_call", `[{"to":"0x0"},"latest"]`)) }()
	waitFor(t, "the waiter to join", func() bool { return r.waiters() == 1 })
	cancel()
	var a served
	select {
	case a = <-gone:
	case <-time.After(10 * time.Second):
		t.Fatal("the waiter whose context ended still waits for the leader")
	}
	if _, code := answer(t, a.body); code != jsonrpc.ErrNoUpstream.Code || idOf(t, a.body) != "2" {
		t.Errorf("the waiter that gave up got %s", a.body)
	}
	g.release()
	if a := <-done; a.body != `{"jsonrpc":"2.0","id":1,"result":"0x2"}` {
		t.Errorf("the leader got %s", a.body)
	}
}

// TestLeaderGoesAway: when the leader's own context ends before any answer, its waiters do not get its
// cancellation: one of them asks itself, and each gets an answer.
func TestLeaderGoesAway(t *testing.T) {
	r := cachedRig(t, "")
	g := newGate(r, func(id string) string { return `{"jsonrpc":"2.0","id":` + id + `,"result":"0x3"}` })
	ctx, cancel := context.WithCancel(context.Background())
	lead := make(chan served)
	go func() { lead <- r.serveCtx(ctx, call(1, "eth_call", `[{"to":"0x0"},"latest"]`)) }()
	waitFor(t, "the leader at a node", func() bool { g.mu.Lock(); defer g.mu.Unlock(); return g.arrived == 1 })
	wait := make(chan served)
	go func() { wait <- r.serveCtx(context.Background(), call(2, "eth_call", `[{"to":"0x0"},"latest"]`)) }()
	waitFor(t, "the waiter to join", func() bool { return r.waiters() == 1 })
	cancel()
	if a := <-lead; !strings.Contains(a.body, `"error"`) {
		t.Errorf("the leader that went away got %s", a.body)
	}
	waitFor(t, "the waiter to ask itself", func() bool { g.mu.Lock(); defer g.mu.Unlock(); return g.arrived == 2 })
	g.release()
	if a := <-wait; a.body != `{"jsonrpc":"2.0","id":2,"result":"0x3"}` {
		t.Errorf("the waiter got %s", a.body)
	}
}

// TestPurgeAndEpoch: PurgeCache empties the isolate's entries of the chain; a new cache epoch in a snapshot
// makes every old entry unreachable.
func TestPurgeAndEpoch(t *testing.T) {
	r := cachedRig(t, "")
	p := r.host.Platform()
	p.Cache = nil // the isolate's tier alone: the edge tier's entries are left to the epoch (TestEdgeTier)
	r.plane = New(p, r.cfg, r.settings)
	body := call(1, "eth_getBlockByNumber", `["0x1",false]`)
	for _, want := range []string{"miss", "hit"} {
		if a := r.serveCtx(context.Background(), body); a.cache != want {
			t.Fatalf("%q, want %q", a.cache, want)
		}
	}
	r.plane.PurgeCache("other")
	if a := r.serveCtx(context.Background(), body); a.cache != "hit" {
		t.Errorf("another chain's purge: %q", a.cache)
	}
	if c := r.plane.Counters(); r.plane.CacheBytes("eth") == 0 || c.CacheBytes != r.plane.CacheBytes("eth") || c.CacheEntries != 1 ||
		c.CacheMaxBytes != config.DefaultSettings.CacheMemoryBytes {
		t.Errorf("held: %d bytes, counters %+v", r.plane.CacheBytes("eth"), c)
	}
	r.plane.PurgeCache("eth")
	if r.plane.CacheBytes("eth") != 0 {
		t.Error("bytes held after the purge")
	}
	if a := r.serveCtx(context.Background(), body); a.cache != "miss" {
		t.Errorf("after the purge: %q", a.cache)
	}
	r.obj.epoch++
	r.plane.Flush(context.Background())
	if a := r.serveCtx(context.Background(), body); a.cache != "miss" {
		t.Errorf("after the epoch moved: %q", a.cache)
	}
}

// edge is a fake edge tier (platform.EdgeCache).
type edge struct {
	mu   sync.Mutex
	m    map[string][]byte
	puts []string
}

func (e *edge) Match(_ context.Context, key string) ([]byte, bool, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	b, ok := e.m[key]
	return b, ok, nil
}

func (e *edge) Put(_ context.Context, key string, body []byte, _ time.Duration) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.m == nil {
		e.m = map[string][]byte{}
	}
	e.m[key] = body
	e.puts = append(e.puts, key)
	return nil
}

func (e *edge) Delete(_ context.Context, key string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.m, key)
	return nil
}

// TestEdgeTier: finalized answers go to the edge tier too, realtime ones never; another isolate finds them there.
func TestEdgeTier(t *testing.T) {
	r := cachedRig(t, "")
	e := &edge{}
	p := r.host.Platform()
	p.Cache = e
	r.plane = New(p, r.cfg, r.settings)
	r.serveCtx(context.Background(), `{"jsonrpc":"2.0","id":0,"method":"eth_chainId"}`)
	r.serveCtx(context.Background(), call(1, "eth_getBlockByNumber", `["0x2",false]`))
	r.serveCtx(context.Background(), call(2, "eth_getBalance", `["0x01","latest"]`))
	r.host.Wait()
	if len(e.puts) != 1 || !strings.Contains(e.puts[0], "/eth/1/eth_getBlockByNumber/finalized/") ||
		!strings.HasPrefix(e.puts[0], "https://rpc.example.org/__evmlb/cache/") {
		t.Fatalf("edge puts %v, want the finalized read only", e.puts)
	}
	r.plane = New(p, r.cfg, r.settings) // another isolate: its memory is empty
	r.serveCtx(context.Background(), `{"jsonrpc":"2.0","id":0,"method":"eth_chainId"}`)
	before := r.totalCalls()
	if a := r.serveCtx(context.Background(), call(7, "eth_getBlockByNumber", `["0x2",false]`)); a.cache != "hit" || idOf(t, a.body) != "7" {
		t.Errorf("from the edge: %q %s", a.cache, a.body)
	}
	if r.totalCalls() != before {
		t.Error("an edge hit went upstream")
	}
}

// elements reads a batch answer: each element's id and whether it has a result.
func elements(t *testing.T, body string) []string {
	t.Helper()
	var elems []struct {
		ID     json.RawMessage
		Result json.RawMessage
	}
	if err := json.Unmarshal([]byte(body), &elems); err != nil {
		t.Fatalf("%v in %s", err, body)
	}
	var out []string
	for _, e := range elems {
		s := string(e.ID)
		if e.Result == nil {
			s += "!"
		}
		out = append(out, s)
	}
	return out
}

// sentElements is how many calls the nodes got in batches and single requests, health checks aside.
func (r *rig) sentElements() int {
	n := 0
	for _, node := range r.nodes {
		n += len(node.Methods())
	}
	return n
}

// TestCacheBatch: a batch takes part element by element: elements in the cache are answered from it and only the
// others go upstream, as a smaller batch; identical elements are sent once; the answer keeps the batch's order and
// each element's own id; each element is counted.
func TestCacheBatch(t *testing.T) {
	r := cachedRig(t, "")
	batch := func(ids ...int) string {
		return fmt.Sprintf(`[%s,%s,%s]`, call(ids[0], "eth_getBlockByNumber", `["0x5a",false]`),
			call(ids[1], "eth_getBlockByNumber", `["0x5b",false]`), call(ids[2], "eth_call", `[{"to":"0x0"},"0x5a"]`))
	}
	a := r.serveCtx(context.Background(), batch(1, 2, 3))
	if got := strings.Join(elements(t, a.body), " "); got != "1 2 3" || a.cache != "" || r.sentElements() != 3 {
		t.Fatalf("first batch: %s (%q), %d elements sent", a.body, a.cache, r.sentElements())
	}
	before := r.sentElements()
	a = r.serveCtx(context.Background(), batch(13, 12, 11))
	if got := strings.Join(elements(t, a.body), " "); got != "13 12 11" {
		t.Errorf("second batch: %s, want the ids 13 12 11 in order", a.body)
	}
	if sent := r.sentElements() - before; sent != 1 {
		t.Errorf("%d elements sent, want the unfinalized one only", sent)
	}
	if !strings.Contains(a.body, `{"jsonrpc":"2.0","id":13,"result":{"node":"a","method":"eth_getBlockByNumber","number":"0x5a"}}`) {
		t.Errorf("the cached element: %s", a.body)
	}
	ex := r.report()
	if got := ex.Metrics.Cache["eth_getBlockByNumber"]; got["hit"] != 1 || got["miss"] != 1 || got["skip"] != 2 {
		t.Errorf("eth_getBlockByNumber's cache counts %v", got)
	}
	if got := ex.Metrics.Cache["eth_call"]; got["hit"] != 1 || got["miss"] != 1 {
		t.Errorf("eth_call's cache counts %v", got)
	}

	// Every element from the cache: nothing goes upstream.
	before = r.sentElements()
	a = r.serveCtx(context.Background(), fmt.Sprintf(`[%s,%s]`, call(21, "eth_call", `[{"to":"0x0"},"0x5a"]`), call(22, "eth_getBlockByNumber", `["0x5a",false]`)))
	if got := strings.Join(elements(t, a.body), " "); got != "21 22" || r.sentElements() != before || a.status != 200 {
		t.Errorf("all from the cache: %d %s, %d sent", a.status, a.body, r.sentElements()-before)
	}

	// Identical elements of one batch are sent once, each answered with its own id.
	before = r.sentElements()
	a = r.serveCtx(context.Background(), fmt.Sprintf(`[%s,%s]`, call(31, "eth_call", `[{"to":"0x9"},"pending"]`), call(32, "eth_call", `[{"to":"0x9"},"pending"]`)))
	if got := strings.Join(elements(t, a.body), " "); got != "31 32" || r.sentElements()-before != 1 {
		t.Errorf("identical elements: %s, %d sent", a.body, r.sentElements()-before)
	}
}

// TestCacheBatchShared: a batch element identical to a single call in flight waits for its answer; the batch's
// other elements go upstream meanwhile.
func TestCacheBatchShared(t *testing.T) {
	r := cachedRig(t, "")
	g := newGate(r, func(id string) string { return `{"jsonrpc":"2.0","id":` + id + `,"result":"0x5"}` })
	one := make(chan served)
	go func() { one <- r.serveCtx(context.Background(), call(1, "eth_call", `[{"to":"0x0"},"0x5a"]`)) }()
	waitFor(t, "the single call at a node", func() bool { g.mu.Lock(); defer g.mu.Unlock(); return g.arrived == 1 })
	for _, n := range r.nodes { // the batch's other element is answered at once
		n.SetRawAnswer(nil)
	}
	batch := make(chan served)
	go func() {
		batch <- r.serveCtx(context.Background(), fmt.Sprintf(`[%s,%s]`, call(2, "eth_getBlockByNumber", `["0x5b",false]`), call(3, "eth_call", `[{"to":"0x0"},"0x5a"]`)))
	}()
	waitFor(t, "the batch's element to join", func() bool { return r.waiters() == 1 })
	waitFor(t, "the batch's other element at a node", func() bool { return r.sentElements() == 1 })
	g.release()
	if a := <-one; a.body != `{"jsonrpc":"2.0","id":1,"result":"0x5"}` || a.cache != "miss" {
		t.Errorf("the single call: %q %s", a.cache, a.body)
	}
	a := <-batch
	if got := strings.Join(elements(t, a.body), " "); got != "2 3" || !strings.Contains(a.body, `{"jsonrpc":"2.0","id":3,"result":"0x5"}`) {
		t.Errorf("the batch: %s", a.body)
	}
}

// TestCacheMemoryBound: the isolate's memory tier holds at most EVMLB_CACHE_MEMORY_BYTES of answers, dropping the
// least recently used: 300 distinct finalized answers of 10 KiB in a 1 MiB tier leave at most 1 MiB held, the
// newest answer a hit and the oldest a miss again.
func TestCacheMemoryBound(t *testing.T) {
	r := cachedRig(t, "")
	r.settings.CacheMemoryBytes = 1 << 20
	p := r.host.Platform()
	p.Cache = nil // the isolate's tier alone: memplatform's edge tier would answer the evicted ones
	r.plane = New(p, r.cfg, r.settings)
	r.serveCtx(context.Background(), `{"jsonrpc":"2.0","id":0,"method":"eth_chainId"}`)
	big := `"0x` + strings.Repeat("ab", 5<<10) + `"`
	for _, n := range r.nodes {
		n.SetRawAnswer(func(body []byte) []byte {
			var c struct{ ID json.RawMessage }
			_ = json.Unmarshal(body, &c)
			return []byte(`{"jsonrpc":"2.0","id":` + string(c.ID) + `,"result":` + big + `}`)
		})
	}
	read := func(i int) string { return call(i, "eth_getCode", fmt.Sprintf(`["0x%040x","0x1"]`, i)) }
	for i := range 300 {
		if a := r.serveCtx(context.Background(), read(i)); a.cache != "miss" {
			t.Fatalf("read %d: %q", i, a.cache)
		}
		if c := r.plane.Counters(); c.CacheBytes > 1<<20 {
			t.Fatalf("after %d answers the tier holds %d bytes, over its 1 MiB", i+1, c.CacheBytes)
		}
	}
	if c := r.plane.Counters(); c.CacheEntries >= 100 || c.CacheEntries < 80 {
		t.Errorf("%d entries of ~10 KiB in 1 MiB", c.CacheEntries)
	}
	if a := r.serveCtx(context.Background(), read(299)); a.cache != "hit" {
		t.Errorf("the newest answer: %q", a.cache)
	}
	if a := r.serveCtx(context.Background(), read(0)); a.cache != "miss" {
		t.Errorf("the oldest answer: %q", a.cache)
	}
}

// TestSharedHeadMonotonic: a single eth_blockNumber that joins a flight led by a batch element gets the batch's
// upstream answer as it came, which no monotonic rule touched: it must still never be below the head this isolate
// served before (the stress test found 60 such answers in workerd before monotonicHead was applied to shared answers).
func TestSharedHeadMonotonic(t *testing.T) {
	r := cachedRig(t, "")
	var first struct{ Result string }
	if a := r.serveCtx(context.Background(), call(1, "eth_blockNumber", `[]`)); json.Unmarshal([]byte(a.body), &first) != nil || first.Result != "0x64" {
		t.Fatalf("the head first: %s", a.body)
	}
	open := make(chan struct{})
	var mu sync.Mutex
	arrived := 0
	for _, n := range r.nodes {
		n.SetRawAnswer(func(body []byte) []byte {
			mu.Lock()
			arrived++
			mu.Unlock()
			<-open
			var calls []struct{ ID json.RawMessage }
			_ = json.Unmarshal(body, &calls)
			out := make([]string, len(calls))
			for i, c := range calls { // an upstream far behind: 0x5 to every element
				out[i] = `{"jsonrpc":"2.0","id":` + string(c.ID) + `,"result":"0x5"}`
			}
			return []byte("[" + strings.Join(out, ",") + "]")
		})
	}
	released := sync.OnceFunc(func() { close(open) })
	t.Cleanup(released)
	batch := make(chan served)
	go func() {
		batch <- r.serveCtx(context.Background(), fmt.Sprintf(`[%s,%s]`, call(2, "eth_blockNumber", `[]`), call(3, "eth_gasPrice", `[]`)))
	}()
	waitFor(t, "the batch at a node", func() bool { mu.Lock(); defer mu.Unlock(); return arrived >= 1 })
	one := make(chan served)
	go func() { one <- r.serveCtx(context.Background(), call(4, "eth_blockNumber", `[]`)) }()
	waitFor(t, "the single call to join the batch's flight", func() bool { return r.waiters() == 1 })
	released()
	if a := <-one; a.cache != "shared" || a.body != `{"jsonrpc":"2.0","id":4,"result":"0x64"}` {
		t.Errorf("the single eth_blockNumber: %q %s, want the served head 0x64", a.cache, a.body)
	}
	<-batch
}
