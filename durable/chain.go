package durable

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/evmlb/evmlb/internal/balance"
	"github.com/evmlb/evmlb/internal/contract"
	"github.com/evmlb/evmlb/internal/jsonrpc"
	"github.com/evmlb/evmlb/internal/platform"
	"github.com/evmlb/evmlb/internal/protocol"
	"github.com/evmlb/evmlb/internal/retry"
	"github.com/evmlb/evmlb/internal/stats"
)

// Storage keys of a Chain object.
const (
	keyUpstreams = "upstreams"     // JSON array of the upstream names stored by the last sync
	keyRowPrefix = "up:"           // + name: the balance.Upstream row of that upstream
	keyFloor     = "floor"         // the balance.Floor: the highest eth_blockNumber served (issue 8)
	keyPending   = "pending_stats" // the isolates' per-method counts not yet handed to the upstreams' objects
)

// Chains serves every ChainDurableObject instance of the runtime.
type Chains struct {
	env    Env
	client protocol.Client
	objs   *registry[chain]
}

// NewChains makes the Chain objects' handler.
func NewChains(env Env) *Chains {
	return &Chains{env: env, client: protocol.Client{P: env.P}, objs: newRegistry(func(string) *chain { return &chain{stats: map[string]stats.Stats{}} })}
}

var _ http.Handler = (*Chains)(nil)

// chain is one instance's memory: the routing table, loaded from storage on first use, and recent latencies.
type chain struct {
	mu      sync.Mutex
	table   *balance.Table // nil until loaded
	ensured bool           // the upstream objects were asked to /ensure by this instance
	checked chan struct{}  // the first checks of a blind table: closed when done (nil: none were run)
	// stats are the Worker isolates' per-method counts of each upstream, handed to its object with the answer to
	// its next health report.
	stats map[string]stats.Stats
}

// ChainStatus is the /status answer.
type ChainStatus struct {
	Chain string `json:"chain"`
	// BestHeight is the highest height that counts (balance.Table.Best): trusted and confirmed.
	BestHeight uint64 `json:"best_height"`
	// Head is the best height that counts, or the highest eth_blockNumber served if higher: eth_blockNumber
	// never answers less (until the floor yields; see balance.Table.Head).
	Head uint64 `json:"head"`
	// ChainID is the chain's verified chain id (configured, or most upstreams'); 0 while unknown.
	ChainID   uint64        `json:"chain_id,omitempty"`
	Upstreams []UpstreamRow `json:"upstreams"`
}

// UpstreamRow is one upstream in the chain's table, with its state now.
type UpstreamRow struct {
	balance.Upstream
	State balance.State `json:"state"`
	// Reason says why the upstream is out of rotation ("" when it is in).
	Reason string `json:"reason,omitempty"`
}

// SyncResult is the /sync answer.
type SyncResult struct {
	Chain     string   `json:"chain"`
	Upstreams []string `json:"upstreams"`
	Removed   []string `json:"removed"`
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
		var u balance.Upstream
		if json.Unmarshal([]byte(v), &u) == nil {
			rows = append(rows, u)
		}
	}
	t.RestoreAll(rows) // a row of an upstream no longer configured is ignored

	// issue 8: the served floor, dropped by the table when it was served for another chain id or upstream set.
	if v, ok, err := st.Get(ctx, keyFloor); err != nil {
		return err
	} else if ok {
		var f balance.Floor
		if json.Unmarshal([]byte(v), &f) == nil {
			t.RestoreFloor(f)
		}
	}
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
	o.table = t
	return nil
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
	case protocol.PathStats:
		o.mu.Lock()
		p := o.pendingStats()
		o.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(p))
	case protocol.PathSync:
		cs.sync(w, r, o, st, name)
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

func (cs *Chains) status(o *chain, name string) ChainStatus {
	now := cs.env.P.Now()
	o.mu.Lock()
	defer o.mu.Unlock()
	s := ChainStatus{Chain: name, BestHeight: o.table.Best(), Head: o.table.Head(), ChainID: o.table.ChainID(), Upstreams: []UpstreamRow{}}
	for _, n := range o.table.Names() {
		u, _ := o.table.Get(n)
		s.Upstreams = append(s.Upstreams, UpstreamRow{Upstream: u, State: o.table.State(n, now), Reason: o.table.Reason(n, now)})
	}
	return s
}

// exchange takes a Worker isolate's report (protocol.Exchange: its attempts' outcomes, the head it served, its
// per-method counts) into the table and answers the chain's snapshot. The first exchange an instance gets starts
// the upstreams' health checks; on a blind table (a new deployment, cleared storage) it first runs one check of
// every upstream, so that no isolate routes blind; exchanges arriving meanwhile wait for the same checks.
func (cs *Chains) exchange(w http.ResponseWriter, r *http.Request, o *chain, st platform.Storage, name string) {
	var ex protocol.Exchange
	if err := json.NewDecoder(r.Body).Decode(&ex); err != nil {
		jsonrpc.ErrInvalidRequest.With("exchange").Write(w, nil)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), firstCheckWait+time.Second)
	defer cancel()
	o.mu.Lock()
	ensure := !o.ensured
	o.ensured = true
	checking := o.checked // closed once the first checks are done; nil when none were needed
	if ensure && o.table.Blind() {
		o.checked = make(chan struct{})
		checking = nil
	}
	first := o.checked
	o.mu.Unlock()
	switch {
	case ensure && first != nil:
		cs.firstChecks(ctx, o, st, name)
		close(first)
	case ensure:
		cs.fanOut(ctx, name, cs.names(name), protocol.PathEnsure)
	case checking != nil:
		select {
		case <-checking:
		case <-ctx.Done():
		}
	}
	o.mu.Lock()
	var touched []string
	for _, oc := range ex.Outcomes {
		if _, ok := o.table.Get(oc.Upstream); !ok {
			continue
		}
		o.table.Observe(oc.Upstream, oc.Class, time.Duration(oc.LatencyUS)*time.Microsecond, time.UnixMilli(oc.At))
		if !slices.Contains(touched, oc.Upstream) {
			touched = append(touched, oc.Upstream)
		}
	}
	for _, h := range ex.Seen {
		if _, ok := o.table.Get(h.Upstream); !ok {
			continue
		}
		if h.Behind {
			o.table.Behind(h.Upstream, h.Height, time.UnixMilli(h.At))
		} else {
			o.table.ServeHead(h.Upstream, h.Height, time.UnixMilli(h.At))
		}
		if !slices.Contains(touched, h.Upstream) {
			touched = append(touched, h.Upstream)
		}
	}
	for up, m := range ex.Methods {
		if _, ok := o.table.Get(up); !ok {
			continue
		}
		s := o.stats[up]
		if s == nil {
			s = make(stats.Stats)
			o.stats[up] = s
		}
		for method, c := range m {
			s.Add(method, c)
		}
	}
	snap := protocol.Snapshot{Floor: o.table.Floor()}
	for _, n := range o.table.Names() {
		u, _ := o.table.Get(n)
		snap.Rows = append(snap.Rows, u)
	}
	o.mu.Unlock()
	cs.saveRows(context.WithoutCancel(ctx), o, st, name, touched)
	writeJSON(w, snap)
}

// saveRows stores the rows of the named upstreams (those whose state a request changed).
func (cs *Chains) saveRows(ctx context.Context, o *chain, st platform.Storage, chain string, names []string) {
	if len(names) == 0 {
		return
	}
	kv := map[string]string{}
	o.mu.Lock()
	for _, n := range names {
		if u, ok := o.table.Get(n); ok {
			b, _ := json.Marshal(u)
			kv[keyRowPrefix+n] = string(b)
		}
	}
	fb, _ := json.Marshal(o.table.Floor()) // issue 8: the floor goes with every row save, and its notes to the log
	kv[keyFloor] = string(fb)
	kv[keyPending] = o.pendingStats() // so that an evicted object loses no counts
	notes := o.table.Notes()
	o.mu.Unlock()
	for _, n := range notes {
		cs.env.P.Logf("chain %s: %s", chain, n)
	}
	if err := st.Put(ctx, kv); err != nil {
		cs.env.P.Logf("chain %s: storage: %v", chain, err)
	}
}

// Report is an upstream's health report to its chain.
type Report struct {
	Name    string      `json:"name"`
	At      time.Time   `json:"at"`
	Height  uint64      `json:"height"`
	ChainID uint64      `json:"chain_id,omitempty"`
	Syncing bool        `json:"syncing,omitempty"`
	Err     retry.Class `json:"error_class,omitempty"`
	// Unserved: the head claimed at the previous check that the upstream could not serve; Proven: the head it
	// served (issue 8).
	Unserved uint64 `json:"unserved,omitempty"`
	Proven   uint64 `json:"proven,omitempty"`
}

// row is the report as the table takes it.
func (r Report) row() balance.Report {
	return balance.Report{At: r.At, Height: r.Height, ChainID: r.ChainID, Syncing: r.Syncing, Unserved: r.Unserved, Proven: r.Proven, Err: r.Err}
}

// ReportAnswer is the chain's answer to a health report: the Worker isolates' per-method counts of the upstream
// since its last report, for its statistics.
type ReportAnswer struct {
	Methods map[string]stats.Counter `json:"methods,omitempty"`
}

func (cs *Chains) report(w http.ResponseWriter, r *http.Request, o *chain, st platform.Storage, name string) {
	var rep Report
	if err := json.NewDecoder(r.Body).Decode(&rep); err != nil {
		jsonrpc.ErrInvalidRequest.With("report").Write(w, nil)
		return
	}
	o.mu.Lock()
	_, known := o.table.Get(rep.Name)
	var ans ReportAnswer
	if known {
		o.table.Report(rep.Name, rep.row())
		if s := o.stats[rep.Name]; len(s) > 0 {
			ans.Methods = make(map[string]stats.Counter, len(s))
			for m, c := range s {
				ans.Methods[m] = *c
			}
			delete(o.stats, rep.Name)
		}
	}
	o.mu.Unlock()
	if known {
		cs.saveRows(r.Context(), o, st, name, []string{rep.Name})
	}
	writeJSON(w, ans)
}

// sync stores the configured list, drops the rows and objects of upstreams no longer configured, and starts
// the health checks of the configured ones now.
func (cs *Chains) sync(w http.ResponseWriter, r *http.Request, o *chain, st platform.Storage, name string) {
	ctx := r.Context()
	names := cs.names(name)
	var old []string
	if v, ok, err := st.Get(ctx, keyUpstreams); err == nil && ok {
		_ = json.Unmarshal([]byte(v), &old)
	}
	var removed []string
	for _, n := range old {
		if !slices.Contains(names, n) {
			removed = append(removed, n)
		}
	}
	list, _ := json.Marshal(names)
	err := st.Put(ctx, map[string]string{keyUpstreams: string(list)})
	if err == nil && len(removed) > 0 {
		keys := make([]string, len(removed))
		for i, n := range removed {
			keys[i] = keyRowPrefix + n
		}
		err = st.Delete(ctx, keys...)
	}
	if err != nil {
		cs.env.P.Logf("chain %s: storage: %v", name, err)
		jsonrpc.ErrInternal.With("storage").Write(w, nil)
		return
	}
	o.mu.Lock()
	o.ensured = true
	o.table.SetUpstreams(names)
	o.mu.Unlock()
	cs.fanOut(ctx, name, removed, protocol.PathClear)
	cs.fanOut(ctx, name, names, protocol.PathStart)
	writeJSON(w, SyncResult{Chain: name, Upstreams: names, Removed: removed})
}

// firstCheckWait bounds how long a chain's first request waits for its upstreams' first health checks; once one
// has reported, the others get firstCheckGrace more (a hung upstream then costs the first request that, not 2 s).
const (
	firstCheckWait  = 2 * time.Second
	firstCheckGrace = 250 * time.Millisecond
)

// firstChecks runs a health check of every upstream of the chain now and applies the reports, for a request
// that finds the table blind (no upstream ever reported: a new deployment, or cleared storage). Routing blind
// would send it to whichever upstream comes first in the configuration, lagging or on the wrong chain. Checks
// that take longer than firstCheckWait are not waited for; their upstreams report through their alarms later.
func (cs *Chains) firstChecks(ctx context.Context, o *chain, st platform.Storage, name string) {
	ctx, cancel := context.WithTimeout(ctx, firstCheckWait)
	defer cancel()
	names := cs.names(name)
	reps := make(chan Report, len(names))
	for _, n := range names {
		go func() {
			var rep Report
			if err := cs.client.Upstream(ctx, name+"/"+n, http.MethodPost, protocol.PathCheck, &rep); err == nil && rep.Name == n {
				reps <- rep
				return
			}
			reps <- Report{} // not in time, or failed: the alarm set by the check (or /ensure) takes over
		}()
	}
	var got []string
	var grace <-chan struct{} // after the first report, the others get firstCheckGrace
wait:
	for range names {
		var rep Report
		select {
		case rep = <-reps:
		case <-grace:
			break wait
		}
		if rep.Name == "" {
			continue
		}
		if grace == nil {
			grace = cs.env.P.After(ctx, firstCheckGrace)
		}
		o.mu.Lock()
		o.table.Report(rep.Name, rep.row())
		o.mu.Unlock()
		got = append(got, rep.Name)
	}
	if len(got) < len(names) {
		cs.fanOut(context.WithoutCancel(ctx), name, names, protocol.PathEnsure) // whoever did not answer gets an alarm
	}
	cs.saveRows(context.WithoutCancel(ctx), o, st, name, got)
}

// fanOut calls path on the named upstream objects of the chain concurrently; failures are logged.
func (cs *Chains) fanOut(ctx context.Context, chain string, names []string, path string) {
	var wg sync.WaitGroup
	for _, n := range names {
		wg.Go(func() {
			if err := cs.client.Upstream(ctx, chain+"/"+n, http.MethodPost, path, nil); err != nil && !errors.Is(err, context.Canceled) {
				cs.env.P.Logf("chain %s: %s of upstream %s: %v", chain, path, n, err)
			}
		})
	}
	wg.Wait()
}
