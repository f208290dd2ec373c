// Package proxy is the data plane: it answers a client's JSON-RPC request inside the Worker's own request, from
// the isolate's snapshot of the chain's routing table. It fetches providers directly, fails over, hedges and
// repairs batches, and reports what it saw to the chain's Durable Object in the background (protocol.Exchange),
// which answers with a fresh snapshot. In the steady state a client request makes no Durable Object call.
//
// Pure Go on platform.Platform: the same code runs natively in tests and in the wasm Worker.
package proxy

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/evmlb/evmlb/internal/balance"
	"github.com/evmlb/evmlb/internal/blockref"
	"github.com/evmlb/evmlb/internal/budget"
	"github.com/evmlb/evmlb/internal/cache"
	"github.com/evmlb/evmlb/internal/chainid"
	"github.com/evmlb/evmlb/internal/config"
	"github.com/evmlb/evmlb/internal/forward"
	"github.com/evmlb/evmlb/internal/jsonrpc"
	"github.com/evmlb/evmlb/internal/methods"
	"github.com/evmlb/evmlb/internal/metrics"
	"github.com/evmlb/evmlb/internal/platform"
	"github.com/evmlb/evmlb/internal/protocol"
	"github.com/evmlb/evmlb/internal/retry"
	"github.com/evmlb/evmlb/internal/stats"
)

// Fixed constants of the data plane. They are not settings (config.TuningTable): each is a bound on how the
// isolate keeps its snapshot fresh, not a policy an operator would tune per deployment, and README.md states the
// first two ("How requests are routed").
const (
	// failureExchangeGap is the least time between two exchanges that local failures trigger early: the chain
	// object hears of a failure within it, and a burst of failures makes at most one exchange per gap.
	failureExchangeGap = 100 * time.Millisecond
	// maxStale is the least age past which a snapshot is not routed from at all: the request that finds it so old
	// (an isolate that was idle) waits for a fresh one. The age is this or twice EVMLB_SNAPSHOT_TTL, whichever is
	// longer (Plane.maxAge), so that a long TTL still leaves a request that comes after it a background exchange
	// to start rather than a wait. Under any steady traffic snapshots never get this old (the TTL's default is 1s);
	// below it, a stale snapshot never decides a head alone (farBehind).
	maxStale = 30 * time.Second
	// exchangeTimeout bounds a background exchange with the chain object. It is off every client's path; what
	// did not go out goes with the next exchange.
	exchangeTimeout = 10 * time.Second
)

// Policy is how a chain's requests are tried, beyond the table's thresholds.
type Policy struct {
	MaxAttempts     int
	RequestTimeout  time.Duration
	HedgePercentile float64 // 0: no hedging
	HedgeMinDelay   time.Duration
}

// PolicyOf is a chain's policy, its defaults from config.ChainDefaults.
func PolicyOf(c config.Chain) Policy {
	c = c.WithDefaults()
	return Policy{MaxAttempts: c.MaxAttempts, RequestTimeout: c.RequestTimeout, HedgePercentile: c.HedgePercentile, HedgeMinDelay: c.HedgeMinDelay}
}

// Counters are the data plane's figures for this runtime (shown in /admin/stats).
type Counters struct {
	// Requests counts client requests served from a snapshot.
	Requests uint64 `json:"requests"`
	// ObjectCallsOnPath counts Durable Object calls a client request waited for (a cold isolate's first snapshot).
	ObjectCallsOnPath uint64 `json:"object_calls_on_path"`
	// Exchanges counts background exchanges with chain objects (reports out, snapshots in).
	Exchanges uint64 `json:"exchanges"`
	// ExchangeErrors counts exchanges that failed (the isolate keeps routing from what it has).
	ExchangeErrors uint64 `json:"exchange_errors"`
	// CacheBytes and CacheEntries are what the answer cache's memory tier holds now (every chain's), and
	// CacheMaxBytes its bound (EVMLB_CACHE_MEMORY_BYTES).
	CacheBytes    int64 `json:"cache_bytes"`
	CacheEntries  int   `json:"cache_entries"`
	CacheMaxBytes int64 `json:"cache_max_bytes"`
}

// Plane is the data plane of one runtime. Make it with New; it is safe for concurrent use.
type Plane struct {
	p        platform.Platform
	cfg      *config.Config
	budgets  Budgets                   // the providers' request budgets (budget.go)
	mem      *cache.Memory             // the answer cache's memory tier, every chain's (cache.go)
	flights  cache.Flights[reply]      // identical reads in flight
	cacheSet map[string]cache.Settings // each chain's cache settings (read only)
	settings config.Settings
	client   protocol.Client
	ttl      time.Duration

	byName map[string]map[string]config.Upstream // chain → upstream name → upstream (read only)

	mu     sync.Mutex
	chains map[string]*chainView

	requests, onPath, exchanges, exchangeErrors atomic.Uint64
}

// New makes the data plane of a runtime.
func New(p platform.Platform, cfg *config.Config, s config.Settings) *Plane {
	ttl := s.SnapshotTTL
	if ttl <= 0 {
		ttl = config.DefaultSettings.SnapshotTTL
	}
	byName := map[string]map[string]config.Upstream{}
	for _, u := range cfg.Upstreams {
		if byName[u.Chain] == nil {
			byName[u.Chain] = map[string]config.Upstream{}
		}
		byName[u.Chain][u.Name] = u
	}
	memBytes := s.CacheMemoryBytes
	if memBytes <= 0 {
		memBytes = config.DefaultSettings.CacheMemoryBytes
	}
	cacheSet := map[string]cache.Settings{}
	for _, chain := range cfg.Chains() {
		cacheSet[chain] = cacheSettings(cfg.ChainSettings(chain))
	}
	return &Plane{p: p, cfg: cfg, settings: s, client: protocol.Client{P: p}, ttl: ttl, chains: map[string]*chainView{},
		byName: byName, mem: cache.NewMemory(memBytes), cacheSet: cacheSet}
}

// maxAge is the age past which a request waits for a fresh snapshot rather than route from the one it has:
// maxStale or twice the snapshot TTL, whichever is longer.
func (pl *Plane) maxAge() time.Duration { return max(maxStale, 2*pl.ttl) }

// Counters reads the runtime's figures.
func (pl *Plane) Counters() Counters {
	held, entries := pl.mem.Held()
	return Counters{Requests: pl.requests.Load(), ObjectCallsOnPath: pl.onPath.Load(), Exchanges: pl.exchanges.Load(),
		ExchangeErrors: pl.exchangeErrors.Load(), CacheBytes: held, CacheEntries: entries, CacheMaxBytes: pl.mem.Max()}
}

// chainView is what this isolate knows of one chain: the snapshot's table, updated by its own outcomes at once
// (its own breaker view), and what it has to report.
type chainView struct {
	mu         sync.Mutex
	table      *balance.Table // nil until the first snapshot
	fetchedAt  time.Time      // when the table's snapshot arrived
	lastTry    time.Time      // when the last exchange started
	exchanging bool
	flushing   bool // a flush of what is pending is scheduled (maybeExchange)
	// chainServed is the chain object's served floor in the last snapshot: when a snapshot says less, the chain
	// yielded it, and the isolate follows.
	chainServed uint64
	cold        chan struct{} // closed when the first snapshot's fetch ends (nil: none running)
	pending     protocol.Exchange
	methods     map[string]stats.Stats // per upstream, since the last exchange
	met         *metrics.Chain         // Prometheus counts since the last exchange
	lat         latencies
	poison      map[uint64]int64  // fingerprints of poison requests → until when they are refused, Unix ms (poison.go)
	logsWidth   map[string]uint64 // per upstream, the eth_getLogs width its refusals taught (logs.go)
}

func (pl *Plane) view(chain string) *chainView {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	v := pl.chains[chain]
	if v == nil {
		v = &chainView{methods: map[string]stats.Stats{}, met: &metrics.Chain{}}
		pl.chains[chain] = v
	}
	return v
}

// names is the chain's configured upstreams, in config order.
func (pl *Plane) names(chain string) []string {
	var names []string
	for _, u := range pl.cfg.ChainUpstreams(chain) {
		names = append(names, u.Name)
	}
	return names
}

// ensure makes sure v has a table: the first request of a chain in this isolate fetches the snapshot on its
// path (concurrent first requests wait for the same fetch), and so does one that finds it older than maxAge;
// later ones never wait. When no snapshot could be had, the request routes from the old one, or blind, in config
// order. now is the request's start; waited reports that it waited (its clock reading is then old).
func (pl *Plane) ensure(ctx context.Context, chain string, v *chainView, now time.Time) (waited bool) {
	for {
		v.mu.Lock()
		if v.table != nil && (now.Sub(v.fetchedAt) < pl.maxAge() || v.exchanging) {
			v.mu.Unlock()
			return waited
		}
		waited = true
		wait := v.cold
		if wait == nil {
			v.cold = make(chan struct{})
			v.mu.Unlock()
			pl.onPath.Add(1)
			pl.exchange(ctx, chain, v)
			v.mu.Lock()
			close(v.cold)
			v.cold = nil
			v.mu.Unlock()
			return true
		}
		v.mu.Unlock()
		select {
		case <-wait:
			now = pl.p.Now()
		case <-ctx.Done():
			return true
		}
	}
}

// exchange reports what v has pending to the chain's object and installs the snapshot it answers. The outcomes
// seen while it was in flight are applied again on top of the new snapshot, so that the isolate's own view of a
// failing upstream is not lost.
func (pl *Plane) exchange(ctx context.Context, chain string, v *chainView) bool {
	v.mu.Lock()
	ex := v.pending
	ex.Methods = nil
	for up, s := range v.methods {
		if ex.Methods == nil {
			ex.Methods = map[string]map[string]stats.Counter{}
		}
		m := make(map[string]stats.Counter, len(s))
		for name, c := range s {
			m[name] = *c
		}
		ex.Methods[up] = m
	}
	if !v.met.Empty() {
		ex.Metrics = v.met
	}
	v.pending, v.methods, v.met = protocol.Exchange{}, map[string]stats.Stats{}, &metrics.Chain{}
	v.lastTry = pl.p.Now()
	v.mu.Unlock()

	pl.exchanges.Add(1)
	snap, err := pl.client.Exchange(ctx, chain, ex)
	v.mu.Lock()
	defer v.mu.Unlock()
	if err != nil {
		pl.exchangeErrors.Add(1)
		pl.p.Logf("chain %s: exchange with the chain object failed: %v", chain, err)
		// Put the report back (bounded), to go with the next exchange.
		back := protocol.Exchange{Outcomes: ex.Outcomes, Seen: ex.Seen, Poison: append(ex.Poison, v.pending.Poison...)}
		for _, l := range append(ex.Learned, v.pending.Learned...) {
			back.AddLearned(l)
		}
		v.pending.Learned = back.Learned
		for _, o := range v.pending.Outcomes {
			back.AddOutcome(o)
		}
		for _, h := range v.pending.Seen {
			back.AddSeen(h)
		}
		v.pending.Outcomes = keepLatest(back.Outcomes, &v.pending.Dropped)
		v.pending.Seen = keepLatest(back.Seen, &v.pending.Dropped)
		v.pending.Poison = back.Poison[max(0, len(back.Poison)-protocol.MaxPoison):]
		v.pending.Dropped += ex.Dropped
		for up, m := range ex.Methods {
			for name, c := range m {
				v.methodStats(up).Add(name, c)
			}
		}
		v.met.Add(ex.Metrics, time.Time{}, nil)
		return false
	}
	t := copyOf(balance.SettingsOf(pl.cfg.ChainSettings(chain)), pl.names(chain), snap)
	for _, o := range v.pending.Outcomes {
		applyOutcome(t, o)
	}
	for _, h := range v.pending.Seen {
		applySeen(t, h)
	}
	for _, l := range v.pending.Learned {
		l.Apply(t)
	}
	// eth_blockNumber never goes backwards in this isolate: the snapshot may say less than it answered, unless
	// the chain object's own floor went down (it yielded to reality, or the chain id or upstreams changed).
	if v.table != nil && snap.Floor.Served >= v.chainServed {
		t.KeepServed(v.table.Served())
	}
	v.chainServed = snap.Floor.Served
	v.table, v.fetchedAt = t, pl.p.Now()
	v.addPoison(snap.Poison, v.fetchedAt) // every isolate's poison requests
	return true
}

// copyOf is an isolate's copy of the chain's table from its snapshot: the table's verdict (chain id, whose heights
// count) taken as given, so that the isolate routes to exactly the upstreams the chain's table has in rotation.
func copyOf(s balance.Settings, names []string, snap protocol.Snapshot) *balance.Table {
	t := balance.New(s, names, nil)
	snap.Restore(t)
	_ = t.Notes() // the chain object logs the floor's notes; an isolate's copy must not repeat them
	return t
}

// count changes v's metrics under its lock.
func (v *chainView) count(f func(*metrics.Chain)) {
	v.mu.Lock()
	f(v.met)
	v.mu.Unlock()
}

func (v *chainView) methodStats(up string) stats.Stats {
	s := v.methods[up]
	if s == nil {
		s = make(stats.Stats)
		v.methods[up] = s
	}
	return s
}

// maxLearnedError bounds the answers read again for an error member when their class is OK: an error answer is
// small, and a larger answer is a result (a revert's answer beyond it would count as a success, which it is for
// the state: the call ran there).
const maxLearnedError = 4 << 10

// learn teaches the isolate's table (v.mu held) what an answer to a single call proves of its upstream's
// capabilities (balance.Table.Learn), and queues it for the chain object when it changed what routes.
func (pl *Plane) learn(r *request, o outcome, now time.Time) {
	method := r.method()
	if method == "" {
		return
	}
	lack := retry.NoLack
	switch o.class {
	case retry.Unsupported, retry.MissingData:
		lack = retry.LackOf(method, retry.ErrorMember(o.body))
		if lack == retry.NoLack {
			return
		}
	case retry.OK:
		if !balance.StateRead(method) || r.ref.Kind != blockref.Number && r.ref.Kind != blockref.Earliest ||
			len(o.body) <= maxLearnedError && retry.ErrorMember(o.body) != nil {
			return // only a result of a state read at a block proves anything
		}
	default:
		return
	}
	l := protocol.Learned{Upstream: o.up, Method: method, Kind: r.ref.Kind, Block: r.ref.Number, Class: o.class,
		Lack: lack, At: now.UnixMilli()}
	if l.Apply(r.v.table) {
		r.v.pending.AddLearned(l)
	}
}

// applyOutcome applies an attempt's outcome (or a run of them) to a table, as the chain object does.
func applyOutcome(t *balance.Table, o protocol.Outcome) {
	t.ObserveN(o.Upstream, o.Class, time.Duration(o.LatencyUS)*time.Microsecond, o.Count(), time.UnixMilli(o.At))
}

// applySeen applies a height an answer showed to a table, as the chain object does.
func applySeen(t *balance.Table, h protocol.Seen) {
	if h.Behind {
		t.Behind(h.Upstream, h.Height, time.UnixMilli(h.At))
	} else {
		t.ServeHead(h.Upstream, h.Height, time.UnixMilli(h.At))
	}
}

// keepLatest cuts a list to its latest MaxOutcomes entries, counting the rest in dropped.
func keepLatest[T any](o []T, dropped *int) []T {
	if n := len(o) - protocol.MaxOutcomes; n > 0 {
		*dropped += n
		return o[n:]
	}
	return o
}

// maybeExchange starts a background exchange when the snapshot is older than the TTL, or, after a failure,
// when the last exchange is at least failureExchangeGap old. At most one runs per chain and isolate.
func (pl *Plane) maybeExchange(ctx context.Context, chain string, v *chainView, failed bool, now time.Time) {
	v.mu.Lock()
	due := v.table != nil && !v.exchanging &&
		(now.Sub(v.fetchedAt) >= pl.ttl || (failed && now.Sub(v.lastTry) >= failureExchangeGap))
	if due {
		v.exchanging = true
	}
	// Not due yet, but something to report: one flush is scheduled for when the snapshot comes of age, so that an
	// isolate whose traffic stops still reports its last outcomes and counts (its requests may never come again).
	flush := !due && v.table != nil && !v.exchanging && !v.flushing && v.hasPending()
	var wait time.Duration
	if flush {
		v.flushing = true
		wait = pl.ttl - now.Sub(v.fetchedAt)
	}
	v.mu.Unlock()
	if flush {
		pl.p.Background(ctx, func(ctx context.Context) {
			<-pl.p.After(ctx, wait)
			v.mu.Lock()
			v.flushing = false
			run := !v.exchanging && v.hasPending()
			if run {
				v.exchanging = true
			}
			v.mu.Unlock()
			if run {
				pl.background(chain, v)(ctx)
			}
		})
	}
	if !due {
		return
	}
	pl.p.Background(ctx, pl.background(chain, v))
}

// hasPending reports whether v has something to report. The caller holds v.mu.
func (v *chainView) hasPending() bool {
	return len(v.pending.Outcomes) > 0 || len(v.pending.Seen) > 0 || len(v.methods) > 0 || !v.met.Empty()
}

// background is a background exchange of v, which the caller marked exchanging.
func (pl *Plane) background(chain string, v *chainView) func(context.Context) {
	return func(call context.Context) {
		defer func() {
			v.mu.Lock()
			v.exchanging = false
			v.mu.Unlock()
			// What requests counted while this exchange ran is pending with no flush scheduled (maybeExchange
			// schedules none while one runs): schedule it now, or it waits for this isolate's next request.
			pl.maybeExchange(call, chain, v, false, pl.p.Now())
		}()
		ctx, cancel := context.WithTimeout(call, exchangeTimeout)
		defer cancel()
		pl.exchange(ctx, chain, v)
	}
}

// outcome is how one attempt at one upstream ended.
type outcome struct {
	up     string
	class  retry.Class
	status int
	body   []byte // the provider's answer when retry.Lookup(class).Answer, else nil
	// nullID: body is an error with the id null (the node could not read the call's id): written with the
	// client's id (ownID).
	nullID  bool
	latency time.Duration
	// wait is an OverBudget attempt's: when the upstream's budget has room again.
	wait time.Duration
}

// request is one client request on its way.
type request struct {
	chain string
	req   *jsonrpc.Request
	body  []byte
	v     *chainView
	ups   map[string]config.Upstream
	notif bool         // every call is a notification
	want  retry.Expect // what an answer to body must answer: its calls' ids
	ref   blockref.Ref // the highest block the calls name (requestNeeds), read once: params may be megabytes
	lag   uint64       // the chain's max_lag_blocks
	// primary is how many of the candidates prepare found are in rotation (the table's Candidates, before its
	// Fallback): the pieces of a split eth_getLogs are spread over those (logs.go).
	primary int
	// judge, when set, classifies an answer the attempt found OK further (broadcast.go: retry.WrongHash).
	judge func(answer []byte) retry.Class
	// client is the client's request when req is only part of it (a batch whose other elements the cache
	// answered); nil when req is the whole of it.
	client *jsonrpc.Request
}

// method is the method of a request of one call, "" for a batch: capabilities are learned and routed by for
// single calls only.
func (r *request) method() string {
	if r.req.Batch || len(r.req.Calls) != 1 {
		return ""
	}
	return r.req.Calls[0].Method
}

// clientReq is the client's whole request.
func (r *request) clientReq() *jsonrpc.Request {
	if r.client != nil {
		return r.client
	}
	return r.req
}

// Serve answers a client's request, already validated, for chain: candidates in the table's order, the next one
// tried when an attempt fails with a class that allows it, at most MaxAttempts and within RequestTimeout; reads
// may be hedged; a batch's failed elements are asked again of the next upstreams. A request holding a write goes
// to the next upstream only when retry's table says the write never left; a single eth_sendRawTransaction goes to
// every upstream in rotation at once when the chain broadcasts (broadcast.go).
func (pl *Plane) Serve(ctx context.Context, w http.ResponseWriter, chain string, req *jsonrpc.Request, body []byte) {
	pl.requests.Add(1)
	start := pl.p.Now()
	pol := PolicyOf(pl.cfg.ChainSettings(chain))
	ctx, cancel := pl.p.WithTimeout(ctx, pol.RequestTimeout)
	defer cancel()
	v := pl.view(chain)
	now := start
	if pl.ensure(ctx, chain, v, start) {
		now = pl.p.Now() // it waited for a snapshot
	}
	if pl.refusePoison(w, v, req, start) {
		return
	}
	v.mu.Lock()
	if v.table != nil && v.table.Undecided() {
		// The chain's table found the upstreams split on the chain id with nothing to break the tie: no side's
		// answer is served as the truth, eth_chainId's included (the chain object logs why, once).
		v.met.Request(methodLabel(req), metrics.OutcomeNoUpstream, pl.p.Now().Sub(start))
		v.mu.Unlock()
		jsonrpc.ErrChainUndecided.Write(w, req)
		pl.maybeExchange(ctx, chain, v, false, pl.p.Now())
		return
	}
	if v.table != nil {
		// eth_chainId and net_version are answered from the verified chain id (internal/chainid).
		if local, ok := chainid.Answer(req, v.table.ChainID()); ok {
			label := methodLabel(req)
			v.met.Request(label, metrics.OutcomeLocal, pl.p.Now().Sub(start))
			if !req.Batch {
				v.met.CacheResult(label, metrics.CacheHit)
				w.Header()[CacheHeader] = cacheHeaders[metrics.CacheHit]
			}
			v.mu.Unlock()
			jsonrpc.WriteJSON(w, http.StatusOK, local)
			return
		}
	}
	if raw, ok := pl.rawTransaction(chain, req); ok { // never cached nor coalesced: a write
		v.mu.Unlock()
		pl.broadcast(ctx, w, chain, v, req, body, raw, pol, start, now)
		return
	}
	cs := pl.cacheState(ctx, chain, v)
	v.mu.Unlock()
	var sg single // the cache's part in a single call (cache.go), when one is its
	one := !req.Batch && len(req.Calls) == 1 && !req.Calls[0].Notification()
	if one {
		var done bool
		if sg, done = pl.cacheSingle(ctx, w, v, cs, req.Calls[0], start); done {
			pl.maybeExchange(ctx, chain, v, false, pl.p.Now())
			return
		}
	}
	label, client := methodLabel(req), req
	var plan *batchPlan // the cache's part in a batch (cache.go)
	if req.Batch {
		plan = pl.cacheBatch(ctx, cs, req)
		if plan != nil {
			pl.broadcastBatch(ctx, chain, v, plan, pol) // its raw transactions (broadcast.go)
		}
	}
	var alone func(jsonrpc.Call) reply
	if plan != nil {
		alone = func(c jsonrpc.Call) reply { // one element of a batch, sent by itself
			one := encodeBatch([]jsonrpc.Call{c})
			r, cands, hedge := pl.prepare(chain, v, &jsonrpc.Request{Calls: []jsonrpc.Call{c}}, one[1:len(one)-1], pol, pl.p.Now())
			if span, ok := logsSpan(r.req); ok { // its refusal is an answer there too (logs.go)
				return pl.serveLogs(ctx, r, cands, hedge, pol, span)
			}
			return pl.upstream(ctx, r, cands, hedge)
		}
	}
	if plan != nil && plan.partial() {
		if len(plan.send) == 0 { // every element from the cache or from flights
			pl.distribute(ctx, chain, plan, nil, alone)
			jsonrpc.WriteJSON(w, http.StatusOK, plan.joined())
			pl.counted(v, label, metrics.OutcomeOK, start, plan)
			pl.maybeExchange(ctx, chain, v, false, pl.p.Now())
			return
		}
		req, body = plan.sub()
	}
	r, cands, hedge := pl.prepare(chain, v, req, body, pol, now)
	r.client = client
	var rep reply
	if span, ok := logsSpan(req); ok { // eth_getLogs over block numbers: maybe split (logs.go)
		rep = pl.serveLogs(ctx, r, cands, hedge, pol, span)
	} else {
		rep = pl.upstream(ctx, r, cands, hedge)
	}
	if one {
		pl.finish(ctx, chain, sg, rep)
		w.Header()[CacheHeader] = cacheHeaders[sg.result]
	}
	if plan != nil {
		pl.distribute(ctx, chain, plan, &rep, alone)
		if plan.partial() {
			rep.status, rep.body = http.StatusOK, plan.joined()
		}
	}
	if rep.retryAfter != 0 {
		w.Header().Set("Retry-After", strconv.Itoa(budget.RetryAfterSeconds(rep.retryAfter)))
	}
	jsonrpc.WriteJSON(w, rep.status, rep.body)
	end := pl.p.Now()
	v.mu.Lock()
	v.met.Request(label, rep.outcome, end.Sub(start))
	if one {
		v.met.CacheResult(label, sg.result)
	}
	v.mu.Unlock()
	if plan != nil {
		pl.countPlan(v, plan)
	}
	pl.maybeExchange(ctx, chain, v, rep.failed, end)
}

// prepare is the request to send req (whose bytes are body) as, its candidates (at most MaxAttempts) and its
// hedging delay.
func (pl *Plane) prepare(chain string, v *chainView, req *jsonrpc.Request, body []byte, pol Policy, now time.Time) (*request, []string, time.Duration) {
	r := &request{chain: chain, req: req, body: body, v: v, ups: pl.byName[chain], notif: onlyNotifications(req),
		lag: pl.cfg.ChainSettings(chain).WithDefaults().MaxLagBlocks, want: expect(req.Batch, req.Calls)}
	ref, write := requestNeeds(req)
	r.ref = ref
	var cands []string
	v.mu.Lock()
	if v.table != nil {
		// Candidates then Fallback, without the upstreams that proved they cannot serve the call (issue 20); primary
		// counts those in rotation. Each left out is counted (evmlb_upstream_skipped_total).
		var skips []balance.Skip
		cands, r.primary, skips = v.table.RouteSkips(r.method(), ref, now)
		for _, sk := range skips {
			v.met.Skip(sk.Name, string(sk.Lack))
		}
	} else {
		cands = pl.names(chain) // no snapshot to be had: config order, as a blind table would
	}
	hedge := hedgeDelay(pol, write || traces(req), &v.lat) // a trace is not hedged either (poison.go)
	v.mu.Unlock()
	if len(cands) > pol.MaxAttempts {
		cands = cands[:pol.MaxAttempts]
	}
	return r, cands, hedge
}

// counted counts a request answered without an upstream attempt of its own (a batch from the cache and flights).
func (pl *Plane) counted(v *chainView, label, outcome string, start time.Time, plan *batchPlan) {
	v.mu.Lock()
	v.met.Request(label, outcome, pl.p.Now().Sub(start))
	v.mu.Unlock()
	pl.countPlan(v, plan)
}

// countPlan counts each element of a batch by its cache result.
func (pl *Plane) countPlan(v *chainView, plan *batchPlan) {
	v.mu.Lock()
	defer v.mu.Unlock()
	for i, c := range plan.calls {
		v.met.CacheResult(methods.Label(c.Method), plan.result[i])
	}
}

// upstream sends r to the candidates (try), repairs a batch's failed elements, and makes the answer: the
// upstream's bytes, or the balancer's error.
func (pl *Plane) upstream(ctx context.Context, r *request, cands []string, hedge time.Duration) reply {
	req := r.req
	res, failed := pl.try(ctx, r, cands, hedge)
	if req.Batch && res.body != nil && res.class != retry.OK { // the class says an element needs another upstream
		res.body = pl.repairBatch(ctx, r, res.body, remaining(cands, res.up, failed))
	}
	// A request that may have reached an upstream and must not go to another (a write): not one for which no
	// upstream could be tried at all (every one quarantined), which is no upstream's answer.
	sentOnce := res.class != retry.OK && res.class != retry.NoAttempt && !retryableFor(req, res.class)
	rep := reply{outcome: metrics.OutcomeNoUpstream, failed: len(failed) > 0, up: res.up}
	if res.class == retry.OverBudget && res.body == nil {
		rep.outcome, rep.retryAfter = metrics.OutcomeOverBudget, max(res.wait, time.Nanosecond) // always a Retry-After (≥ 1 s)
		rep.status, rep.body = jsonrpc.ErrBudgetSpent.Status, jsonrpc.ErrBudgetSpent.BodyFor(req)
		return rep
	}
	if !req.Batch && len(req.Calls) == 1 {
		rep.id = req.Calls[0].ID
	}
	switch {
	case res.body != nil && res.class == retry.OK:
		rep.outcome = metrics.OutcomeOK
	case res.body != nil:
		rep.outcome = metrics.OutcomeUpstreamError
	case res.class == retry.Poison:
		rep.outcome = metrics.OutcomePoison
	case sentOnce:
		rep.outcome = metrics.OutcomeFailed
	}
	switch {
	case res.body != nil:
		if res.nullID {
			res.body = ownID(req.Calls[0].ID, res.body)
		}
		if !req.Batch && len(req.Calls) == 1 && req.Calls[0].Method == "eth_blockNumber" {
			res.body = pl.monotonicHead(r.v, res.up, req.Calls[0].ID, res.body)
		}
		rep.status, rep.body, rep.answered = res.status, res.body, res.class == retry.OK
	case res.class == retry.Poison:
		pl.rememberPoison(r.v, r.clientReq(), pl.p.Now()) // the client's request is what comes again
		rep.status, rep.body = jsonrpc.ErrPoison.Status, jsonrpc.ErrPoison.BodyFor(req)
	case sentOnce:
		// A write that may have reached the upstream: the client must know it was not retried.
		e := jsonrpc.ErrUpstreamFailed.With(string(res.class) + "; a write is not sent twice")
		rep.status, rep.body = e.Status, e.BodyFor(req)
	default:
		rep.status, rep.body = jsonrpc.ErrNoUpstream.Status, jsonrpc.ErrNoUpstream.BodyFor(req)
	}
	return rep
}

// hedgeDelay is how long a request waits for its first attempt before it starts a second one beside it: 0
// (never) when the chain does not hedge or the request holds a write (a write is never sent twice); else the
// policy's percentile of the chain's recent latencies, at least HedgeMinDelay. The caller holds lat's lock.
func hedgeDelay(pol Policy, write bool, lat *latencies) time.Duration {
	if pol.HedgePercentile <= 0 || write {
		return 0
	}
	return max(pol.HedgeMinDelay, lat.percentile(pol.HedgePercentile))
}

// methodLabel is the request's method label in the metrics: the method's (methods.Label) for one call, batch
// for a batch.
func methodLabel(req *jsonrpc.Request) string {
	if req.Batch || len(req.Calls) != 1 {
		return metrics.Batch
	}
	return methods.Label(req.Calls[0].Method)
}

// requestNeeds is the highest block the request's calls name (blockref), and whether any call is a write.
func requestNeeds(req *jsonrpc.Request) (blockref.Ref, bool) {
	var ref blockref.Ref
	write := false
	for _, c := range req.Calls {
		write = write || retry.IsWrite(c.Method)
		r := blockref.Of(c.Method, c.Params)
		if r.Kind == blockref.Number && (ref.Kind != blockref.Number || r.Number > ref.Number) {
			ref = r
		} else if ref.Kind == blockref.None {
			ref = r
		}
	}
	return ref, write
}

// retryableFor reports whether every call of req may go to the next upstream after class.
func retryableFor(req *jsonrpc.Request, class retry.Class) bool {
	for _, c := range req.Calls {
		if !retry.Retryable(c.Method, class) {
			return false
		}
	}
	return true
}

// onlyNotifications reports whether every call of req is a notification (has no id).
func onlyNotifications(req *jsonrpc.Request) bool {
	for _, c := range req.Calls {
		if !c.Notification() {
			return false
		}
	}
	return true
}

// try runs the attempts of one request over cands and returns the outcome to answer with: the first OK one (or,
// for a batch, the first batch answer, whose failed elements repairBatch then asks of the next upstreams), else
// the last answer an upstream gave (a JSON-RPC error such as "header not found"), else the last failure. failed
// lists the upstreams whose attempt failed. With hedge > 0, when the first attempt has not ended after hedge, the
// next candidate is tried alongside it and the first good answer wins; the other attempt is canceled.
func (pl *Plane) try(ctx context.Context, r *request, cands []string, hedge time.Duration) (outcome, []string) {
	if hedge > 0 && len(cands) > 1 { // attempts may overlap: cancel those still running when an answer has won
		var cancelAll context.CancelFunc
		ctx, cancelAll = context.WithCancel(ctx)
		defer cancelAll()
	}
	results := make(chan outcome, len(cands))
	next, inflight := 0, 0
	launch := func() bool {
		if next >= len(cands) || ctx.Err() != nil {
			return false
		}
		up := cands[next]
		next++
		inflight++
		if hedge <= 0 { // one attempt at a time: no goroutine (each costs a stack to grow, in wasm too)
			results <- pl.attempt(ctx, r, up, r.body, r.want)
			return true
		}
		go func() { results <- pl.attempt(ctx, r, up, r.body, r.want) }()
		return true
	}
	var timer <-chan struct{}
	if launch() && hedge > 0 && len(cands) > 1 {
		timer = pl.p.After(ctx, hedge)
	}
	var answer, last outcome
	last.class = retry.NoAttempt
	var failed []string
	for inflight > 0 {
		select {
		case <-timer:
			timer = nil
			if launch() {
				r.v.count(func(m *metrics.Chain) { m.Hedges++ })
			}
			continue
		case res := <-results:
			inflight--
			if res.class == retry.Canceled {
				continue // an attempt this request canceled: no one is to blame
			}
			if res.class == retry.OverBudget { // not sent: the next candidate, and no one is to blame
				if last.class == retry.NoAttempt || last.class == retry.OverBudget {
					if last.class == retry.NoAttempt || res.wait < last.wait {
						last = res
					}
				}
				if inflight == 0 {
					launch()
				}
				continue
			}
			if res.class == retry.OK && !r.req.Batch && pl.behind(r, res) {
				res.class = retry.MissingData // a block below the served head: the next upstream is asked
			}
			if res.class == retry.OK || (r.req.Batch && isArray(res.body)) {
				// A batch answer whose elements failed is kept: repairBatch asks the next upstreams for those
				// elements only, and the others stay this upstream's bytes.
				return res, failed
			}
			failed = append(failed, res.up)
			pl.p.Logf("chain %s: upstream %s failed (%s)", r.chain, res.up, res.class)
			last = res
			if res.body != nil {
				answer = res
			}
			if !retryableFor(r.req, res.class) {
				if answer.body != nil {
					return answer, failed
				}
				return res, failed
			}
			if inflight == 0 && launch() {
				r.v.count(func(m *metrics.Chain) { m.Retries++ })
			}
		}
	}
	if answer.body != nil {
		return answer, failed
	}
	if ctx.Err() != nil && last.class == retry.NoAttempt {
		last.class = retry.Timeout
	}
	return last, failed
}

// behind reports whether res, the answer to a single call, shows its upstream below the head the chain has
// served (blockref.Behind): the isolate's table then lowers that upstream's height, and so will the chain's.
func (pl *Plane) behind(r *request, res outcome) bool {
	c := r.req.Calls[0]
	v := r.v
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.table == nil {
		return false
	}
	seen, behind := blockref.Behind(c.Method, c.Params, v.table.Served(), res.body)
	if ref := r.ref; !behind && ref.Kind == blockref.Number && ref.Number > v.table.Served() { // r is one call
		// A block this isolate has not served, but that an upstream it trusts has, or the one after it, or that
		// the answering upstream itself claimed: another isolate may have answered eth_blockNumber with it already
		// (each isolate knows the heads it served, and the others' only at its next exchange), and an upstream
		// that claimed a block it now says is missing was reset. A null answer then goes to the next upstream;
		// for a block nobody has yet, the last null is the answer (one more attempt, for a client polling the
		// next block).
		head := v.table.Best() + 1
		if u, ok := v.table.Get(res.up); ok {
			head = max(head, u.Height)
		}
		if ref.Number <= head {
			seen, behind = blockref.Behind(c.Method, c.Params, head, res.body)
		}
	}
	if behind {
		now := pl.p.Now()
		v.table.Behind(res.up, seen, now)
		v.pending.AddSeen(protocol.Seen{Upstream: res.up, Height: seen, Behind: true, At: now.UnixMilli()})
		v.pending.Seen = keepLatest(v.pending.Seen, &v.pending.Dropped)
	}
	return behind
}

// farBehind reports whether answer, up's answer to the request's one call, shows up more than max_lag_blocks
// below the head this isolate knows (its table's head: the best height that counts, or the highest
// eth_blockNumber answered, whichever is higher): an eth_blockNumber, or a block read at "latest". Such an answer
// is treated as a block that came back null: up is marked behind in the isolate at once (and in the chain's table
// at the next exchange), and the next upstream is asked. An isolate whose snapshot is old still answers at once,
// but an upstream that fell behind since cannot answer for it. "safe" and "finalized" lag the head by nature and
// are not judged; answers that carry no height (eth_call, eth_getBalance at "latest") cannot be.
func (pl *Plane) farBehind(r *request, up string, answer []byte) bool {
	c := r.req.Calls[0]
	v := r.v
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.table == nil {
		return false
	}
	head := v.table.Head()
	if head <= r.lag {
		return false
	}
	var seen uint64
	switch c.Method {
	case "eth_blockNumber":
		n, ok := quantityResult(answer)
		if !ok {
			return false
		}
		seen = n
	case "eth_getBlockByNumber", "eth_getHeaderByNumber":
		if r.ref.Kind != blockref.Latest {
			return false
		}
		n, behind := blockref.Behind(c.Method, c.Params, head, answer) // judges "latest" only
		if !behind || n == 0 {
			return false
		}
		seen = n
	default:
		return false
	}
	if seen+r.lag >= head {
		return false
	}
	now := pl.p.Now()
	v.table.Behind(up, seen, now)
	v.pending.AddSeen(protocol.Seen{Upstream: up, Height: seen, Behind: true, At: now.UnixMilli()})
	v.pending.Seen = keepLatest(v.pending.Seen, &v.pending.Dropped)
	return true
}

// quantityResult is the hex quantity an answer's result holds ("0x1b4"); false when it holds none.
func quantityResult(answer []byte) (uint64, bool) {
	f, ok := jsonrpc.Fields(answer, "result") // not encoding/json: it costs tens of µs per answer in wasm
	if !ok || f[0] == nil {
		return 0, false
	}
	result, ok := jsonrpc.String(f[0])
	if !ok {
		return 0, false
	}
	return blockref.ParseQuantity(result)
}

// target is how to reach upstream u.
func (pl *Plane) target(u config.Upstream) forward.Target {
	timeout := pl.settings.AttemptTimeout
	if u.AttemptTimeout > 0 {
		timeout = u.AttemptTimeout
	}
	return forward.Target{Post: pl.p.Post, URL: u.URL, Timeout: timeout, MaxBytes: pl.settings.MaxResponseBytes, Now: pl.p.Now, WithTimeout: pl.p.WithTimeout, Unchecked: true}
}

// expect is what an answer to calls (as a batch or one call) must answer.
func expect(batch bool, calls []jsonrpc.Call) retry.Expect {
	ids := make([]json.RawMessage, len(calls))
	for i, c := range calls {
		ids[i] = c.ID
	}
	return retry.Expect{Batch: batch, IDs: ids}
}

// attempt sends body to the upstream up and classifies its answer, which must answer want's calls (retry.Answer:
// one that does not is retry.BadAnswer, never passed on); the outcome goes into the isolate's own table at once
// and into the next report.
func (pl *Plane) attempt(ctx context.Context, r *request, up string, body []byte, want retry.Expect) outcome {
	u, ok := r.ups[up]
	if !ok {
		return outcome{up: up, class: retry.NoAttempt}
	}
	if wait, spent := pl.overBudget(ctx, u, want); spent {
		r.v.count(func(m *metrics.Chain) { m.Skip(up, "budget") })
		return outcome{up: up, class: retry.OverBudget, wait: wait}
	}
	res := forward.Do(ctx, pl.target(u), body)
	class := res.Class
	nullID := false
	if class == retry.OK {
		// One pass validates the answer against the calls sent and classifies it (forward left it unchecked);
		// an answer can still send the request elsewhere ("header not found").
		class, nullID = retry.AnswerOf(res.Body, want)
		switch class {
		case retry.NonJSON:
			res.Class, res.Detail = retry.NonJSON, "answer is not JSON-RPC 2.0"
		case retry.BadAnswer:
			res.Class, res.Detail = retry.BadAnswer, "answer does not answer the calls sent (ids or batch shape)"
		}
	}
	if class != retry.OK && res.Class == retry.OK && isLogsRefusal(r, res.Body) {
		class = retry.OK // an eth_getLogs range refused for its size: an answer, which logs.go splits
	}
	if class == retry.NonJSON && res.Status/100 == 2 && len(res.Body) == 0 && r.notif {
		class, res.Class = retry.OK, retry.OK // a node does not answer notifications (geth and anvil: 204, no body)
		res.Status = http.StatusNoContent     // nor does the balancer, whatever 2xx said nothing
	}
	if class == retry.Network && len(body) == len(r.body) { // did the request bring the node down? (poison.go)
		class = pl.probeAfterDrop(ctx, r, u)
		res.Class = class
	}
	if class == retry.OK && !r.req.Batch && len(body) == len(r.body) && pl.farBehind(r, up, res.Body) {
		class = retry.Behind // the upstream's failure: the next upstream is asked
	}
	if class == retry.OK && r.judge != nil {
		class = r.judge(res.Body)
	}
	o := outcome{up: up, class: class, status: res.Status, latency: res.Latency, nullID: nullID}
	if class == retry.Canceled {
		return o
	}
	if res.Class != retry.OK && class != retry.OK {
		pl.p.Logf("upstream %s (%s): request failed: %s: %s", u.ID(), u.Endpoint(), res.Class, res.Detail)
	}
	if (res.Class == retry.OK || class == retry.OK) && retry.Lookup(class).Answer {
		o.body = res.Body
	}
	pl.observe(r, o, body)
	return o
}

// observe applies an attempt's outcome to the isolate's table and hedging window, and queues it for the report.
func (pl *Plane) observe(r *request, o outcome, body []byte) {
	now := pl.p.Now()
	v := r.v
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.table != nil {
		v.table.Observe(o.up, o.class, o.latency, now)
		if len(body) == len(r.body) {
			pl.learn(r, o, now)
		}
	}
	if o.class == retry.OK {
		v.lat.add(o.latency)
	}
	v.pending.AddOutcome(protocol.OutcomeOf(o.up, o.class, o.latency, now))
	v.pending.Outcomes = keepLatest(v.pending.Outcomes, &v.pending.Dropped)
	label := metrics.Batch
	if !r.req.Batch && len(body) == len(r.body) {
		label = methodLabel(r.req)
	}
	v.met.Attempt(o.up, label, string(o.class), o.latency)
	s := v.methodStats(o.up)
	if len(body) == len(r.body) { // the whole request: its calls
		for _, c := range r.req.Calls {
			s.Record(c.Method, o.latency, o.class != retry.OK)
		}
		return
	}
	for _, m := range jsonrpc.Methods(body) { // a repair batch: the calls asked again
		s.Record(m, o.latency, o.class != retry.OK)
	}
}

// remaining is cands without the upstream that answered and those that failed, in order.
func remaining(cands []string, answered string, failed []string) []string {
	var out []string
	for _, c := range cands {
		if c != answered && !slices.Contains(failed, c) {
			out = append(out, c)
		}
	}
	return out
}

// ownID writes answer, an error with the id null to the call whose id is id (retry.AnswerOf), with that id: the
// client gets its own id back, and the node's error member unchanged.
func ownID(id json.RawMessage, answer []byte) []byte {
	e := retry.ErrorMember(answer)
	if e == nil {
		return answer
	}
	return errorWith(id, e)
}

// monotonicHead answers eth_blockNumber with the table's head (balance.Table.ServeHead): never less than served
// before, never a height that does not count (an upstream's lie); the upstream's bytes when they say the same.
// What the answer showed of upstream up goes into the next report; up is "" for an answer shared from a flight
// (cache.go), whose leader recorded it, and which may be a batch element's answer as it came. An upstream that
// answers a notification (some do) gets it rewritten with a null id, as the balancer's own errors write a
// notification's (jsonrpc.IDOrNull).
func (pl *Plane) monotonicHead(v *chainView, up string, id json.RawMessage, answer []byte) []byte {
	n, ok := quantityResult(answer)
	if !ok {
		return answer
	}
	now := pl.p.Now()
	v.mu.Lock()
	head := n
	if v.table != nil {
		head = v.table.ServeHead(up, n, now) // up "": no upstream's height moves; the head, recorded as served
	}
	if up != "" {
		v.pending.AddSeen(protocol.Seen{Upstream: up, Height: n, At: now.UnixMilli()})
		v.pending.Seen = keepLatest(v.pending.Seen, &v.pending.Dropped)
	}
	v.mu.Unlock()
	if head == n {
		return answer
	}
	return answerWith(id, []byte(`"0x`+strconv.FormatUint(head, 16)+`"`))
}

// Flush exchanges, now, every chain this isolate has seen: the chain objects then hold everything it saw. The
// admin views call it, so that they include what the isolate answering them has seen.
func (pl *Plane) Flush(ctx context.Context) {
	pl.mu.Lock()
	views := make(map[string]*chainView, len(pl.chains))
	for c, v := range pl.chains {
		views[c] = v
	}
	pl.mu.Unlock()
	for chain, v := range views {
		v.mu.Lock()
		busy := v.exchanging || v.table == nil
		v.mu.Unlock()
		if !busy {
			pl.exchange(ctx, chain, v)
		}
	}
}

// Reset forgets every snapshot and what was not yet reported (after the chains' storage was cleared).
func (pl *Plane) Reset() {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	pl.chains = map[string]*chainView{}
}
