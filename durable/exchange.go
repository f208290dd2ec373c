package durable

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"time"

	"github.com/evmlb/evmlb/internal/jsonrpc"
	"github.com/evmlb/evmlb/internal/platform"
	"github.com/evmlb/evmlb/internal/protocol"
	"github.com/evmlb/evmlb/internal/stats"
)

// exchange takes a Worker isolate's report (protocol.Exchange: its attempts' outcomes, the head it served, its
// per-method counts) into the table and answers the chain's snapshot. The first exchange an instance gets starts
// the upstreams' health checks; on a blind table (a new deployment, cleared storage), or one loaded from storage
// (whose heights were forgotten: nothing stored is served before current reports confirm it), it first runs one
// check of every upstream, so that no isolate routes blind; exchanges arriving meanwhile wait for the same checks.
func (cs *Chains) exchange(w http.ResponseWriter, r *http.Request, o *chain, st platform.Storage, name string) {
	var ex protocol.Exchange
	if err := json.NewDecoder(r.Body).Decode(&ex); err != nil {
		jsonrpc.ErrInvalidRequest.With("exchange").Write(w, nil)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), firstExchangeWait)
	defer cancel()
	o.mu.Lock()
	ensure := !o.ensured
	o.ensured = true
	checking := o.checked // closed once the first checks are done; nil when none were needed
	if ensure && (o.table.Blind() || o.restarted) {
		o.checked = make(chan struct{})
		checking = nil
	}
	o.restarted = false
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
	now := cs.env.P.Now()
	names := o.table.Names()
	before := o.breakers(names, now)
	var touched []string
	for _, oc := range ex.Outcomes {
		if _, ok := o.table.Get(oc.Upstream); !ok {
			continue
		}
		o.table.ObserveN(oc.Upstream, oc.Class, time.Duration(oc.LatencyUS)*time.Microsecond, oc.Count(), time.UnixMilli(oc.At))
		if !slices.Contains(touched, oc.Upstream) {
			touched = append(touched, oc.Upstream)
		}
	}
	for _, l := range ex.Learned {
		l.Apply(o.table) // an upstream not configured is ignored
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
	o.countTransitions(names, before, now)
	o.metrics.Add(ex.Metrics, now, func(up string) bool { _, ok := o.table.Get(up); return ok })
	snap := protocol.SnapshotOf(o.table)
	if o.poison == nil {
		o.poison = map[uint64]int64{}
	}
	protocol.AddPoison(o.poison, ex.Poison, now)
	snap.Poison = protocol.PoisonList(o.poison, now)
	o.mu.Unlock()
	cs.saveRows(context.WithoutCancel(ctx), o, st, name, touched, !ex.Metrics.Empty())
	writeJSON(w, snap)
}
