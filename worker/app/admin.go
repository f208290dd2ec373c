package app

import (
	"context"
	"encoding/json"
	"mime"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/evmlb/evmlb/durable"
	"github.com/evmlb/evmlb/internal/adminapi"
	"github.com/evmlb/evmlb/internal/auth"
	"github.com/evmlb/evmlb/internal/balance"
	"github.com/evmlb/evmlb/internal/config"
	"github.com/evmlb/evmlb/internal/jsonrpc"
	"github.com/evmlb/evmlb/internal/protocol"
	"github.com/evmlb/evmlb/internal/proxy"
	"github.com/evmlb/evmlb/internal/stats"
)

// admin serves /admin/…, behind basic auth. Every answer is JSON; per-object failures are reported in the
// object's entry ("error") rather than failing the whole answer.
func (a *App) admin(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/admin/metrics" { // basic auth or METRICS_TOKEN
		a.adminMetrics(w, r)
		return
	}
	if !a.auth.Enabled() {
		jsonrpc.ErrAdminDisabled.Write(w, nil)
		return
	}
	if !a.auth.Allow(r) {
		w.Header().Set("WWW-Authenticate", auth.Challenge)
		jsonrpc.ErrUnauthorized.Write(w, nil)
		return
	}
	if a.cfgErr != nil {
		jsonrpc.ErrConfig.With(a.cfgErr.Error()).Write(w, nil)
		return
	}
	if r.URL.Path == "/admin" || r.URL.Path == "/admin/" {
		a.dashboardPage(w, r)
		return
	}
	routes := []struct {
		method, path string
		h            func(context.Context) any
	}{
		{http.MethodPost, "/admin/init_upstreams", a.initUpstreams},
		{http.MethodPost, "/admin/clear_storage", a.clearStorage},
		{http.MethodDelete, "/admin/clear_storage", a.clearStorage},
		{http.MethodGet, "/admin/chains", a.adminChains},
		{http.MethodGet, "/admin/upstreams", a.adminUpstreams},
		{http.MethodGet, "/admin/stats", a.adminStats},
		{http.MethodGet, "/admin/dashboard.json", a.dashboard},
		{http.MethodGet, "/admin/clients", a.adminClients},
		{http.MethodPost, "/admin/cache/purge", func(ctx context.Context) any { return a.purgeCache(ctx, r.URL.Query().Get("chain")) }},
	}
	var h func(context.Context) any
	var allowed []string
	if r.Method == http.MethodGet {
		a.plane.Flush(r.Context()) // the views then include what this isolate has seen
	}
	for _, rt := range routes {
		if rt.path == r.URL.Path {
			allowed = append(allowed, rt.method)
			if rt.method == r.Method {
				h = rt.h
			}
		}
	}
	switch {
	case len(allowed) == 0:
		jsonrpc.ErrNotFound.Write(w, nil)
		return
	case h == nil:
		w.Header().Set("Allow", strings.Join(allowed, ", "))
		jsonrpc.ErrMethodNotAllowed.Write(w, nil)
		return
	case r.Method != http.MethodGet && !nonSimple(r):
		jsonrpc.ErrAdminSimple.Write(w, nil)
		return
	case r.URL.Path == "/admin/cache/purge" && r.URL.Query().Has("chain") && !a.env.Config.HasChain(r.URL.Query().Get("chain")):
		jsonrpc.ErrUnknownChain.Write(w, nil)
		return
	}
	b, err := json.Marshal(h(r.Context()))
	if err != nil {
		panic(err) // our own types always marshal; recovered by ServeHTTP
	}
	jsonrpc.WriteJSON(w, http.StatusOK, b)
}

// HeaderAdmin is the header that, like Content-Type: application/json, makes an admin write a request no
// browser sends cross-origin without a preflight (which the admin API never grants).
const HeaderAdmin = "X-Evmlb-Admin"

// nonSimple reports whether r is not a CORS "simple" request: it carries Content-Type application/json or the
// header X-Evmlb-Admin. A cross-origin page can make a browser send a simple POST (a form: urlencoded, multipart
// or text/plain) with the credentials the browser holds for the admin API, without asking; it cannot send
// either of these without a preflight, and the admin API answers no preflight. So admin writes take only these.
func nonSimple(r *http.Request) bool {
	if r.Header.Get(HeaderAdmin) != "" {
		return true
	}
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return err == nil && mt == "application/json"
}

// each runs f for every item concurrently and returns the results in the items' order.
func each[T, R any](items []T, f func(T) R) []R {
	out := make([]R, len(items))
	var wg sync.WaitGroup
	for i, it := range items {
		wg.Go(func() { out[i] = f(it) })
	}
	wg.Wait()
	return out
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// initUpstreams syncs every configured chain: its object stores the upstream list, clears the upstreams no longer
// configured and starts the health checks of the others now.
func (a *App) initUpstreams(ctx context.Context) any {
	return map[string]any{"chains": each(a.env.Config.Chains(), func(chain string) adminapi.ChainSync {
		s := adminapi.ChainSync{SyncResult: adminapi.SyncResult{Chain: chain}}
		s.Error = errText(a.client.Chain(ctx, chain, http.MethodPost, protocol.PathSync, nil, &s.SyncResult))
		return s
	})}
}

// clearStorage clears every configured chain and upstream object (storage, alarm and memory), and every budget
// object (its leases and its day's count).
func (a *App) clearStorage(ctx context.Context) any {
	defer a.plane.Reset() // this isolate's snapshots describe what was cleared; other isolates' expire in a TTL
	chains := each(a.env.Config.Chains(), func(chain string) string {
		return errText(a.client.Chain(ctx, chain, http.MethodPost, protocol.PathClear, nil, nil))
	})
	ups := each(a.env.Config.Upstreams, func(u config.Upstream) string {
		return errText(a.client.Upstream(ctx, u.ID(), http.MethodPost, protocol.PathClear, nil))
	})
	budgets := each(a.budgetNames(), func(name string) string {
		return errText(a.client.BudgetClear(ctx, name))
	})
	var errs []string
	for _, e := range append(append(chains, ups...), budgets...) {
		if e != "" {
			errs = append(errs, e)
		}
	}
	return map[string]any{"cleared_chains": len(chains), "cleared_upstreams": len(ups), "cleared_budgets": len(budgets), "errors": errs}
}

// purgeCache moves the cache epoch of chain ("": of every configured chain) in its object, where it is stored,
// fetches this isolate's snapshots again (Flush: they carry the new epoch) and empties what this isolate holds of
// it (Plane.PurgeCache); other isolates learn the new epoch with their next snapshot, and every answer cached under
// the old one, in either tier, is unreachable from then on.
func (a *App) purgeCache(ctx context.Context, chain string) any {
	chains := a.env.Config.Chains()
	if chain != "" {
		chains = []string{chain}
	}
	out := each(chains, func(c string) adminapi.CachePurge {
		p := adminapi.CachePurge{Chain: c}
		p.Error = errText(a.client.Chain(ctx, c, http.MethodPost, protocol.PathPurge, []byte("{}"), &p))
		p.Chain = c
		return p
	})
	a.plane.Flush(ctx) // this isolate's snapshots then carry the new epochs at once, not a TTL later
	a.plane.PurgeCache(chain)
	return map[string]any{"chains": out}
}

func (a *App) adminChains(ctx context.Context) any {
	return map[string]any{"chains": each(a.env.Config.Chains(), func(chain string) adminapi.ChainSummary {
		var s adminapi.ChainStatus
		err := a.client.Chain(ctx, chain, http.MethodGet, protocol.PathStatus, nil, &s)
		sum := adminapi.ChainSummary{Chain: chain, BestHeight: s.BestHeight, Head: s.Head, ChainID: s.ChainID, ChainIDUndecided: s.ChainIDUndecided,
			Finalized: s.Finalized, CacheEpoch: s.CacheEpoch, Upstreams: len(s.Upstreams), Table: s.Upstreams, Error: errText(err)}
		for _, u := range s.Upstreams {
			if u.State == string(balance.Healthy) {
				sum.Healthy++
			}
		}
		var ws adminapi.SubsStatus
		if err := a.client.Subs(ctx, chain, http.MethodGet, durable.PathSubsStatus, &ws); err == nil {
			sum.Sockets, sum.Subscriptions, sum.Follower = ws.Sockets, ws.Subscriptions, &ws
		} else if sum.Error == "" {
			sum.Error = "subscription object: " + errText(err)
		}
		return sum
	})}
}

func (a *App) adminUpstreams(ctx context.Context) any {
	rows := map[string]adminapi.UpstreamRow{} // chain + "/" + name → row of the chain's table
	for _, chain := range a.env.Config.Chains() {
		var s adminapi.ChainStatus
		if a.client.Chain(ctx, chain, http.MethodGet, protocol.PathStatus, nil, &s) == nil {
			for _, r := range s.Upstreams {
				rows[chain+"/"+r.Name] = r
			}
		}
	}
	return map[string]any{"upstreams": each(a.env.Config.Upstreams, func(u config.Upstream) adminapi.UpstreamEntry {
		var e adminapi.UpstreamEntry
		e.Error = errText(a.client.Upstream(ctx, u.ID(), http.MethodGet, protocol.PathStatus, &e.UpstreamStatus))
		e.Chain, e.Name, e.Endpoint = u.Chain, u.Name, u.Endpoint()
		if r, ok := rows[u.ID()]; ok {
			e.State, e.Reason = r.State, r.Reason
		}
		return e
	})}
}

// Runtime describes the Go runtime that answered: when it started and how many requests (of every role: the
// Worker's and the Durable Objects' of its isolate) it has served. One start and a growing count show that the
// runtime lives as long as its isolate, not one per request.
type Runtime struct {
	Host           string    `json:"host"`
	StartedAt      time.Time `json:"started_at"`
	RequestsServed uint64    `json:"requests_served"`
	// MemoryBytes is the runtime's memory: in wasm, the linear memory as the host measures it, which never
	// shrinks and counts against the isolate's 128 MB; natively, what Go took from the OS (MemStats.Sys).
	MemoryBytes uint64 `json:"memory_bytes"`
	// DataPlane is this runtime's data plane: client requests served, Durable Object calls a client request waited
	// for (0 in the steady state: only a cold isolate's first snapshot), background exchanges.
	DataPlane proxy.Counters `json:"data_plane"`
}

func (a *App) memoryBytes() uint64 {
	if a.p.MemoryBytes != nil {
		if n := a.p.MemoryBytes(); n > 0 {
			return n
		}
	}
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.Sys
}

func (a *App) adminStats(ctx context.Context) any {
	return map[string]any{
		"runtime":   Runtime{Host: a.p.HostKind, StartedAt: a.started, RequestsServed: a.served.Load(), MemoryBytes: a.memoryBytes(), DataPlane: a.plane.Counters()},
		"upstreams": a.statsEntries(ctx),
	}
}

// statsEntries reads each upstream's statistics: what its object stored, plus the counts the chain's object holds
// that it has not stored: those collected from the Worker isolates since the upstream's last health report, and
// those handed to its object that it has not stored yet (a report's answer lost, or the object stopped before it
// stored them: the chain hands them again at the next report, and until then they are counted from the chain's).
// The upstreams' objects are read first: counts handed over between the two reads are then among the chain's handed
// counts under a number the object had not stored when read, and counted once, where the other order would see them
// both in the chain's pending counts and in the object's.
func (a *App) statsEntries(ctx context.Context) []adminapi.StatsEntry {
	type read struct {
		e   adminapi.StatsEntry
		seq uint64
	}
	reads := each(a.env.Config.Upstreams, func(u config.Upstream) read {
		var s durable.UpstreamStats
		err := a.client.Upstream(ctx, u.ID(), http.MethodGet, protocol.PathStats, &s)
		r := read{e: adminapi.StatsEntry{UpstreamStats: s.UpstreamStats, Error: errText(err)}, seq: s.Seq}
		r.e.Chain, r.e.Name = u.Chain, u.Name
		return r
	})
	held := map[string]durable.ChainStats{}
	for _, chain := range a.env.Config.Chains() {
		var cs durable.ChainStats
		if a.client.Chain(ctx, chain, http.MethodGet, protocol.PathStats, nil, &cs) == nil {
			held[chain] = cs
		}
	}
	out := make([]adminapi.StatsEntry, len(reads))
	for i, r := range reads {
		e := r.e
		cs := held[e.Chain]
		var add []map[string]stats.Counter
		if p := cs.Pending[e.Name]; len(p) > 0 {
			add = append(add, p)
		}
		if hv := cs.Handed[e.Name]; hv != nil && hv.Seq > r.seq && len(hv.Methods) > 0 {
			add = append(add, hv.Methods) // not stored by the upstream's object yet
		}
		if len(add) > 0 {
			s := make(stats.Stats)
			for m, v := range e.Methods {
				s.Add(m, v.Counter())
			}
			for _, p := range add {
				for m, c := range p {
					s.Add(m, c)
				}
			}
			e.Methods = s.Views()
		}
		out[i] = e
	}
	return out
}
