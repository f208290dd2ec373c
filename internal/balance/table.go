package balance

import (
	"fmt"
	"sort"
	"time"

	"github.com/evmlb/evmlb/internal/blockref"
	"github.com/evmlb/evmlb/internal/retry"
)

// State is an upstream's state as admin shows it.
type State string

// The states, in the order of precedence State reports them.
const (
	Healthy     State = "healthy"
	Unknown     State = "unknown"      // nothing reported yet; served in config order until something is
	WrongChain  State = "wrong_chain"  // quarantined: its chain id differs from the chain's
	Syncing     State = "syncing"      // eth_syncing says it is catching up
	CoolingDown State = "cooling_down" // it answered 429; no traffic until the cool-down ends
	Failing     State = "failing"      // circuit breaker open
	Recovering  State = "recovering"   // circuit breaker half-open: probes only
	Lagging     State = "lagging"      // too far behind the best, or its head stopped while others moved
)

// Report is one health check of an upstream.
type Report struct {
	At      time.Time
	Height  uint64 // 0 when unknown
	ChainID uint64 // 0 when unknown
	Syncing bool
	Err     retry.Class // the check's failure class, retry.OK when it succeeded
}

// Upstream is what the table knows of one upstream. Fields are exported for admin output and persistence.
type Upstream struct {
	Name          string      `json:"name"`
	Height        uint64      `json:"height"`
	HeightMovedAt time.Time   `json:"height_moved_at"`
	ChainID       uint64      `json:"chain_id,omitempty"`
	Syncing       bool        `json:"syncing,omitempty"`
	ReportedAt    time.Time   `json:"reported_at"`
	LastError     retry.Class `json:"last_error,omitempty"`
	LastErrorAt   time.Time   `json:"last_error_at"`
	CooldownUntil time.Time   `json:"cooldown_until"`
	Breaker       Breaker     `json:"breaker"`
	LatencyMS     float64     `json:"latency_ewma_ms"`
	ErrorRate     float64     `json:"error_rate_ewma"`
	Requests      uint64      `json:"requests"`
}

// Table is one chain's routing table. It is not safe for concurrent use: the chain object serialises access.
type Table struct {
	settings Settings
	order    []string // config order: ties keep it
	ups      map[string]*Upstream
	head     uint64 // the highest block number ever served or seen for the chain: never decreases
	rr       uint64 // round-robin counter that spreads load among equals
	rand     func() float64
}

// New returns a table of the upstreams names (in config order). rand returns numbers in [0,1) and decides
// probes; pass nil for a fixed 0.5 (no probing unless ProbeShare is 0.5).
func New(settings Settings, names []string, rand func() float64) *Table {
	if rand == nil {
		rand = func() float64 { return 0.5 }
	}
	t := &Table{settings: settings.Defaults(), ups: map[string]*Upstream{}, rand: rand}
	t.SetUpstreams(names)
	return t
}

// Settings returns the table's settings, with defaults filled in.
func (t *Table) Settings() Settings { return t.settings }

// SetUpstreams sets the configured upstreams, keeping what is known of those that stay.
func (t *Table) SetUpstreams(names []string) {
	next := make(map[string]*Upstream, len(names))
	for _, n := range names {
		if u, ok := t.ups[n]; ok {
			next[n] = u
		} else {
			next[n] = &Upstream{Name: n}
		}
	}
	t.ups, t.order = next, append([]string(nil), names...)
}

// Restore puts back a persisted upstream's state (ignored when name is not configured).
func (t *Table) Restore(u Upstream) {
	if cur, ok := t.ups[u.Name]; ok {
		*cur = u
		t.head = max(t.head, u.Height)
	}
}

// Get returns a copy of what is known of name.
func (t *Table) Get(name string) (Upstream, bool) {
	u, ok := t.ups[name]
	if !ok {
		return Upstream{}, false
	}
	return *u, true
}

// Blind reports whether no upstream has reported a health check or served a request yet.
func (t *Table) Blind() bool {
	for _, u := range t.ups {
		if !u.ReportedAt.IsZero() || u.Requests > 0 {
			return false
		}
	}
	return true
}

// Names returns the configured upstreams in config order.
func (t *Table) Names() []string { return append([]string(nil), t.order...) }

// Best is the highest height reported by an upstream that is not quarantined for its chain id.
func (t *Table) Best() uint64 {
	var best uint64
	for _, u := range t.ups {
		if !t.wrongChain(u) {
			best = max(best, u.Height)
		}
	}
	return best
}

// Head is the chain's head as served: the highest block ever seen; it never decreases.
func (t *Table) Head() uint64 { return t.head }

// ObserveHead raises the served head to n if n is higher and returns the head.
func (t *Table) ObserveHead(n uint64) uint64 {
	t.head = max(t.head, n)
	return t.head
}

// Report records a health check of name.
func (t *Table) Report(name string, r Report) {
	u, ok := t.ups[name]
	if !ok {
		return
	}
	u.ReportedAt = r.At
	if r.ChainID != 0 {
		u.ChainID = r.ChainID
	}
	if r.Err != retry.OK {
		t.fail(u, r.Err, r.At)
		return
	}
	u.Syncing = r.Syncing
	if r.Height > u.Height || u.HeightMovedAt.IsZero() {
		u.HeightMovedAt = r.At
	}
	if r.Height != 0 {
		u.Height = r.Height
	}
	if !t.wrongChain(u) {
		t.head = max(t.head, u.Height)
	}
	u.Breaker.Success()
}

// Observe records the outcome of a live request to name.
func (t *Table) Observe(name string, class retry.Class, latency time.Duration, at time.Time) {
	u, ok := t.ups[name]
	if !ok {
		return
	}
	u.Requests++
	const alpha = 0.2
	ms := float64(latency) / float64(time.Millisecond)
	if u.LatencyMS == 0 {
		u.LatencyMS = ms
	} else {
		u.LatencyMS += alpha * (ms - u.LatencyMS)
	}
	failed := 0.0
	if retry.Lookup(class).Penalise {
		failed = 1
	}
	u.ErrorRate += alpha * (failed - u.ErrorRate)
	if failed == 1 {
		t.fail(u, class, at)
		return
	}
	u.Breaker.Success()
}

func (t *Table) fail(u *Upstream, class retry.Class, at time.Time) {
	u.LastError, u.LastErrorAt = class, at
	if class == retry.HTTP429 {
		u.CooldownUntil = at.Add(t.settings.CooldownAfter429)
	}
	if retry.Lookup(class).Penalise {
		u.Breaker.Failure(at, t.settings.BreakerFailures, t.settings.BreakerOpenFor)
	}
}

// expectedChainID is the configured chain id, or the id most upstreams report (ties: the smallest).
func (t *Table) expectedChainID() uint64 {
	if t.settings.ExpectedChainID != 0 {
		return t.settings.ExpectedChainID
	}
	votes := map[uint64]int{}
	for _, u := range t.ups {
		if u.ChainID != 0 {
			votes[u.ChainID]++
		}
	}
	var id uint64
	for c, n := range votes {
		if n > votes[id] || (n == votes[id] && c < id) {
			id = c
		}
	}
	return id
}

func (t *Table) wrongChain(u *Upstream) bool {
	want := t.expectedChainID()
	return u.ChainID != 0 && want != 0 && u.ChainID != want
}

// State is name's state at now.
func (t *Table) State(name string, now time.Time) State {
	u, ok := t.ups[name]
	if !ok {
		return Unknown
	}
	return t.state(u, now, t.Best(), t.latestMove())
}

func (t *Table) latestMove() time.Time {
	var latest time.Time
	for _, u := range t.ups {
		if !t.wrongChain(u) && u.HeightMovedAt.After(latest) {
			latest = u.HeightMovedAt
		}
	}
	return latest
}

func (t *Table) state(u *Upstream, now time.Time, best uint64, latestMove time.Time) State {
	switch {
	case t.wrongChain(u):
		return WrongChain
	case u.Syncing:
		return Syncing
	case now.Before(u.CooldownUntil):
		return CoolingDown
	}
	switch u.Breaker.State(now) {
	case BreakerOpen:
		return Failing
	case BreakerHalfOpen:
		return Recovering
	}
	if u.Height == 0 {
		return Unknown
	}
	if best > u.Height+t.settings.MaxLagBlocks {
		return Lagging
	}
	if u.Height < best && latestMove.Sub(u.HeightMovedAt) > t.settings.StaleAfter {
		return Lagging
	}
	return Healthy
}

// candidate is an upstream in line for a request.
type candidate struct {
	u     *Upstream
	state State
	score float64
	index int // config order
}

// Candidates returns the upstreams that may serve a request needing ref, best first. Healthy upstreams come
// first (highest height, then best score, load spread among equals), then those with nothing reported yet; a
// recovering upstream goes first for a ProbeShare of requests, and otherwise last. Quarantined, syncing,
// cooling-down, failing and lagging upstreams are left out. A request for block n goes only to upstreams
// known to have it (or not known at all); if none is, only to those at the best height, whose answer is the truth
// as far as anyone knows.
func (t *Table) Candidates(ref blockref.Ref, now time.Time) []string {
	best, latestMove := t.Best(), t.latestMove()
	var ready, unknown, probes []candidate
	for i, name := range t.order {
		u := t.ups[name]
		c := candidate{u: u, state: t.state(u, now, best, latestMove), index: i, score: score(u)}
		switch c.state {
		case Healthy:
			ready = append(ready, c)
		case Unknown:
			unknown = append(unknown, c)
		case Recovering:
			probes = append(probes, c)
		}
	}
	if ref.Kind == blockref.Number {
		has := func(c candidate) bool { return c.u.Height == 0 || c.u.Height >= ref.Number }
		if filtered := filter(ready, has); len(filtered) > 0 || len(filter(unknown, has)) > 0 {
			ready, unknown, probes = filtered, filter(unknown, has), filter(probes, has)
		} else {
			top := func(c candidate) bool { return c.u.Height == best }
			ready, probes = filter(ready, top), filter(probes, top)
		}
	}
	sort.SliceStable(ready, func(i, j int) bool {
		a, b := ready[i], ready[j]
		// An upstream that failed since its last success goes behind those that did not, whatever its height:
		// a request should not pay for a failure the table already knows of while the breaker counts.
		if fa, fb := a.u.Breaker.Failures > 0, b.u.Breaker.Failures > 0; fa != fb {
			return fb
		}
		if a.u.Height != b.u.Height {
			return a.u.Height > b.u.Height
		}
		return a.score < b.score
	})
	ready = t.spread(ready)
	out := make([]string, 0, len(ready)+len(unknown)+len(probes))
	probeFirst := len(probes) > 0 && t.rand() < t.settings.ProbeShare
	if probeFirst {
		out = append(out, probes[0].u.Name)
		probes = probes[1:]
	}
	for _, group := range [][]candidate{ready, unknown, probes} {
		for _, c := range group {
			out = append(out, c.u.Name)
		}
	}
	return out
}

// Fallback lists, to try after Candidates, the upstreams that are out of rotation but may still answer:
// lagging and syncing ones (highest first), then those cooling down after a 429, then those whose breaker is
// open (soonest to close first). Upstreams on the wrong chain, and those known to be below the block the request
// needs, never serve. Trying these beats failing a request without trying: a lagging node's answer beats none,
// and the table's view can be older than an upstream's recovery.
func (t *Table) Fallback(ref blockref.Ref, now time.Time) []string {
	best, latestMove := t.Best(), t.latestMove()
	rank := map[State]int{Lagging: 0, Syncing: 0, CoolingDown: 1, Failing: 2}
	var cs []candidate
	for i, name := range t.order {
		u := t.ups[name]
		st := t.state(u, now, best, latestMove)
		if ref.Kind == blockref.Number && u.Height != 0 && u.Height < ref.Number {
			continue // known to lack the block
		}
		if _, ok := rank[st]; ok {
			cs = append(cs, candidate{u: u, state: st, index: i})
		}
	}
	sort.SliceStable(cs, func(i, j int) bool {
		a, b := cs[i], cs[j]
		if rank[a.state] != rank[b.state] {
			return rank[a.state] < rank[b.state]
		}
		switch a.state {
		case Failing:
			return a.u.Breaker.OpenUntil.Before(b.u.Breaker.OpenUntil)
		case CoolingDown:
			return a.u.CooldownUntil.Before(b.u.CooldownUntil)
		}
		return a.u.Height > b.u.Height
	})
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.u.Name
	}
	return out
}

// spread rotates the leading run of equals (same height, score within 25% of the first) so that load is shared.
func (t *Table) spread(cs []candidate) []candidate {
	n := 1
	failed := func(c candidate) bool { return c.u.Breaker.Failures > 0 }
	for n < len(cs) && cs[n].u.Height == cs[0].u.Height && failed(cs[n]) == failed(cs[0]) && cs[n].score <= cs[0].score*1.25+1 {
		n++
	}
	if n < 2 {
		return cs
	}
	t.rr++
	k := int(t.rr % uint64(n))
	rotated := append(append([]candidate{}, cs[k:n]...), cs[:k]...)
	return append(rotated, cs[n:]...)
}

// score is lower for better upstreams: latency EWMA (ms) inflated by the error rate.
func score(u *Upstream) float64 { return u.LatencyMS * (1 + 10*u.ErrorRate) }

func filter(cs []candidate, keep func(candidate) bool) []candidate {
	var out []candidate
	for _, c := range cs {
		if keep(c) {
			out = append(out, c)
		}
	}
	return out
}

// Reason explains name's state at now for admin output: why it is out of rotation, or "" when it is in.
func (t *Table) Reason(name string, now time.Time) string {
	u, ok := t.ups[name]
	if !ok {
		return ""
	}
	best, latestMove := t.Best(), t.latestMove()
	switch t.state(u, now, best, latestMove) {
	case WrongChain:
		return fmt.Sprintf("eth_chainId is %d, the chain's is %d: quarantined", u.ChainID, t.expectedChainID())
	case Syncing:
		return "eth_syncing reports a sync in progress"
	case CoolingDown:
		return "answered HTTP 429: no traffic until " + u.CooldownUntil.UTC().Format(time.RFC3339)
	case Failing:
		return fmt.Sprintf("circuit breaker open after %d consecutive failures (last: %s) until %s",
			u.Breaker.Failures, u.LastError, u.Breaker.OpenUntil.UTC().Format(time.RFC3339))
	case Recovering:
		return "circuit breaker half-open: a share of requests probes it"
	case Lagging:
		if best > u.Height+t.settings.MaxLagBlocks {
			return fmt.Sprintf("%d blocks behind the best (at most %d)", best-u.Height, t.settings.MaxLagBlocks)
		}
		return fmt.Sprintf("head has not moved for over %v while others' did", t.settings.StaleAfter)
	}
	return ""
}
