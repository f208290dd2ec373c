package durable

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"time"

	"github.com/evmlb/evmlb/internal/adminapi"
	"github.com/evmlb/evmlb/internal/balance"
	"github.com/evmlb/evmlb/internal/contract"
	"github.com/evmlb/evmlb/internal/jsonrpc"
	"github.com/evmlb/evmlb/internal/metrics"
	"github.com/evmlb/evmlb/internal/platform"
	"github.com/evmlb/evmlb/internal/protocol"
	"github.com/evmlb/evmlb/internal/stats"
)

// Storage keys of a Chain object.
const (
	keyUpstreams = "upstreams"     // JSON array of the upstream names stored by the last sync
	keyRowPrefix = "up:"           // + name: the storedRow of that upstream
	keyFloor     = "floor"         // the balance.Floor: the highest eth_blockNumber served (issue 8)
	keyPending   = "pending_stats" // the isolates' per-method counts not yet handed to the upstreams' objects
	keyHanded    = "handed_stats"  // counts handed to upstreams' objects and not yet acknowledged (ReportAnswer.Seq)
	keyMetrics   = "metrics"       // the metrics.Chain: every isolate's Prometheus counts, and the recent history
	keyCache     = "cache"         // the balance.CacheState: the cache epoch and the finalized block decided in it (issue 19)
)

// Chains serves every ChainDurableObject instance of the runtime.
type Chains struct {
	env    Env
	client protocol.Client
	objs   *registry[chain]
}

// NewChains makes the Chain objects' handler.
func NewChains(env Env) *Chains {
	return &Chains{env: env, client: protocol.Client{P: env.P}, objs: newRegistry(func(string) *chain {
		return &chain{stats: map[string]stats.Stats{}, handed: map[string]*Handover{}, metrics: &metrics.Chain{}}
	})}
}

var _ http.Handler = (*Chains)(nil)

// chain is one instance's memory: the routing table, loaded from storage on first use, and the counts to hand over.
type chain struct {
	mu      sync.Mutex
	table   *balance.Table // nil until loaded
	ensured bool           // the upstream objects were asked to /ensure by this instance
	// restarted: the table was loaded from stored rows (balance.Table.Restarted: their heights forgotten, the
	// floor held back); the first exchange runs the first checks, as for a blind table.
	restarted bool
	checked   chan struct{} // the first checks of a blind table: closed when done (nil: none were run)
	// stats are the Worker isolates' per-method counts of each upstream, handed to its object with the answer to
	// its next health report.
	stats map[string]stats.Stats
	// handed are the counts handed to each upstream's object that it has not acknowledged yet.
	handed map[string]*Handover
	// metrics are the chain's Prometheus counts, summed over every isolate and stored with every row save.
	metrics *metrics.Chain
	// poison are the poison requests the isolates reported (fingerprint → until, Unix ms), handed to every isolate
	// in its snapshots; in memory only: an evicted object forgets them, at worst one more attempt each.
	poison map[uint64]int64
	// probes are the state probes upstreams reported before the chain's best height was known (takeProbes); in
	// memory only: an evicted object forgets them, and the upstreams probe again after capability_ttl.
	probes map[string][]StateProbe
}

// ChainMetrics is the /metrics answer: the status and the chain's counts.
type ChainMetrics struct {
	adminapi.ChainStatus
	Metrics *metrics.Chain `json:"metrics"`
}

// setArchive gives t the configured archive setting of each of chain's upstreams (issue 20): stored rows do not
// hold it, and the snapshot ships it to the isolates.
func (cs *Chains) setArchive(t *balance.Table, chain string) {
	for _, n := range t.Names() {
		if u, ok := cs.env.Config.Lookup(chain, n); ok {
			t.SetArchive(n, u.Archive)
		}
	}
}

func (cs *Chains) names(chain string) []string {
	var names []string
	for _, u := range cs.env.Config.ChainUpstreams(chain) {
		names = append(names, u.Name)
	}
	return names
}

// load builds the table from the configuration and the rows in storage, once per instance.
func (cs *Chains) load(ctx context.Context, o *chain, st platform.Storage, name string) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.table != nil {
		return nil
	}
	kv, err := st.List(ctx, keyRowPrefix)
	if err != nil {
		return err
	}
	t := balance.New(balance.SettingsOf(cs.env.Config.ChainSettings(name)), cs.names(name), nil)
	var rows []balance.Upstream
	for _, v := range kv {
		var r storedRow
		if json.Unmarshal([]byte(v), &r) == nil {
			rows = append(rows, r.row())
		}
	}
	t.RestoreAll(rows) // a row of an upstream no longer configured is ignored
	cs.setArchive(t, name)

	// issue 8: the served floor, dropped by the table when it was served for another chain id or upstream set.
	if v, ok, err := st.Get(ctx, keyFloor); err != nil {
		return err
	} else if ok {
		var f balance.Floor
		if json.Unmarshal([]byte(v), &f) == nil {
			t.RestoreFloor(f)
		}
	}
	// issue 17: nothing stored is current. No height or floor is served before current reports confirm it.
	if len(rows) > 0 {
		t.Restarted()
		o.restarted = true
	}
	// issue 19: the cache epoch and the finalized block decided in it; with none stored, an epoch made from now
	// (never one used before storage was cleared). It is stored with every row save, and at once by a purge.
	var cache balance.CacheState
	if v, ok, err := st.Get(ctx, keyCache); err != nil {
		return err
	} else if ok {
		_ = json.Unmarshal([]byte(v), &cache)
	}
	t.RestoreCache(cache, cs.env.P.Now())
	if v, ok, err := st.Get(ctx, keyPending); err != nil {
		return err
	} else if ok {
		var p map[string]map[string]stats.Counter
		if json.Unmarshal([]byte(v), &p) == nil {
			for up, m := range p {
				s := make(stats.Stats)
				for method, c := range m {
					s.Add(method, c)
				}
				o.stats[up] = s
			}
		}
	}
	if v, ok, err := st.Get(ctx, keyHanded); err != nil {
		return err
	} else if ok {
		var h map[string]*Handover
		if json.Unmarshal([]byte(v), &h) == nil {
			for up, hv := range h {
				if hv != nil {
					o.handed[up] = hv
				}
			}
		}
	}
	if v, ok, err := st.Get(ctx, keyMetrics); err != nil {
		return err
	} else if ok {
		var m metrics.Chain
		if json.Unmarshal([]byte(v), &m) == nil {
			o.metrics = &m
		}
	}
	o.table = t
	return nil
}

// ChainStats is a Chain object's /stats answer: the Worker isolates' counts of each upstream that are not in the
// upstream object's stored statistics yet.
type ChainStats struct {
	// Pending are the counts not yet handed to the upstream's object.
	Pending map[string]map[string]stats.Counter `json:"pending"`
	// Handed are the counts handed to the upstream's object and not yet acknowledged by its next report. The object
	// may have stored them already: it has when its stored handover number (UpstreamStats.Seq) is at least Seq.
	Handed map[string]*Handover `json:"handed,omitempty"`
}

// pendingStats is the JSON of the counts not yet handed over. The caller holds o.mu.
func (o *chain) pendingStats() string {
	p := make(map[string]map[string]stats.Counter, len(o.stats))
	for up, s := range o.stats {
		p[up] = make(map[string]stats.Counter, len(s))
		for m, c := range s {
			p[up][m] = *c
		}
	}
	b, _ := json.Marshal(p)
	return string(b)
}

// ServeHTTP serves the object named by the contract's object header; the chain's name comes in protocol.HeaderName.
func (cs *Chains) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id, name := r.Header.Get(contract.HeaderObject), r.Header.Get(protocol.HeaderName)
	if !cs.env.Config.HasChain(name) {
		jsonrpc.ErrUnknownChain.Write(w, nil)
		return
	}
	st := cs.env.P.StorageFor(id)
	if st == nil {
		jsonrpc.ErrInternal.With("no storage for this object").Write(w, nil)
		return
	}
	o := cs.objs.get(id, r.Header.Get(contract.HeaderInstance))
	if err := cs.load(r.Context(), o, st, name); err != nil {
		cs.env.P.Logf("chain %s: storage: %v", name, err)
		jsonrpc.ErrInternal.With("storage").Write(w, nil)
		return
	}
	switch r.URL.Path {
	case protocol.PathExchange:
		cs.exchange(w, r, o, st, name)
	case protocol.PathReport:
		cs.report(w, r, o, st, name)
	case protocol.PathStatus:
		writeJSON(w, cs.status(o, name))
	case protocol.PathMetrics:
		st := cs.status(o, name)
		o.mu.Lock()
		b, _ := json.Marshal(ChainMetrics{ChainStatus: st, Metrics: o.metrics})
		o.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(b)
	case protocol.PathStats:
		o.mu.Lock()
		p := o.pendingStats()
		hb, _ := json.Marshal(o.handed)
		o.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"pending":` + p + `,"handed":` + string(hb) + `}`))
	case protocol.PathSync:
		cs.sync(w, r, o, st, name)
	case protocol.PathPurge:
		cs.purge(w, r, o, st, name)
	case protocol.PathClear:
		cs.objs.forget(id)
		if err := st.DeleteAll(r.Context()); err != nil {
			jsonrpc.ErrInternal.With("storage").Write(w, nil)
			return
		}
		writeJSON(w, struct{}{})
	default:
		jsonrpc.ErrNotFound.Write(w, nil)
	}
}

func (cs *Chains) status(o *chain, name string) adminapi.ChainStatus {
	now := cs.env.P.Now()
	o.mu.Lock()
	defer o.mu.Unlock()
	fin, _ := o.table.Finalized()
	s := adminapi.ChainStatus{Chain: name, BestHeight: o.table.Best(), Head: o.table.Head(), ChainID: o.table.ChainID(),
		ChainIDUndecided: o.table.UndecidedReason(), Finalized: fin, CacheEpoch: o.table.CacheEpoch(), Upstreams: []adminapi.UpstreamRow{}}
	for _, n := range o.table.Names() {
		u, _ := o.table.Get(n)
		s.Upstreams = append(s.Upstreams, rowView(u, o.table.State(n, now), o.table.Reason(n, now), now))
	}
	return s
}

// breakers is the breaker state of the named upstreams. The caller holds o.mu.
func (o *chain) breakers(names []string, now time.Time) []balance.BreakerState {
	out := make([]balance.BreakerState, len(names))
	for i, n := range names {
		if u, ok := o.table.Get(n); ok {
			out[i] = u.Breaker.State(now)
		}
	}
	return out
}

// countTransitions counts the breaker transitions between before (o.breakers of names) and now. The caller
// holds o.mu.
func (o *chain) countTransitions(names []string, before []balance.BreakerState, now time.Time) {
	for i, after := range o.breakers(names, now) {
		if after != before[i] && after != "" {
			o.metrics.Transition(names[i], string(after))
		}
	}
}

// saveRows stores the rows of the named upstreams (those whose state a request changed), with the floor, the
// pending counts and the metrics; with withMetrics, also when no row changed.
func (cs *Chains) saveRows(ctx context.Context, o *chain, st platform.Storage, chain string, names []string, withMetrics ...bool) {
	if len(names) == 0 && (len(withMetrics) == 0 || !withMetrics[0]) {
		return
	}
	kv := map[string]string{}
	o.mu.Lock()
	for _, n := range names {
		if u, ok := o.table.Get(n); ok {
			b, _ := json.Marshal(storedRowOf(u))
			kv[keyRowPrefix+n] = string(b)
		}
	}
	fb, _ := json.Marshal(o.table.StoredFloor()) // issue 8: the floor goes with every row save, and its notes to the log
	kv[keyFloor] = string(fb)
	cb, _ := json.Marshal(o.table.CacheState()) // issue 19: so does the cache epoch
	kv[keyCache] = string(cb)
	kv[keyPending] = o.pendingStats() // so that an evicted object loses no counts
	hb, _ := json.Marshal(o.handed)
	kv[keyHanded] = string(hb)
	mb, _ := json.Marshal(o.metrics)
	kv[keyMetrics] = string(mb)
	notes := o.table.Notes()
	o.mu.Unlock()
	for _, n := range notes {
		cs.env.P.Logf("chain %s: %s", chain, n)
	}
	if err := st.Put(ctx, kv); err != nil {
		cs.env.P.Logf("chain %s: storage: %v", chain, err)
	}
}

// purge moves the chain's cache epoch (POST /admin/cache/purge): every answer cached under the old one becomes
// unreachable in both tiers, in every isolate once its next snapshot carries the new epoch. The epoch is stored
// before the answer, so that an object evicted right after keeps it.
func (cs *Chains) purge(w http.ResponseWriter, r *http.Request, o *chain, st platform.Storage, name string) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		jsonrpc.ErrMethodNotAllowed.Write(w, nil)
		return
	}
	o.mu.Lock()
	epoch := o.table.MoveCacheEpoch(cs.env.P.Now(), "purged by the admin API")
	cb, _ := json.Marshal(o.table.CacheState())
	notes := o.table.Notes()
	o.mu.Unlock()
	for _, n := range notes {
		cs.env.P.Logf("chain %s: %s", name, n)
	}
	if err := st.Put(r.Context(), map[string]string{keyCache: string(cb)}); err != nil {
		cs.env.P.Logf("chain %s: storage: %v", name, err)
		jsonrpc.ErrInternal.With("storage").Write(w, nil)
		return
	}
	writeJSON(w, adminapi.CachePurge{Chain: name, CacheEpoch: epoch})
}
