// Package metrics holds the balancer's Prometheus counters as plain, additive values and writes them in the
// Prometheus text exposition format (version 0.0.4).
//
// The data plane counts into a Chain per chain and isolate and ships it with each exchange
// (protocol.Exchange.Metrics); the chain's Durable Object adds every isolate's counts into its own Chain, stores
// it with the table, and answers it to /admin/metrics, which renders every chain's. So the figures are
// cluster-wide sums, and an evicted object loses none.
//
// Cardinality is bounded: the method label is internal/methods' list, "batch" or "other"; classes are
// internal/retry's table; upstreams and chains come from the configuration.
//
// The format is written by hand: github.com/prometheus/common/expfmt needs client_model's protobuf types and
// google.golang.org/protobuf, which add about 0.7 MB gzipped to app.wasm (RATIONALE.md). Tests parse the output
// with expfmt.
package metrics

import (
	"maps"
	"slices"
	"time"
)

// Buckets are the duration histograms' upper bounds, in seconds (+Inf is implied).
var Buckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}

// Batch labels a batch request; single calls are labelled with methods.Label.
const Batch = "batch"

// Request outcomes (evmlb_requests_total's outcome label).
const (
	OutcomeOK            = "ok"             // an upstream's good answer (or the cache's, or one shared in flight)
	OutcomeUpstreamError = "upstream_error" // an upstream's error answer (JSON-RPC error, or a batch with failed elements), passed on
	OutcomeFailed        = "failed"         // a write failed where it may have arrived: not retried
	OutcomeNoUpstream    = "no_upstream"    // no upstream could answer
	OutcomeLocal         = "local"          // answered by the balancer itself (eth_chainId, net_version)
	OutcomePoison        = "poison"         // a poison request (retry.Poison): not sent to another upstream
	OutcomeOverBudget    = "over_budget"    // every candidate's request budget was spent (429, -32005)
)

// Cache results (evmlb_cache_requests_total's result label), one per call: single calls' x-evmlb-cache header.
const (
	CacheHit    = "hit"    // answered from the cache (or by the balancer itself: eth_chainId, net_version)
	CacheMiss   = "miss"   // cacheable, not in the cache: sent upstream (and stored if its answer may be)
	CacheShared = "shared" // an identical read was in flight: its answer was shared, with this call's own id
	CacheSkip   = "skip"   // not cacheable (internal/cache's table): sent upstream
)

// CacheResults are the cache results in the order the exposition and the dashboard show them.
var CacheResults = []string{CacheHit, CacheMiss, CacheShared, CacheSkip}

// Histogram counts durations in Buckets. Counts are per bucket (not cumulative), the last one +Inf.
type Histogram struct {
	Counts []uint64 `json:"b,omitempty"`
	SumUS  uint64   `json:"s,omitempty"` // microseconds
}

// Observe counts one duration.
func (h *Histogram) Observe(d time.Duration) {
	if len(h.Counts) != len(Buckets)+1 {
		h.Counts = make([]uint64, len(Buckets)+1)
	}
	s := max(d, 0).Seconds()
	i, _ := slices.BinarySearch(Buckets, s) // the first bound ≥ s
	h.Counts[i]++
	h.SumUS += uint64(max(d, 0) / time.Microsecond)
}

// Add adds o's counts.
func (h *Histogram) Add(o Histogram) {
	if len(o.Counts) == 0 {
		return
	}
	if len(h.Counts) != len(Buckets)+1 {
		h.Counts = make([]uint64, len(Buckets)+1)
	}
	for i := range min(len(o.Counts), len(h.Counts)) {
		h.Counts[i] += o.Counts[i]
	}
	h.SumUS += o.SumUS
}

// Count is the number of durations counted.
func (h Histogram) Count() uint64 {
	var n uint64
	for _, c := range h.Counts {
		n += c
	}
	return n
}

// Quantile estimates the q-quantile in seconds, interpolating inside the bucket as Prometheus'
// histogram_quantile does (0 when empty; the highest finite bound when it falls in +Inf).
func (h Histogram) Quantile(q float64) float64 {
	n := h.Count()
	if n == 0 {
		return 0
	}
	rank := q * float64(n)
	var cum uint64
	for i, c := range h.Counts {
		if float64(cum+c) >= rank && c > 0 {
			if i == len(Buckets) {
				return Buckets[len(Buckets)-1]
			}
			lo := 0.0
			if i > 0 {
				lo = Buckets[i-1]
			}
			return lo + (Buckets[i]-lo)*(rank-float64(cum))/float64(c)
		}
		cum += c
	}
	return Buckets[len(Buckets)-1]
}

// Minute is one minute's traffic of an upstream (for the dashboard's sparklines and rates).
type Minute struct {
	At       int64  `json:"t"` // Unix minute
	Requests uint64 `json:"r"`
	Errors   uint64 `json:"e,omitempty"`
}

// HistoryMinutes is how many minutes of history a chain object keeps.
const HistoryMinutes = 30

// Upstream is one upstream's counts in a chain.
type Upstream struct {
	// Requests counts attempts: method label → class ("ok" or a retry.Class) → count.
	Requests map[string]map[string]uint64 `json:"r,omitempty"`
	Duration Histogram                    `json:"d"`
	// Breaker counts the circuit breaker's transitions by the state entered (closed, open, half_open).
	Breaker map[string]uint64 `json:"br,omitempty"`
	// Skipped counts single calls routed without this upstream because it proved it cannot serve them (issue 20:
	// capabilities learned), by what it lacks (Lacks: method, state).
	Skipped map[string]uint64 `json:"sk,omitempty"`
	// Minutes is the recent history, oldest first (kept by the chain object only).
	Minutes []Minute `json:"m,omitempty"`
}

// Chain is one chain's counts: an isolate's since its last exchange, or the chain object's totals.
type Chain struct {
	// Requests counts client requests: method label → outcome → count.
	Requests  map[string]map[string]uint64 `json:"r,omitempty"`
	Duration  Histogram                    `json:"d"`
	Upstreams map[string]*Upstream         `json:"u,omitempty"`
	Retries   uint64                       `json:"retries,omitempty"` // attempts after a failed one
	Hedges    uint64                       `json:"hedges,omitempty"`  // attempts started beside a slow one
	Poison    uint64                       `json:"poison,omitempty"`  // poison requests: found so, or refused again
	// LogsSplits counts eth_getLogs requests asked in pieces, LogsPieces the pieces asked (internal/proxy/logs.go).
	LogsSplits uint64 `json:"ls,omitempty"`
	LogsPieces uint64 `json:"lp,omitempty"`
	// Cache counts calls by the answer cache's result: method label → result (CacheResults) → count.
	Cache map[string]map[string]uint64 `json:"ca,omitempty"`
	// Broadcast counts the upstreams' results of broadcast transactions: upstream → result (accepted, known,
	// rejected, failed, wrong_hash: internal/proxy's Broadcast…) → count.
	Broadcast map[string]map[string]uint64 `json:"bc,omitempty"`
	// Minutes is the chain's recent client traffic (kept by the chain object only).
	Minutes []Minute `json:"m,omitempty"`
	// Clients counts the requests of CLIENT_KEYS' clients: client name (ClientUnknown: no key, or a wrong one) →
	// outcome (ClientOutcomes) → count. Never a key or a hash: names come from the configuration.
	Clients map[string]map[string]uint64 `json:"cl,omitempty"`
}

// Client request outcomes (evmlb_client_requests_total's outcome label), and the client of a request without a
// known key.
const (
	ClientOK           = "ok"           // the key passed: the request went on to the deny list and the data plane
	ClientLimited      = "limited"      // over the key's rps/burst: 429
	ClientDayLimited   = "day_limited"  // over the key's per_day: 429
	ClientDenied       = "denied"       // a method the key's allow/deny list refuses: 403 (-32067)
	ClientChainDenied  = "chain_denied" // a chain the key may not use: 403 (-32078)
	ClientUnauthorized = "unauthorized" // no key, an unknown one, or two different ones: 401 (client ClientUnknown)
	ClientUnknown      = "unknown"
)

// ClientOutcomes are the outcomes in the order the admin API and the dashboard show them.
var ClientOutcomes = []string{ClientOK, ClientLimited, ClientDayLimited, ClientDenied, ClientChainDenied, ClientUnauthorized}

// ClientRequest counts one request of client with outcome.
func (c *Chain) ClientRequest(client, outcome string) { inc(&c.Clients, client, outcome, 1) }

// Empty reports whether c counts nothing.
func (c *Chain) Empty() bool {
	return c == nil || (len(c.Requests) == 0 && len(c.Upstreams) == 0 && c.Retries == 0 && c.Hedges == 0 && c.Poison == 0 &&
		c.LogsSplits == 0 && c.LogsPieces == 0 &&
		len(c.Cache) == 0 && len(c.Broadcast) == 0 && len(c.Clients) == 0)
}

func inc(m *map[string]map[string]uint64, a, b string, n uint64) {
	if *m == nil {
		*m = map[string]map[string]uint64{}
	}
	in := (*m)[a]
	if in == nil {
		in = map[string]uint64{}
		(*m)[a] = in
	}
	in[b] += n
}

// Upstream is up's counts, made on first use.
func (c *Chain) Upstream(up string) *Upstream {
	if c.Upstreams == nil {
		c.Upstreams = map[string]*Upstream{}
	}
	u := c.Upstreams[up]
	if u == nil {
		u = &Upstream{}
		c.Upstreams[up] = u
	}
	return u
}

// Request counts one client request.
func (c *Chain) Request(method, outcome string, d time.Duration) {
	inc(&c.Requests, method, outcome, 1)
	c.Duration.Observe(d)
}

// BroadcastResult counts how up took one broadcast transaction.
func (c *Chain) BroadcastResult(up, result string) { inc(&c.Broadcast, up, result, 1) }

// CacheResult counts one call's cache result (CacheHit, …).
func (c *Chain) CacheResult(method, result string) { inc(&c.Cache, method, result, 1) }

// CacheRatio is the share of calls answered from the cache (hits) among all counted, and that count.
func (c *Chain) CacheRatio() (ratio float64, calls uint64) {
	var hits uint64
	for _, in := range c.Cache {
		for r, n := range in {
			calls += n
			if r == CacheHit {
				hits += n
			}
		}
	}
	if calls > 0 {
		ratio = float64(hits) / float64(calls)
	}
	return ratio, calls
}

// Attempt counts one attempt at up; class is "" or "ok" for a good answer.
func (c *Chain) Attempt(up, method, class string, d time.Duration) {
	if class == "" {
		class = OutcomeOK
	}
	u := c.Upstream(up)
	inc(&u.Requests, method, class, 1)
	u.Duration.Observe(d)
}

// Lacks are what an upstream proved it lacks when a call is routed without it (retry.LacksMethod, LacksState), or
// budget: its request budget was spent (max_rps, max_per_day; issue 22), in the order the exposition shows them.
var Lacks = []string{"method", "state", "budget"}

// Skip counts one call routed without up because it proved it lacks lack (a member of Lacks).
func (c *Chain) Skip(up, lack string) {
	u := c.Upstream(up)
	if u.Skipped == nil {
		u.Skipped = map[string]uint64{}
	}
	u.Skipped[lack]++
}

// Transition counts a breaker transition of up into state to.
func (c *Chain) Transition(up, to string) {
	u := c.Upstream(up)
	if u.Breaker == nil {
		u.Breaker = map[string]uint64{}
	}
	u.Breaker[to]++
}

// Add adds o's counts to c (another isolate's). With now non-zero, o's traffic is also added to the minute of
// now in the histories, which keep HistoryMinutes minutes; keep, when non-nil, says which upstreams to take.
func (c *Chain) Add(o *Chain, now time.Time, keep func(string) bool) {
	if o == nil {
		return
	}
	var total, errs uint64
	for m, in := range o.Requests {
		for k, n := range in {
			inc(&c.Requests, m, k, n)
			total += n
			if k != OutcomeOK && k != OutcomeLocal {
				errs += n
			}
		}
	}
	for m, in := range o.Cache {
		for r, n := range in {
			inc(&c.Cache, m, r, n)
		}
	}
	for cl, in := range o.Clients {
		for k, n := range in {
			inc(&c.Clients, cl, k, n)
		}
	}
	for up, in := range o.Broadcast {
		if keep != nil && !keep(up) {
			continue
		}
		for r, n := range in {
			inc(&c.Broadcast, up, r, n)
		}
	}
	c.Duration.Add(o.Duration)
	c.Retries += o.Retries
	c.Hedges += o.Hedges
	c.Poison += o.Poison
	c.LogsSplits += o.LogsSplits
	c.LogsPieces += o.LogsPieces
	if !now.IsZero() && total > 0 {
		c.Minutes = addMinute(c.Minutes, now, total, errs)
	}
	for _, name := range slices.Sorted(maps.Keys(o.Upstreams)) {
		if keep != nil && !keep(name) {
			continue
		}
		ou, u := o.Upstreams[name], c.Upstream(name)
		var total, errs uint64
		for m, in := range ou.Requests {
			for k, n := range in {
				inc(&u.Requests, m, k, n)
				total += n
				if k != OutcomeOK {
					errs += n
				}
			}
		}
		u.Duration.Add(ou.Duration)
		for to, n := range ou.Breaker {
			if u.Breaker == nil {
				u.Breaker = map[string]uint64{}
			}
			u.Breaker[to] += n
		}
		for l, n := range ou.Skipped {
			if u.Skipped == nil {
				u.Skipped = map[string]uint64{}
			}
			u.Skipped[l] += n
		}
		if !now.IsZero() && total > 0 {
			u.Minutes = addMinute(u.Minutes, now, total, errs)
		}
	}
}

// addMinute adds traffic to now's minute and keeps the last HistoryMinutes minutes.
func addMinute(h []Minute, now time.Time, reqs, errs uint64) []Minute {
	at := now.Unix() / 60
	if n := len(h); n > 0 && h[n-1].At == at {
		h[n-1].Requests += reqs
		h[n-1].Errors += errs
	} else {
		h = append(h, Minute{At: at, Requests: reqs, Errors: errs})
	}
	for len(h) > 0 && h[0].At <= at-HistoryMinutes {
		h = h[1:]
	}
	return slices.Clip(h)
}

// Series is the history as one value per minute, oldest first, ending with now's minute (zeros where there was
// no traffic).
func Series(h []Minute, now time.Time, minutes int) (reqs, errs []uint64) {
	at := now.Unix() / 60
	reqs, errs = make([]uint64, minutes), make([]uint64, minutes)
	for _, m := range h {
		if i := minutes - 1 - int(at-m.At); i >= 0 && i < minutes {
			reqs[i], errs[i] = m.Requests, m.Errors
		}
	}
	return reqs, errs
}
