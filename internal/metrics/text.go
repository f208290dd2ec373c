package metrics

import (
	"bufio"
	"io"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/evmlb/evmlb/internal/methods"
)

// ContentType is the text exposition format's media type.
const ContentType = "text/plain; version=0.0.4; charset=utf-8"

// ChainView is what the exposition shows of one chain: its counts and its table now.
type ChainView struct {
	Name      string
	Head      uint64 // the chain's head (0: unknown)
	Metrics   *Chain
	Upstreams []UpstreamView // in config order
	// CacheBytes is what the chain's answers take in the memory tier of the isolate that answers the scrape.
	CacheBytes int64
	// WS is the chain's WebSockets (its subscription object's status); nil: not known (no sample).
	WS *WSView
}

// WSView is a chain's WebSockets now and its subscription follower's counts since its object began.
type WSView struct {
	Sockets, Subscriptions        int
	Events, Reorgs, Deep, Skipped uint64
}

// UpstreamView is one upstream's row in its chain's table now.
type UpstreamView struct {
	Name   string
	Height uint64 // 0: unknown
	State  string
	// What it proved it can and cannot serve (issue 20, balance.Caps), proofs that expired left out: configured as
	// an archive node; the methods it is held not to offer; the block at and below which it lacks the state
	// (LacksState: a proof holds); the block from which it has it (HasState: a proof holds).
	Archive      bool
	LacksMethods []string
	StateBelow   uint64
	LacksState   bool
	StateFrom    uint64
	HasState     bool
}

// BreakerStates are the breaker states a transition enters (balance.BreakerState).
var BreakerStates = []string{"closed", "open", "half_open"}

type writer struct {
	w *bufio.Writer
}

func (w writer) family(name, typ, help string) {
	w.w.WriteString("# HELP " + name + " " + help + "\n# TYPE " + name + " " + typ + "\n")
}

// sample writes one sample; labels alternate names and values.
func (w writer) sample(name string, v float64, labels ...string) {
	w.w.WriteString(name)
	if len(labels) > 0 {
		w.w.WriteByte('{')
		for i := 0; i+1 < len(labels); i += 2 {
			if i > 0 {
				w.w.WriteByte(',')
			}
			w.w.WriteString(labels[i] + `="` + escape(labels[i+1]) + `"`)
		}
		w.w.WriteByte('}')
	}
	w.w.WriteByte(' ')
	w.w.WriteString(formatFloat(v))
	w.w.WriteByte('\n')
}

// histogram writes h's _bucket (cumulative), _sum and _count samples.
func (w writer) histogram(name string, h Histogram, labels ...string) {
	var cum uint64
	for i, b := range append(slices.Clone(Buckets), math.Inf(1)) {
		if i < len(h.Counts) {
			cum += h.Counts[i]
		}
		w.sample(name+"_bucket", float64(cum), append(slices.Clone(labels), "le", formatFloat(b))...)
	}
	w.sample(name+"_sum", float64(h.SumUS)/1e6, labels...)
	w.sample(name+"_count", float64(cum), labels...)
}

var escaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)

func escape(s string) string { return escaper.Replace(s) }

func formatFloat(v float64) string {
	switch {
	case math.IsInf(v, 1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }

// Write writes every chain's metrics in the text exposition format; states lists every upstream state, for
// evmlb_upstream_state (1 for the current one, 0 for the others).
func Write(out io.Writer, chains []ChainView, states []string) error {
	w := writer{bufio.NewWriter(out)}
	met := func(c ChainView) *Chain {
		if c.Metrics == nil {
			return &Chain{}
		}
		return c.Metrics
	}

	w.family("evmlb_requests_total", "counter", "Client JSON-RPC requests answered, by chain, method (batch for a batch, other for a method not on the known list) and outcome.")
	for _, c := range chains {
		m := met(c)
		for _, method := range sortedKeys(m.Requests) {
			for _, oc := range sortedKeys(m.Requests[method]) {
				w.sample("evmlb_requests_total", float64(m.Requests[method][oc]), "chain", c.Name, "method", method, "outcome", oc)
			}
		}
	}
	w.family("evmlb_request_duration_seconds", "histogram", "Time to answer a client request, by chain.")
	for _, c := range chains {
		w.histogram("evmlb_request_duration_seconds", met(c).Duration, "chain", c.Name)
	}
	w.family("evmlb_upstream_requests_total", "counter", "Attempts at upstreams, by chain, upstream, method and class (ok, or the failure class).")
	for _, c := range chains {
		m := met(c)
		for _, u := range c.Upstreams {
			mu := m.Upstreams[u.Name]
			if mu == nil {
				continue
			}
			for _, method := range sortedKeys(mu.Requests) {
				for _, cl := range sortedKeys(mu.Requests[method]) {
					w.sample("evmlb_upstream_requests_total", float64(mu.Requests[method][cl]), "chain", c.Name, "upstream", u.Name, "method", method, "class", cl)
				}
			}
		}
	}
	w.family("evmlb_upstream_request_duration_seconds", "histogram", "Duration of attempts at upstreams, by chain and upstream.")
	for _, c := range chains {
		m := met(c)
		for _, u := range c.Upstreams {
			var h Histogram
			if mu := m.Upstreams[u.Name]; mu != nil {
				h = mu.Duration
			}
			w.histogram("evmlb_upstream_request_duration_seconds", h, "chain", c.Name, "upstream", u.Name)
		}
	}
	w.family("evmlb_upstream_head_block", "gauge", "The upstream's head block in its chain's table (0: unknown).")
	for _, c := range chains {
		for _, u := range c.Upstreams {
			w.sample("evmlb_upstream_head_block", float64(u.Height), "chain", c.Name, "upstream", u.Name)
		}
	}
	w.family("evmlb_upstream_lag_blocks", "gauge", "Blocks the upstream's head is below the chain's head.")
	for _, c := range chains {
		for _, u := range c.Upstreams {
			lag := uint64(0)
			if c.Head > u.Height {
				lag = c.Head - u.Height
			}
			w.sample("evmlb_upstream_lag_blocks", float64(lag), "chain", c.Name, "upstream", u.Name)
		}
	}
	w.family("evmlb_upstream_state", "gauge", "The upstream's routing state: 1 for the current state, 0 for the others.")
	for _, c := range chains {
		for _, u := range c.Upstreams {
			for _, s := range states {
				v := 0.0
				if s == u.State {
					v = 1
				}
				w.sample("evmlb_upstream_state", v, "chain", c.Name, "upstream", u.Name, "state", s)
			}
		}
	}
	w.family("evmlb_chain_head_block", "gauge", "The chain's head: the best height that counts, or the highest eth_blockNumber served if higher.")
	for _, c := range chains {
		w.sample("evmlb_chain_head_block", float64(c.Head), "chain", c.Name)
	}
	w.family("evmlb_retries_total", "counter", "Attempts made after a failed attempt of the same request, by chain.")
	for _, c := range chains {
		w.sample("evmlb_retries_total", float64(met(c).Retries), "chain", c.Name)
	}
	w.family("evmlb_hedges_total", "counter", "Hedged attempts (started beside a slow one), by chain.")
	for _, c := range chains {
		w.sample("evmlb_hedges_total", float64(met(c).Hedges), "chain", c.Name)
	}
	w.family("evmlb_logs_splits_total", "counter", "eth_getLogs requests asked of the upstreams in pieces (a range an upstream caps), by chain.")
	for _, c := range chains {
		w.sample("evmlb_logs_splits_total", float64(met(c).LogsSplits), "chain", c.Name)
	}
	w.family("evmlb_logs_pieces_total", "counter", "Pieces of split eth_getLogs requests asked (each through the usual attempts), by chain.")
	for _, c := range chains {
		w.sample("evmlb_logs_pieces_total", float64(met(c).LogsPieces), "chain", c.Name)
	}
	w.family("evmlb_poison_requests_total", "counter", "Poison requests (class poison): found so after an attempt, or refused again without one, by chain.")
	for _, c := range chains {
		w.sample("evmlb_poison_requests_total", float64(met(c).Poison), "chain", c.Name)
	}
	w.family("evmlb_cache_requests_total", "counter", "Calls (each element of a batch) by the answer cache's result: hit, miss, shared (an identical read in flight answered it) or skip (not cacheable), by chain and method.")
	for _, c := range chains {
		m := met(c)
		for _, method := range sortedKeys(m.Cache) {
			for _, r := range sortedKeys(m.Cache[method]) {
				w.sample("evmlb_cache_requests_total", float64(m.Cache[method][r]), "chain", c.Name, "method", method, "result", r)
			}
		}
	}
	w.family("evmlb_cache_memory_bytes", "gauge", "Bytes the chain's cached answers take in the memory tier of the isolate that answered this scrape (each isolate has its own).")
	for _, c := range chains {
		w.sample("evmlb_cache_memory_bytes", float64(c.CacheBytes), "chain", c.Name)
	}
	w.family("evmlb_broadcast_total", "counter", "How each upstream took broadcast transactions (eth_sendRawTransaction with broadcast_writes): accepted, known (already in its pool or chain), rejected (an error answer), failed (no answer) or wrong_hash, by chain and upstream.")
	for _, c := range chains {
		m := met(c)
		for _, up := range sortedKeys(m.Broadcast) {
			for _, r := range sortedKeys(m.Broadcast[up]) {
				w.sample("evmlb_broadcast_total", float64(m.Broadcast[up][r]), "chain", c.Name, "upstream", up, "result", r)
			}
		}
	}
	w.family("evmlb_upstream_archive", "gauge", "1 when the upstream is configured as an archive node (archive = true): it has the state at every block.")
	for _, c := range chains {
		for _, u := range c.Upstreams {
			v := 0.0
			if u.Archive {
				v = 1
			}
			w.sample("evmlb_upstream_archive", v, "chain", c.Name, "upstream", u.Name)
		}
	}
	w.family("evmlb_upstream_lacks_method", "gauge", "1 for each method the upstream answered as not offered, while that is held (capability_ttl); only methods on the known list.")
	for _, c := range chains {
		for _, u := range c.Upstreams {
			for _, m := range slices.Sorted(slices.Values(u.LacksMethods)) {
				if methods.Label(m) == m { // only the known list: bounded whatever a row holds
					w.sample("evmlb_upstream_lacks_method", 1, "chain", c.Name, "upstream", u.Name, "method", m)
				}
			}
		}
	}
	w.family("evmlb_upstream_lacks_state_below_block", "gauge", "The block at and below which the upstream proved it lacks the state (missing trie node and kin), while that proof holds; absent when none does.")
	for _, c := range chains {
		for _, u := range c.Upstreams {
			if u.LacksState {
				w.sample("evmlb_upstream_lacks_state_below_block", float64(u.StateBelow), "chain", c.Name, "upstream", u.Name)
			}
		}
	}
	w.family("evmlb_upstream_has_state_from_block", "gauge", "The block from which the upstream proved it has the state (it served a read of old state there), while that proof holds; absent when none does.")
	for _, c := range chains {
		for _, u := range c.Upstreams {
			if u.HasState {
				w.sample("evmlb_upstream_has_state_from_block", float64(u.StateFrom), "chain", c.Name, "upstream", u.Name)
			}
		}
	}
	w.family("evmlb_upstream_skipped_total", "counter", "Calls routed without the upstream, by what it lacks: method (not offered) or state (old state pruned), proved; or budget (its request budget was spent).")
	for _, c := range chains {
		m := met(c)
		for _, u := range c.Upstreams {
			var sk map[string]uint64
			if mu := m.Upstreams[u.Name]; mu != nil {
				sk = mu.Skipped
			}
			for _, l := range Lacks {
				w.sample("evmlb_upstream_skipped_total", float64(sk[l]), "chain", c.Name, "upstream", u.Name, "lack", l)
			}
		}
	}
	w.family("evmlb_breaker_transitions_total", "counter", "Circuit breaker transitions in the chain object's table, by chain, upstream and the state entered.")
	for _, c := range chains {
		m := met(c)
		for _, u := range c.Upstreams {
			var br map[string]uint64
			if mu := m.Upstreams[u.Name]; mu != nil {
				br = mu.Breaker
			}
			for _, to := range BreakerStates {
				w.sample("evmlb_breaker_transitions_total", float64(br[to]), "chain", c.Name, "upstream", u.Name, "to", to)
			}
		}
	}
	ws := func(name, typ, help string, v func(*WSView) float64) {
		w.family(name, typ, help)
		for _, c := range chains {
			if c.WS != nil {
				w.sample(name, v(c.WS), "chain", c.Name)
			}
		}
	}
	ws("evmlb_ws_sockets", "gauge", "Open WebSockets of the chain (its subscription object).", func(s *WSView) float64 { return float64(s.Sockets) })
	ws("evmlb_ws_subscriptions", "gauge", "Subscriptions (eth_subscribe) held by the chain's WebSockets.", func(s *WSView) float64 { return float64(s.Subscriptions) })
	ws("evmlb_ws_events_total", "counter", "Subscription notifications sent on the chain's WebSockets.", func(s *WSView) float64 { return float64(s.Events) })
	ws("evmlb_ws_reorgs_total", "counter", "Reorgs the chain's subscription follower met (steps that removed blocks).", func(s *WSView) float64 { return float64(s.Reorgs) })
	ws("evmlb_ws_deep_reorgs_total", "counter", "Reorgs deeper than the blocks the follower keeps (128).", func(s *WSView) float64 { return float64(s.Deep) })
	ws("evmlb_ws_skipped_blocks_total", "counter", "Heights never sent: gaps longer than the blocks the follower keeps.", func(s *WSView) float64 { return float64(s.Skipped) })
	w.family("evmlb_client_requests_total", "counter", "Requests of each client of CLIENT_KEYS (client unknown: no key or an unknown one), by chain, client and outcome (ok, limited, day_limited, denied, chain_denied, unauthorized).")
	for _, c := range chains {
		m := met(c)
		for _, client := range sortedKeys(m.Clients) {
			for _, oc := range sortedKeys(m.Clients[client]) {
				w.sample("evmlb_client_requests_total", float64(m.Clients[client][oc]), "chain", c.Name, "client", client, "outcome", oc)
			}
		}
	}
	return w.w.Flush()
}
