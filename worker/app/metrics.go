package app

import (
	"context"
	"maps"
	"net/http"
	"slices"
	"time"

	"github.com/evmlb/evmlb/durable"
	"github.com/evmlb/evmlb/internal/adminapi"
	"github.com/evmlb/evmlb/internal/auth"
	"github.com/evmlb/evmlb/internal/balance"
	"github.com/evmlb/evmlb/internal/jsonrpc"
	"github.com/evmlb/evmlb/internal/metrics"
	"github.com/evmlb/evmlb/internal/protocol"
)

// states is every routing state, for evmlb_upstream_state.
var states = func() []string {
	out := make([]string, len(balance.States))
	for i, s := range balance.States {
		out[i] = string(s)
	}
	return out
}()

// chainMetrics is one chain's /metrics answer from its object.
type chainMetrics struct {
	chain string
	m     durable.ChainMetrics
	err   error
}

// allChainMetrics asks every chain's object for its status and counts, concurrently.
func (a *App) allChainMetrics(ctx context.Context) []chainMetrics {
	return each(a.env.Config.Chains(), func(chain string) chainMetrics {
		c := chainMetrics{chain: chain}
		c.err = a.client.Chain(ctx, chain, http.MethodGet, protocol.PathMetrics, nil, &c.m)
		return c
	})
}

// adminMetrics serves GET /admin/metrics in the Prometheus text format, to admin basic auth or the bearer
// METRICS_TOKEN. A chain whose object does not answer is left out (and logged), the others are shown.
func (a *App) adminMetrics(w http.ResponseWriter, r *http.Request) {
	switch {
	case !a.auth.Enabled() && !a.metricsToken.Enabled():
		jsonrpc.ErrAdminDisabled.Write(w, nil)
		return
	case !a.auth.Allow(r) && !a.metricsToken.Allow(r):
		w.Header().Set("WWW-Authenticate", auth.Challenge)
		jsonrpc.ErrUnauthorized.Write(w, nil)
		return
	case a.cfgErr != nil:
		jsonrpc.ErrConfig.With(a.cfgErr.Error()).Write(w, nil)
		return
	case r.Method != http.MethodGet && r.Method != http.MethodHead:
		w.Header().Set("Allow", "GET, HEAD")
		jsonrpc.ErrMethodNotAllowed.Write(w, nil)
		return
	}
	a.plane.Flush(r.Context()) // what this isolate has seen is then in the chain objects' counts
	var views []metrics.ChainView
	for _, c := range a.allChainMetrics(r.Context()) {
		if c.err != nil {
			a.p.Logf("metrics: chain %s: %v", c.chain, c.err)
			continue
		}
		v := metrics.ChainView{Name: c.chain, Head: c.m.Head, Metrics: c.m.Metrics, CacheBytes: a.plane.CacheBytes(c.chain)}
		var ws adminapi.SubsStatus
		if err := a.client.Subs(r.Context(), c.chain, http.MethodGet, durable.PathSubsStatus, &ws); err == nil {
			v.WS = &metrics.WSView{Sockets: ws.Sockets, Subscriptions: ws.Subscriptions, Events: ws.Counts.Events,
				Reorgs: ws.Counts.Reorgs, Deep: ws.Counts.Deep, Skipped: ws.Counts.Skipped}
		} else {
			a.p.Logf("metrics: chain %s: subscription object: %v", c.chain, err)
		}
		for _, u := range c.m.Upstreams {
			v.Upstreams = append(v.Upstreams, metrics.UpstreamView{Name: u.Name, Height: u.Height, State: u.State,
				Archive: u.Caps.Archive, LacksMethods: slices.Collect(maps.Keys(u.Caps.Methods)),
				StateBelow: u.Caps.StateBelow, LacksState: !u.Caps.StateBelowUntil.IsZero(),
				StateFrom: u.Caps.StateFrom, HasState: !u.Caps.StateFromUntil.IsZero()})
		}
		views = append(views, v)
	}
	w.Header().Set("Content-Type", metrics.ContentType)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		_ = metrics.Write(w, views, states)
	}
}

// dashboardMinutes is the sparklines' length; rateMinutes the window of req/s and error rates.
const (
	dashboardMinutes = 30
	rateMinutes      = 5
)

// DashboardChain is one chain in /admin/dashboard.json.
type DashboardChain struct {
	Chain   string `json:"chain"`
	Head    uint64 `json:"head"`
	ChainID uint64 `json:"chain_id,omitempty"`
	// Finalized is the chain's finalized block (adminapi.ChainStatus.Finalized); 0: unknown.
	Finalized uint64 `json:"finalized,omitempty"`
	// ChainIDUndecided: why every request of the chain is refused (adminapi.ChainStatus.ChainIDUndecided).
	ChainIDUndecided string   `json:"chain_id_undecided,omitempty"`
	RPS              float64  `json:"rps"`        // client requests per second over the last rateMinutes
	ErrorRate        float64  `json:"error_rate"` // share of them not answered well
	P50MS            float64  `json:"p50_ms"`     // since the counts began (histogram estimate)
	P99MS            float64  `json:"p99_ms"`
	Spark            []uint64 `json:"spark"` // client requests per minute, oldest first, ending now
	// CacheHitRatio is the share of calls the answer cache answered (hits) since the counts began, of
	// CacheCalls calls counted (every element of a batch).
	CacheHitRatio float64 `json:"cache_hit_ratio"`
	CacheCalls    uint64  `json:"cache_calls"`
	// LogsSplits counts the eth_getLogs requests asked in pieces, LogsPieces the pieces (evmlb_logs_*_total).
	LogsSplits uint64              `json:"logs_splits"`
	LogsPieces uint64              `json:"logs_pieces"`
	Upstreams  []DashboardUpstream `json:"upstreams"`
	Error      string              `json:"error,omitempty"`
}

// DashboardUpstream is one upstream of a DashboardChain.
type DashboardUpstream struct {
	Name      string        `json:"name"`
	Endpoint  string        `json:"endpoint"` // scheme and host only
	State     balance.State `json:"state"`
	Reason    string        `json:"reason,omitempty"`
	Height    uint64        `json:"height"`
	Lag       uint64        `json:"lag"`
	P50MS     float64       `json:"p50_ms"`
	P99MS     float64       `json:"p99_ms"`
	ErrorRate float64       `json:"error_rate"`
	RPS       float64       `json:"rps"`
	Requests  uint64        `json:"requests"` // attempts since the counts began
	Spark     []uint64      `json:"spark"`    // attempts per minute, oldest first, ending now
	// Broadcast is how it took broadcast transactions: result (accepted, known, …) → count (evmlb_broadcast_total).
	Broadcast map[string]uint64 `json:"broadcast,omitempty"`
	// Caps is what it proved it can and cannot serve, as /admin/chains shows it.
	Caps adminapi.Caps `json:"caps,omitzero"`
}

// rates is requests per second and the error share over the last rateMinutes of a history.
func rates(h []metrics.Minute, now time.Time) (rps, errRate float64) {
	reqs, errs := metrics.Series(h, now, rateMinutes)
	var r, e uint64
	for i := range reqs {
		r, e = r+reqs[i], e+errs[i]
	}
	secs := float64((rateMinutes-1)*60) + float64(now.Unix()%60) + 1
	if r > 0 {
		errRate = float64(e) / float64(r)
	}
	return float64(r) / secs, errRate
}

// dashboard is /admin/dashboard.json: what the dashboard page shows.
func (a *App) dashboard(ctx context.Context) any {
	now := a.p.Now()
	endpoints := map[string]string{}
	for _, u := range a.env.Config.Upstreams {
		endpoints[u.ID()] = u.Endpoint()
	}
	var out []DashboardChain
	all := a.allChainMetrics(ctx)
	for _, c := range all {
		d := DashboardChain{Chain: c.chain, Head: c.m.Head, ChainID: c.m.ChainID, Finalized: c.m.Finalized, ChainIDUndecided: c.m.ChainIDUndecided, Upstreams: []DashboardUpstream{}, Error: errText(c.err)}
		m := c.m.Metrics
		if m == nil {
			m = &metrics.Chain{}
		}
		d.RPS, d.ErrorRate = rates(m.Minutes, now)
		d.Spark, _ = metrics.Series(m.Minutes, now, dashboardMinutes)
		d.P50MS, d.P99MS = m.Duration.Quantile(0.5)*1000, m.Duration.Quantile(0.99)*1000
		d.CacheHitRatio, d.CacheCalls = m.CacheRatio()
		d.LogsSplits, d.LogsPieces = m.LogsSplits, m.LogsPieces
		for _, u := range c.m.Upstreams {
			du := DashboardUpstream{Name: u.Name, Endpoint: endpoints[c.chain+"/"+u.Name], State: balance.State(u.State), Reason: u.Reason, Height: u.Height,
				Broadcast: m.Broadcast[u.Name], Caps: u.Caps}
			if c.m.Head > u.Height {
				du.Lag = c.m.Head - u.Height
			}
			mu := m.Upstreams[u.Name]
			if mu == nil {
				mu = &metrics.Upstream{}
			}
			du.P50MS, du.P99MS = mu.Duration.Quantile(0.5)*1000, mu.Duration.Quantile(0.99)*1000
			du.RPS, du.ErrorRate = rates(mu.Minutes, now)
			du.Requests = mu.Duration.Count()
			du.Spark, _ = metrics.Series(mu.Minutes, now, dashboardMinutes)
			d.Upstreams = append(d.Upstreams, du)
		}
		out = append(out, d)
	}
	return map[string]any{"at": now.UTC(), "chains": out, "clients": a.clientsView(ctx, all)}
}
