package balance

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strings"
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
	Down        State = "down"         // it never answered a health check and failed since: served as unknown ones are
	WrongChain  State = "wrong_chain"  // quarantined: its chain id differs from the chain's
	Syncing     State = "syncing"      // eth_syncing says it is catching up
	CoolingDown State = "cooling_down" // it answered 429; no traffic until the cool-down ends
	Failing     State = "failing"      // circuit breaker open
	Recovering  State = "recovering"   // circuit breaker half-open: probes only
	Unconfirmed State = "unconfirmed"  // its head is not believed: far above every other's with nobody confirming it, or not servable by itself
	Lagging     State = "lagging"      // too far behind the best, or its head stopped while others moved
)

// States is every state, for output that lists them all (evmlb_upstream_state).
var States = []State{Healthy, Unknown, Down, WrongChain, Syncing, CoolingDown, Failing, Recovering, Unconfirmed, Lagging}

// Report is one health check of an upstream.
type Report struct {
	At      time.Time
	Height  uint64 // the head it answered; meaningful only when Err is retry.OK (0 is a real head: a new devnet)
	ChainID uint64 // 0 when unknown
	Syncing bool
	// Unserved is the head the upstream claimed at its previous check, which it still claims to have reached
	// but could not serve at this one (eth_getBlockTransactionCountByNumber answered null or "not found"); 0
	// when it could, or when it was not asked.
	Unserved uint64
	// Proven is a head the upstream showed it has, by serving its block at this check (the previous head, or
	// on a first check the one it answered); 0 when it was not shown. It proves nothing of a lead: a liar can
	// serve any block it likes.
	Proven uint64
	// Lacks is a block above its head that the chain asked of it (Table.Ask: the head floor) and that it
	// answered null or "not found" for at this check; 0 when it was not asked, or has it.
	Lacks uint64
	// Finalized is the block the upstream answered for the "finalized" tag at this check; 0: none (it answered an
	// error or null for the tag, or block 0, which holds nothing worth caching).
	Finalized uint64
	// Replaced is a block an earlier check of this upstream found finalized that it answered with another hash,
	// or null, at this check: the chain replaced a block the upstream had called final (a devnet, a broken
	// client, a lying provider); 0: none. From an upstream whose height counts, it moves the cache epoch.
	Replaced uint64
	Err      retry.Class // the check's failure class, retry.OK when it succeeded
	Status   int         // the HTTP status of a failed check's answer; 0 when none came
}

// Upstream is what the table knows of one upstream: the table's row. It has no JSON form of its own: the chain
// object stores it (durable's storedRow), ships it to the isolates (protocol.Row) and shows it
// (adminapi.UpstreamRow), each in a form of its own, converted in one place each.
type Upstream struct {
	Name          string
	Height        uint64
	HeightMovedAt time.Time
	ChainID       uint64
	Syncing       bool
	ReportedAt    time.Time
	LastError     retry.Class
	LastErrorAt   time.Time
	CooldownUntil time.Time
	Breaker       Breaker
	LatencyMS     float64 // the moving average (EWMA) of its live latency, in ms
	ErrorRate     float64 // the moving average (EWMA) of its live failures, 0 to 1
	Requests      uint64  // live requests observed
	// HeightAt is when Height was last reported by a successful check (zero: never; Height 0 is then unknown).
	HeightAt time.Time
	// Unserved is the claimed head the last check found it could not serve (Report.Unserved); 0: none.
	Unserved uint64
	// Proven is the highest head its checks found it serving (Report.Proven), shown by admin; it never makes a
	// lead believed (self-served blocks prove nothing).
	Proven uint64
	// LeadSince is when its height became more than max_lag_blocks above every witness's (see leads; zero: it
	// is not), shown by admin.
	LeadSince time.Time
	// LastStatus is the HTTP status of LastError when a health check's answer had one (0: none known).
	LastStatus int
	// Finalized is the finalized block its last successful check reported (Report.Finalized; 0: none). It counts
	// towards the chain's finalized block only while its height counts (Table.Finalized).
	Finalized uint64
	// Caps is what it proved it can and cannot serve (caps.go).
	Caps Caps
}

// known reports whether u's height was ever reported (a height of 0 is a real one once reported).
func (u *Upstream) known() bool { return u.Height > 0 || !u.HeightAt.IsZero() }

// Floor is the part of the chain's head that does not come from current reports: the highest eth_blockNumber the
// balancer answered, with the chain id and upstream set it answered it for. It is persisted by the chain object.
type Floor struct {
	Served    uint64   `json:"served"`
	ChainID   uint64   `json:"chain_id,omitempty"` // the chain's verified chain id (configured or majority)
	Upstreams []string `json:"upstreams,omitempty"`
	// BelowSince is when every trusted upstream went more than max_lag_blocks below Served (zero: they are not).
	BelowSince time.Time `json:"below_since,omitzero"`
}

// A floor is disproved, and yields at once, when every upstream whose height counts is more than max_lag_blocks
// below it and every one of them answered null for its block (Report.Lacks, asked because of Table.Ask). A floor
// restored from storage (Restarted) is held back, not served, until current reports confirm it (a counted height
// within max_lag_blocks of it) or it is disproved or outlives stale_after.

// Table is one chain's routing table. It is not safe for concurrent use: the chain object serialises access.
type Table struct {
	settings Settings
	order    []string // config order: ties keep it
	ups      map[string]*Upstream
	floor    Floor
	rr       uint64 // round-robin counter that spreads load among equals
	rand     func() float64
	now      time.Time // the latest time the table was told of
	notes    []string  // log lines for the chain object (Notes drains them)
	// lacks is, by upstream, the block its last successful check answered null for (Report.Lacks; 0: none).
	// Only the chain object's table gets it; isolates follow the floor it decides.
	lacks map[string]uint64
	// held is a floor restored from storage that no current report has confirmed yet (Restarted): kept in
	// storage (StoredFloor), never served; heldSince is when counted heights were first seen below it.
	held      uint64
	heldSince time.Time
	// given is the chain table's verdict when this table is a copy of it (a Worker isolate's, restored from a
	// snapshot): the chain id and whose heights count are then taken from it, never derived again (Follow).
	given *Verdict
	// undecided is the chain-id decision at the last refresh: upstreams disagree and nothing breaks the tie.
	undecided bool
	// cache is the chain's finality as decided at the last refresh and its cache epoch (see Finalized and
	// CacheEpoch); the chain object persists it (CacheState, RestoreCache).
	cache CacheState
	// lastFinal is the highest finalized block decided in the current epoch (persisted in CacheState while finality
	// is unknown, e.g. after a restart): finality decided below it moves the epoch.
	lastFinal uint64

	// The view derived from the rows by refresh, after every change.
	counted    map[*Upstream]bool // trusted upstreams whose height counts (confirmed)
	trusted    map[*Upstream]bool // on the verified chain, not syncing, breaker closed, head servable, height known
	best       uint64             // the highest counted height
	latestMove time.Time          // the latest HeightMovedAt among counted upstreams
}

// New returns a table of the upstreams names (in config order). rand returns numbers in [0,1) and decides
// probes; pass nil for a fixed 0.5 (no probing unless ProbeShare is 0.5).
func New(settings Settings, names []string, rand func() float64) *Table {
	if rand == nil {
		rand = func() float64 { return 0.5 }
	}
	t := &Table{settings: settings.Defaults(), ups: map[string]*Upstream{}, rand: rand, lacks: map[string]uint64{}}
	t.SetUpstreams(names)
	return t
}

// SetUpstreams sets the configured upstreams, keeping what is known of those that stay. A different set drops
// the served floor: what the old set answered says nothing of the new one (see Floor).
func (t *Table) SetUpstreams(names []string) {
	next := make(map[string]*Upstream, len(names))
	for _, n := range names {
		if u, ok := t.ups[n]; ok {
			next[n] = u
		} else {
			next[n] = &Upstream{Name: n}
		}
	}
	if max(t.floor.Served, t.held) != 0 && !slices.Equal(sorted(names), sorted(t.order)) {
		t.dropFloor("the upstream set changed")
	}
	t.ups, t.order = next, append([]string(nil), names...)
	t.refresh(t.now)
}

// RestoreAll puts back every persisted row at once (a snapshot, or the rows in storage), then works out what
// counts: restoring rows one by one would judge each against a half-restored table (a lead with no witness yet
// loses its LeadSince). Rows of upstreams not configured are ignored.
func (t *Table) RestoreAll(rows []Upstream) {
	for _, u := range rows {
		if cur, ok := t.ups[u.Name]; ok {
			*cur = u
			cur.Caps = u.Caps.clone()
			t.tick(u.ReportedAt)
		}
	}
	t.refresh(t.now)
}

// Floor returns the floor as served: what a snapshot carries. A restored floor not confirmed yet (Restarted) is
// not in it.
func (t *Table) Floor() Floor {
	f := t.floor
	f.Upstreams = sorted(t.order)
	return f
}

// StoredFloor returns the floor to persist: Floor, or the restored floor still held back when that is higher (a
// restart before any report confirms or disproves it keeps it).
func (t *Table) StoredFloor() Floor {
	f := t.Floor()
	f.Served = max(f.Served, t.held)
	return f
}

// Restarted tells the table that its rows and floor were just restored from storage (the chain object loaded):
// nothing they say is current. Every row forgets its height (an upstream's height counts again from its next
// report), and the floor is held back: not served until current reports confirm it (a height that counts within
// max_lag_blocks of it), dropped when they disprove it (see Floor) or stay below it for stale_after. Persisting
// the floor must never make the balancer answer a block no upstream has (a devnet reset while it was stopped).
func (t *Table) Restarted() {
	for _, u := range t.ups {
		u.Height, u.HeightAt, u.HeightMovedAt, u.LeadSince, u.Proven, u.Finalized = 0, time.Time{}, time.Time{}, time.Time{}, 0, 0
	}
	clear(t.lacks)
	t.held, t.heldSince = max(t.held, t.floor.Served), time.Time{}
	t.floor.Served, t.floor.BelowSince = 0, time.Time{}
	t.refresh(t.now)
}

// Ask is the block the chain wants upstream name asked for at its next health check (Report.Lacks): the head
// floor, served or held back, when it is more than max_lag_blocks above the upstream's height; 0: none.
func (t *Table) Ask(name string) uint64 {
	u, ok := t.ups[name]
	if !ok || !u.known() {
		return 0
	}
	if f := max(t.floor.Served, t.held); f > u.Height+t.settings.MaxLagBlocks {
		return f
	}
	return 0
}

// RestoreFloor puts back a persisted floor, after the rows are restored. A floor served for another chain id or
// another set of upstreams is dropped, with a note.
func (t *Table) RestoreFloor(f Floor) {
	want := t.expectedChainID()
	switch {
	case f.ChainID != 0 && want != 0 && f.ChainID != want:
		if f.Served != 0 {
			t.note(fmt.Sprintf("head floor %d dropped: it was served for chain id %d, the chain's is now %d", f.Served, f.ChainID, want))
		}
		f = Floor{}
	case f.Served != 0 && !slices.Equal(f.Upstreams, sorted(t.order)):
		t.note(fmt.Sprintf("head floor %d dropped: the upstream set changed", f.Served))
		f = Floor{ChainID: f.ChainID}
	}
	f.Upstreams = nil
	t.floor = f
	t.refresh(t.now)
}

// Notes returns, and forgets, the table's log lines since the last call (floor resets).
func (t *Table) Notes() []string {
	n := t.notes
	t.notes = nil
	return n
}

func (t *Table) note(s string) { t.notes = append(t.notes, s) }

func (t *Table) dropFloor(reason string) {
	t.note(fmt.Sprintf("head floor %d dropped: %s", max(t.floor.Served, t.held), reason))
	t.floor.Served, t.floor.BelowSince = 0, time.Time{}
	t.held, t.heldSince = 0, time.Time{}
}

// Get returns a copy of what is known of name.
func (t *Table) Get(name string) (Upstream, bool) {
	u, ok := t.ups[name]
	if !ok {
		return Upstream{}, false
	}
	c := *u
	c.Caps = u.Caps.clone()
	return c, true
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

// Now is the latest time the table was told of.
func (t *Table) Now() time.Time { return t.now }

// Best is the highest height that counts: reported by a trusted upstream (on the verified chain id, not syncing,
// breaker not open, able to serve the head it claimed) and not a lead nobody confirms (see leads). 0 when none.
func (t *Table) Best() uint64 { return t.best }

// Head is the chain's head as served: the best height that counts, or the highest eth_blockNumber answered if
// that is higher. eth_blockNumber never answers less, and tagged reads go first to upstreams at or above it.
// It decreases only when the floor yields (see refresh) or is dropped.
func (t *Table) Head() uint64 { return max(t.floor.Served, t.best) }

// ChainID is the chain's chain id (decide): the configured one, else the one a strict majority of the upstreams
// report, else the one verified before; 0 while no upstream has reported one, or while the chain is Undecided.
func (t *Table) ChainID() uint64 { return t.expectedChainID() }

// ServeHead decides what eth_blockNumber answers when upstream name answered n at at, and records it as served.
// A trusted upstream's answer is a fresh report of its head, up (a lead over every other upstream is not
// believed, as for a report) or down (a node gone stale is below the head at once, not at its next check). The
// answer is the head (never less than served before, never a height that does not count); with nothing trusted
// at all, n itself, recorded nowhere.
func (t *Table) ServeHead(name string, n uint64, at time.Time) uint64 {
	t.tick(at)
	if u, ok := t.ups[name]; ok && t.trusted[u] && n != u.Height {
		if n > u.Height {
			u.HeightMovedAt = at
		}
		u.Height, u.HeightAt = n, at
		t.refresh(at)
	}
	head := t.Head()
	if head == 0 && len(t.counted) == 0 {
		return n
	}
	t.floor.Served = head
	return head
}

// Served is the highest eth_blockNumber answered (0: none): reads at "latest" must not see a lower block.
func (t *Table) Served() uint64 { return t.floor.Served }

// KeepServed raises the served floor to n: a Worker isolate's copy keeps what it answered itself when a snapshot
// from the chain object (which learns it at the isolate's next exchange, and may not trust the same upstreams at
// that moment) says less.
func (t *Table) KeepServed(n uint64) {
	if n > t.floor.Served {
		t.floor.Served = n
	}
}

// Behind records that an answer of name showed it below the served head (blockref.Behind): its height is
// lowered to seen (when seen is lower), so that it no longer serves reads at the head until its next check.
func (t *Table) Behind(name string, seen uint64, at time.Time) {
	u, ok := t.ups[name]
	if !ok || seen >= u.Height {
		return
	}
	t.tick(at)
	u.Height, u.HeightAt = seen, at
	t.refresh(at)
}

// Report records a health check of name.
func (t *Table) Report(name string, r Report) {
	u, ok := t.ups[name]
	if !ok {
		return
	}
	t.tick(r.At)
	u.ReportedAt = r.At
	if r.ChainID != 0 {
		u.ChainID = r.ChainID
	}
	if r.Err != retry.OK {
		t.fail(u, r.Err, r.At)
		u.LastStatus = r.Status
		t.refresh(r.At)
		return
	}
	u.Syncing, u.Unserved = r.Syncing, r.Unserved
	t.lacks[name] = r.Lacks
	if r.Proven != 0 || r.Height < u.Proven {
		u.Proven = r.Proven // a node gone below what it proved (a reset) proves it again
	}
	if r.Height != u.Height || u.HeightMovedAt.IsZero() {
		u.HeightMovedAt = r.At
	}
	u.Height, u.HeightAt = r.Height, r.At
	u.Finalized = r.Finalized
	u.Breaker.Success()
	if r.Replaced != 0 {
		t.refreshHead(r.At)
		t.replaced(u, r.Replaced, r.At)
	}
	t.refresh(r.At)
}

// replaced takes u's word that the chain replaced block n, which u had called final: when u's height counts (the
// verified chain id, trusted, confirmed), the cache epoch moves, since answers cached as final may be of a block
// the chain no longer has, and what the table knew of finality is forgotten (every other upstream's finalized
// block, and the highest decided in the epoch), so that it is decided afresh from reports made after the
// replacement. One upstream's word is enough: a move costs cache hits, never a wrong answer (RATIONALE.md). When
// no finalized block was decided in the current epoch (lastFinal 0: another upstream's word already moved it, and
// finality is not decided again yet), nothing was cached as final under it and the others' words came after that
// move: nothing changes, so that one reorg seen by every upstream moves the epoch once.
func (t *Table) replaced(u *Upstream, n uint64, now time.Time) {
	if t.given != nil || !t.counted[u] {
		return
	}
	if t.lastFinal == 0 && t.cache.Finalized == 0 {
		return
	}
	t.MoveCacheEpoch(now, fmt.Sprintf("upstream %s answers another block at %d, which it had called finalized (a reorg past finality): every cached answer is dropped", u.Name, n))
	for _, o := range t.ups {
		if o != u {
			o.Finalized = 0
		}
	}
	t.lastFinal, t.cache.Finalized = 0, 0
}

// Observe records the outcome of a live request to name.
func (t *Table) Observe(name string, class retry.Class, latency time.Duration, at time.Time) {
	t.ObserveN(name, class, latency, 1, at)
}

// ObserveN records n live requests to name that ended alike, latency being their mean (a run an isolate merged,
// protocol.Outcome): as n Observe calls with that latency, in one step.
func (t *Table) ObserveN(name string, class retry.Class, latency time.Duration, n int, at time.Time) {
	u, ok := t.ups[name]
	if !ok || n < 1 {
		return
	}
	t.tick(at)
	u.Requests += uint64(n)
	// Each sample moves the averages by alpha towards it; n equal samples leave (1-alpha)^n of the distance.
	const alpha = 0.2
	keep := math.Pow(1-alpha, float64(n))
	ms := float64(latency) / float64(time.Millisecond)
	if u.LatencyMS == 0 {
		u.LatencyMS = ms
	} else {
		u.LatencyMS = ms + (u.LatencyMS-ms)*keep
	}
	failed := 0.0
	if retry.Lookup(class).Penalise {
		failed = 1
	}
	u.ErrorRate = failed + (u.ErrorRate-failed)*keep
	if failed == 1 {
		for range n {
			t.fail(u, class, at)
		}
		t.refresh(at)
		return
	}
	// A success changes what refresh derives (trust, the head, the floor) only when it closes the breaker: an
	// isolate observes every attempt, and refresh on each was a good part of a request's cost in wasm. Time-driven
	// changes (a lead held long enough, a floor that yields) come with the next report or height.
	if !u.Breaker.OpenUntil.IsZero() {
		u.Breaker.Success()
		t.refresh(at)
		return
	}
	u.Breaker.Success()
}

func (t *Table) fail(u *Upstream, class retry.Class, at time.Time) {
	u.LastError, u.LastErrorAt, u.LastStatus = class, at, 0
	if class == retry.HTTP429 {
		u.CooldownUntil = at.Add(t.settings.CooldownAfter429)
	}
	if retry.Lookup(class).Penalise {
		u.Breaker.Failure(at, t.settings.BreakerFailures, t.settings.BreakerOpenFor)
	}
}

func (t *Table) tick(at time.Time) {
	if at.After(t.now) {
		t.now = at
	}
}

// expectedChainID is the chain's chain id; 0 when no upstream reported one yet, or when the upstreams disagree
// and nothing breaks the tie (Undecided).
func (t *Table) expectedChainID() uint64 {
	id, _ := t.decide()
	return id
}

// decide is the chain-id decision: the configured chain id; else the id reported by a strict majority of the
// upstreams that reported one (an upstream that fails its checks still votes with the id it reported last: an
// outage must not switch the chain); else, on a tie or a split, the id verified before (Floor.ChainID: decided
// once every upstream had reported) when it is among the most reported; else none, and the chain is undecided:
// no answer is served as the truth until chain_id is configured, or the upstreams' ids change. A copy of the
// chain's table takes its verdict as given.
func (t *Table) decide() (id uint64, undecided bool) {
	if t.given != nil {
		return t.given.ChainID, t.given.Undecided
	}
	if t.settings.ExpectedChainID != 0 {
		return t.settings.ExpectedChainID, false
	}
	// Counted without a map: a chain has a handful of upstreams, and this runs at every refresh.
	votes := func(c uint64) int {
		n := 0
		for _, v := range t.ups {
			if v.ChainID == c {
				n++
			}
		}
		return n
	}
	reporting, top := 0, 0
	for _, u := range t.ups {
		if u.ChainID == 0 {
			continue
		}
		reporting++
		if n := votes(u.ChainID); n > top {
			id, top = u.ChainID, n
		}
	}
	switch {
	case reporting == 0:
		return 0, false
	case 2*top > reporting:
		return id, false
	case t.floor.ChainID != 0 && votes(t.floor.ChainID) == top:
		return t.floor.ChainID, false
	}
	return 0, true
}

// allReported reports whether every configured upstream has reported a health check (answered or failed it).
func (t *Table) allReported() bool {
	for _, u := range t.ups {
		if u.ReportedAt.IsZero() && u.ChainID == 0 {
			return false
		}
	}
	return true
}

// Undecided reports whether the upstreams disagree on the chain id with nothing to break the tie (no chain_id
// configured, no id verified before): the chain then answers every request with an error (jsonrpc's
// ErrChainUndecided) rather than serve one side's answers as the truth.
func (t *Table) Undecided() bool {
	_, u := t.decide()
	return u
}

// UndecidedReason says why the chain is undecided, for admin and the log: each upstream's chain id. "" when it
// is not.
func (t *Table) UndecidedReason() string {
	if !t.Undecided() {
		return ""
	}
	var ids []string
	for _, n := range t.order {
		if u := t.ups[n]; u.ChainID != 0 {
			ids = append(ids, fmt.Sprintf("%s: %d", n, u.ChainID))
		}
	}
	return fmt.Sprintf("the upstreams disagree on the chain id (%s) and no chain_id is configured: every request is refused until chain_id is set in UPSTREAM_CONFIG",
		strings.Join(ids, ", "))
}

// Verdict is what a chain's table decided from its rows that a copy of it (a Worker isolate's) must not derive
// again, since the copy lacks the history it was decided on (the id verified before, the time a lead held): the
// chain id, whether it is undecided, and whose heights count. It travels in the snapshot (protocol.Snapshot).
type Verdict struct {
	ChainID   uint64
	Undecided bool
	// Finalized is the chain's finalized block as the table decided it (Table.Finalized); 0 when none is known.
	// CacheEpoch is the chain's cache generation (Table.CacheEpoch). Both are issue 19's (the answer cache).
	Finalized  uint64
	CacheEpoch uint64
	// Rows is each upstream's part: whether its height counts, and the height the decision was made at.
	Rows map[string]RowVerdict
}

// RowVerdict is the chain table's verdict on one upstream.
type RowVerdict struct {
	Counts bool
	Height uint64
}

// Verdict returns the table's verdict, for a snapshot.
func (t *Table) Verdict() Verdict {
	id, undecided := t.decide()
	fin, _ := t.Finalized()
	v := Verdict{ChainID: id, Undecided: undecided, Finalized: fin, CacheEpoch: t.CacheEpoch(), Rows: make(map[string]RowVerdict, len(t.ups))}
	for n, u := range t.ups {
		v.Rows[n] = RowVerdict{Counts: t.counted[u], Height: u.Height}
	}
	return v
}

// Finalized is the chain's finalized block and whether one is known: an answer reading a block at or below it
// may be cached for long (internal/cache). The chain's table decides it at every refresh (decideFinality); a copy
// of it (Follow) takes the chain's as given.
func (t *Table) Finalized() (uint64, bool) {
	if t.given != nil {
		return t.given.Finalized, t.given.Finalized != 0
	}
	return t.cache.Finalized, t.cache.Finalized != 0
}

// CacheEpoch is the chain's cache generation: every cache key holds it, so moving it (a purge, finality going
// back) makes every cached answer of the chain unreachable in both tiers. A copy of the chain's table (Follow)
// takes the chain's as given.
func (t *Table) CacheEpoch() uint64 {
	if t.given != nil {
		return t.given.CacheEpoch
	}
	return t.cache.Epoch
}

// CacheState is the chain's finality and cache epoch as the chain object persists them (balance never stores):
// Epoch, and Finalized, the finalized block last decided in that epoch, so that finality found lower after an
// eviction or restart (a node reset while the object was gone) still moves the epoch.
type CacheState struct {
	Epoch     uint64 `json:"epoch"`
	Finalized uint64 `json:"finalized,omitempty"`
}

// CacheState returns what to persist of the chain's finality and cache epoch: the epoch, and the highest
// finalized block decided in it (also while finality is unknown now).
func (t *Table) CacheState() CacheState {
	return CacheState{Epoch: t.cache.Epoch, Finalized: max(t.lastFinal, t.cache.Finalized)}
}

// RestoreCache puts back a persisted CacheState, or starts the epoch: the chain object passes what it stored, or
// with nothing stored (a new chain, cleared storage, or a version before issue 19) the zero state, whose epoch
// is then made from now (MoveCacheEpoch) so that it is never one an isolate or the edge cache may still hold
// from before storage was cleared. The finalized block is held as the one to compare with, not served: it is
// served again once current reports decide it.
func (t *Table) RestoreCache(c CacheState, now time.Time) {
	t.cache = c
	if c.Epoch == 0 {
		t.MoveCacheEpoch(now, "")
	}
	t.lastFinal, t.cache.Finalized = c.Finalized, 0
	t.refresh(t.now)
}

// MoveCacheEpoch moves the chain's cache epoch, making every answer cached under the old one unreachable, and
// returns the new one: at least one above the old, and the time now in Unix milliseconds when that is higher, so
// that an epoch started again from nothing (cleared storage) never repeats one used before. reason, when not "",
// is logged (Notes).
func (t *Table) MoveCacheEpoch(now time.Time, reason string) uint64 {
	next := t.cache.Epoch + 1
	if ms := now.UnixMilli(); !now.IsZero() && ms > 0 && uint64(ms) > next {
		next = uint64(ms)
	}
	t.cache.Epoch = next
	if reason != "" {
		t.note(fmt.Sprintf("cache epoch moved to %d: %s", next, reason))
	}
	return next
}

// decideFinality decides the chain's finalized block from the rows (the chain's own table; a copy takes it as
// given). Only upstreams whose height counts take part (the verified chain id, trusted, confirmed), each with at
// most its own height. With two or more of them reporting one, it is the second highest they report: the
// highest block that two of them say is finalized, so that no single upstream among several can raise it (nor
// lower it, unless only two report). A chain of one upstream takes its word, as it does for the head. When no
// counted upstream reports the tag, finality_depth (when set) gives the head minus that depth. Never above the
// head. When it falls below the finalized block decided before in this epoch, or the head itself does while
// finality is unknown (a node reset, a devnet restart, the head floor yielding), the epoch moves: answers cached
// as final may be of blocks the chain no longer has.
func (t *Table) decideFinality(now time.Time) {
	if t.given != nil {
		return
	}
	var first, second uint64 // the two highest finalized blocks reported by counted upstreams
	reporters := 0
	for u := range t.counted {
		f := min(u.Finalized, u.Height)
		if f == 0 {
			continue
		}
		reporters++
		switch {
		case f > first:
			first, second = f, first
		case f > second:
			second = f
		}
	}
	var fin uint64
	head := t.Head()
	switch {
	case reporters >= 2:
		fin = second
	case reporters == 1 && len(t.order) == 1:
		fin = first
	case reporters == 0 && t.settings.FinalityDepth != 0 && len(t.counted) > 0 && head > t.settings.FinalityDepth:
		fin = head - t.settings.FinalityDepth
	}
	t.cache.Finalized = fin // never above the head: each word counts up to its own height, and that height counts
	switch {
	case t.lastFinal == 0 || len(t.counted) == 0:
		// nothing decided before, or nothing current to judge by (a restart before any report)
	case fin != 0 && fin < t.lastFinal:
		t.MoveCacheEpoch(now, fmt.Sprintf("the chain's finalized block went back from %d to %d (a node reset, a devnet restart or the head floor yielding): every cached answer is dropped", t.lastFinal, fin))
		t.lastFinal = fin
		return
	case head < t.lastFinal:
		// Finality unknown now, with the head below the block decided final: that block is gone (a devnet
		// restarted below it), and a finality decided again later must not reach what was cached on it.
		t.MoveCacheEpoch(now, fmt.Sprintf("the chain's head %d is below its finalized block %d (a node reset, a devnet restart or the head floor yielding): every cached answer is dropped", head, t.lastFinal))
		t.lastFinal = fin
		return
	}
	t.lastFinal = max(t.lastFinal, fin)
}

// Follow makes t a copy of a chain's table that takes v as given: its chain id, and whether each upstream's
// height counts for as long as that height is the one v was decided at (this isolate's own observations, a head
// an answer showed or one found behind, are judged as the chain's table judges them). Call it before restoring
// the rows (RestoreAll) and the floor.
func (t *Table) Follow(v Verdict) {
	t.given = &v
	t.refresh(t.now)
}

func (t *Table) wrongChain(u *Upstream) bool {
	want, undecided := t.decide()
	return u.ChainID != 0 && (undecided || want != 0 && u.ChainID != want)
}

// refresh derives the view (which heights are trusted and which count, the best, the latest move) from the rows,
// keeps each upstream's LeadSince, and moves the floor: a new verified chain id drops it; when every upstream
// whose height counts is more than max_lag_blocks below it and none has its block (each answered null for it:
// lacks), it yields at once; when they have stayed below it for StaleAfter without that proof, it yields to what
// they report (a node reset, a devnet restart, a deep reorg, a configuration now pointing elsewhere). A floor held
// back after a restart (held) is confirmed, disproved or outlived the same way. now is zero when the table has
// not been told a time yet; nothing time-based moves then.
func (t *Table) refresh(now time.Time) {
	t.refreshHead(now)
	t.decideFinality(now)
}

// refreshHead is refresh's part that derives the view and moves the floor.
func (t *Table) refreshHead(now time.Time) {
	want, undecided := t.decide()
	if undecided != t.undecided && t.given == nil {
		if undecided {
			t.undecided = true
			t.note("chain id undecided: " + t.UndecidedReason())
		} else if t.undecided {
			t.note(fmt.Sprintf("chain id decided: %d", want))
		}
	}
	t.undecided = undecided
	// An id is verified (kept in the floor, and so breaks later ties) once every upstream has reported, so that
	// of two upstreams on two ids that start together, the one whose check happened to land first does not win.
	if want != 0 && want != t.floor.ChainID && (t.floor.ChainID != 0 || t.allReported()) {
		if t.floor.ChainID != 0 && max(t.floor.Served, t.held) != 0 {
			t.dropFloor(fmt.Sprintf("the chain id is now %d, was %d", want, t.floor.ChainID))
		}
		t.floor.ChainID = want
	}
	if t.trusted == nil {
		t.trusted, t.counted = map[*Upstream]bool{}, map[*Upstream]bool{}
	}
	clear(t.trusted)
	for _, u := range t.ups {
		if want != 0 && u.ChainID == want && !u.Syncing && u.Breaker.OpenUntil.IsZero() && u.Unserved == 0 && u.known() {
			t.trusted[u] = true
		}
	}
	clear(t.counted)
	t.best, t.latestMove = 0, time.Time{}
	count := func(u *Upstream) {
		t.counted[u] = true
		t.best = max(t.best, u.Height)
		if u.HeightMovedAt.After(t.latestMove) {
			t.latestMove = u.HeightMovedAt
		}
	}
	for _, u := range t.ups {
		if !t.trusted[u] {
			u.LeadSince = time.Time{}
			continue
		}
		if d, ok := t.given.row(u); ok { // a copy of the chain's table: its verdict at this height
			if d.Counts {
				count(u)
			}
			continue
		}
		if lead, witnesses := t.leads(u, want, now); lead {
			if u.LeadSince.IsZero() && !now.IsZero() {
				u.LeadSince = now
			}
			// A lead nobody confirms counts only once the others stalled under it; never on what u serves itself.
			if !t.stalledUnder(u, witnesses, now) {
				continue
			}
		} else {
			u.LeadSince = time.Time{}
		}
		count(u)
	}
	if len(t.counted) == 0 || now.IsZero() {
		return
	}
	lag := t.settings.MaxLagBlocks
	if t.held != 0 {
		switch {
		case t.best+lag >= t.held:
			t.floor.Served, t.held, t.heldSince = max(t.floor.Served, t.held), 0, time.Time{}
		case t.disproved(t.held):
			t.note(fmt.Sprintf("head floor %d (restored from storage) yields to %d: every upstream whose height counts is more than %d blocks below it and none has block %d (a node reset or devnet restart while the balancer was stopped, or a deep reorg)",
				t.held, t.best, lag, t.held))
			t.held, t.heldSince = 0, time.Time{}
		case t.heldSince.IsZero():
			t.heldSince = now
		case now.Sub(t.heldSince) > t.settings.StaleAfter:
			t.note(fmt.Sprintf("head floor %d (restored from storage) yields to %d: every trusted upstream stayed more than %d blocks below it for over %v (node reset, devnet restart, deep reorg, or endpoints now pointing elsewhere)",
				t.held, t.best, lag, t.settings.StaleAfter))
			t.held, t.heldSince = 0, time.Time{}
		}
	}
	switch {
	case t.floor.Served <= t.best+lag:
		t.floor.BelowSince = time.Time{}
	case t.disproved(t.floor.Served):
		t.note(fmt.Sprintf("head floor %d yields to %d: every upstream whose height counts is more than %d blocks below it and none has block %d (a node reset, a devnet restart or a deep reorg)",
			t.floor.Served, t.best, lag, t.floor.Served))
		t.floor.Served, t.floor.BelowSince = t.best, time.Time{}
	case t.floor.BelowSince.IsZero():
		t.floor.BelowSince = now
	case now.Sub(t.floor.BelowSince) > t.settings.StaleAfter:
		t.note(fmt.Sprintf("head floor %d yields to %d: every trusted upstream stayed more than %d blocks below it for over %v (node reset, devnet restart, deep reorg, or endpoints now pointing elsewhere)",
			t.floor.Served, t.best, lag, t.settings.StaleAfter))
		t.floor.Served, t.floor.BelowSince = t.best, time.Time{}
	}
}

// disproved reports whether every upstream whose height counts answered null for block n at its last check.
func (t *Table) disproved(n uint64) bool {
	for u := range t.counted {
		if t.lacks[u.Name] != n {
			return false
		}
	}
	return len(t.counted) > 0
}

// leads reports whether the trusted upstream u claims a lead that no other upstream confirms: its height is more
// than max_lag_blocks above every witness's; witnesses are those witnesses. A witness is another upstream on the
// chain's id (want), not syncing, with a head it can serve, that is trusted or reported its height less than
// ConfirmAfter ago (a node briefly down still stands against a liar with its last height; one down for longer says
// nothing). A witness within max_lag_blocks confirms the lead (there is none). With no witness, u leads nobody: a
// chain with a single upstream trusts it.
func (t *Table) leads(u *Upstream, want uint64, now time.Time) (bool, []*Upstream) {
	var witnesses []*Upstream
	var top uint64
	for _, v := range t.ups {
		if v == u || v.ChainID != want || v.Syncing || v.Unserved != 0 || !v.known() {
			continue
		}
		if !t.trusted[v] && (now.IsZero() || now.Sub(v.HeightAt) >= t.settings.ConfirmAfter) {
			continue
		}
		witnesses, top = append(witnesses, v), max(top, v.Height)
	}
	return len(witnesses) > 0 && u.Height > top+t.settings.MaxLagBlocks, witnesses
}

// stalledUnder reports whether u's lead over witnesses is believed because they stalled (a chain whose other
// nodes stopped): the lead has held for ConfirmAfter, u's head moved during it, and every witness's head stood
// still for ConfirmAfter before u's last move. So a lead held while the others move in step is never believed,
// however long it holds, and neither is a number that jumped once and stands still; blocks u serves itself prove
// nothing.
func (t *Table) stalledUnder(u *Upstream, witnesses []*Upstream, now time.Time) bool {
	if u.LeadSince.IsZero() || now.Sub(u.LeadSince) < t.settings.ConfirmAfter || !u.HeightMovedAt.After(u.LeadSince) {
		return false
	}
	for _, v := range witnesses {
		if u.HeightMovedAt.Sub(v.HeightMovedAt) < t.settings.ConfirmAfter {
			return false
		}
	}
	return true
}

// State is name's state at now.
func (t *Table) State(name string, now time.Time) State {
	u, ok := t.ups[name]
	if !ok {
		return Unknown
	}
	return t.state(u, now)
}

func (t *Table) state(u *Upstream, now time.Time) State {
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
	if !u.known() && u.Breaker.Failures > 0 {
		return Down
	}
	if !u.known() || u.ChainID == 0 {
		return Unknown
	}
	if u.Unserved != 0 || (t.trusted[u] && !t.counted[u]) {
		return Unconfirmed
	}
	if t.best > u.Height+t.settings.MaxLagBlocks {
		return Lagging
	}
	if u.Height < t.best && t.latestMove.Sub(u.HeightMovedAt) > t.settings.StaleAfter {
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
// cooling-down, failing, unconfirmed and lagging upstreams are left out. A request for block n goes only to
// upstreams known to have it (or not known at all); if none is, only to those at the best height, whose answer
// is the truth as far as anyone knows. A request at a tag (latest, safe, finalized, pending) goes first to the
// upstreams at or above the highest eth_blockNumber the balancer answered (Floor().Served), so that it never sees
// a lower block than that; the others come after them, for when those fail.
func (t *Table) Candidates(ref blockref.Ref, now time.Time) []string {
	var ready, unknown, probes []candidate
	for i, name := range t.order {
		u := t.ups[name]
		c := candidate{u: u, state: t.state(u, now), index: i, score: score(u)}
		switch c.state {
		case Healthy:
			ready = append(ready, c)
		case Unknown, Down:
			unknown = append(unknown, c)
		case Recovering:
			probes = append(probes, c)
		}
	}
	if ref.Kind == blockref.Number {
		has := func(c candidate) bool { return !c.u.known() || c.u.Height >= ref.Number }
		if filtered := filter(ready, has); len(filtered) > 0 || len(filter(unknown, has)) > 0 {
			ready, unknown, probes = filtered, filter(unknown, has), filter(probes, has)
		} else {
			top := func(c candidate) bool { return c.u.Height == t.best }
			ready, probes = filter(ready, top), filter(probes, top)
		}
	}
	served := t.floor.Served
	atHead := func(c candidate) bool { return ref.Kind != blockref.Latest || c.u.Height >= served }
	// slices.SortStableFunc rather than sort.SliceStable: no reflection, which costs on every request in wasm.
	slices.SortStableFunc(ready, func(a, b candidate) int {
		// For a tagged read, upstreams at the served head go before those below it, whatever else.
		if ha, hb := atHead(a), atHead(b); ha != hb {
			return before(ha)
		}
		// An upstream that failed since its last success goes behind those that did not, whatever its height:
		// a request should not pay for a failure the table already knows of while the breaker counts.
		if fa, fb := a.u.Breaker.Failures > 0, b.u.Breaker.Failures > 0; fa != fb {
			return before(fb)
		}
		if a.u.Height != b.u.Height {
			return cmp.Compare(b.u.Height, a.u.Height) // highest first
		}
		return cmp.Compare(a.score, b.score)
	})
	ready = t.spread(ready)
	out := make([]string, 0, len(ready)+len(unknown)+len(probes))
	probeFirst := len(probes) > 0 && atHead(probes[0]) && t.rand() < t.settings.ProbeShare
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
// lagging and syncing ones (highest first), then unconfirmed ones, then those cooling down after a 429, then
// those whose breaker is open (soonest to close first). Upstreams on the wrong chain, and those known to be below
// the block the request needs, never serve. Trying these beats failing a request without trying: a lagging
// node's answer beats none, and the table's view can be older than an upstream's recovery.
func (t *Table) Fallback(ref blockref.Ref, now time.Time) []string {
	var cs []candidate
	for i, name := range t.order {
		u := t.ups[name]
		st := t.state(u, now)
		if ref.Kind == blockref.Number && u.known() && u.Height < ref.Number {
			continue // known to lack the block
		}
		if fallbackRank(st) >= 0 {
			cs = append(cs, candidate{u: u, state: st, index: i})
		}
	}
	if len(cs) == 0 {
		return nil
	}
	slices.SortStableFunc(cs, func(a, b candidate) int {
		if ra, rb := fallbackRank(a.state), fallbackRank(b.state); ra != rb {
			return cmp.Compare(ra, rb)
		}
		switch a.state {
		case Failing:
			return a.u.Breaker.OpenUntil.Compare(b.u.Breaker.OpenUntil)
		case CoolingDown:
			return a.u.CooldownUntil.Compare(b.u.CooldownUntil)
		}
		return cmp.Compare(b.u.Height, a.u.Height) // highest first
	})
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.u.Name
	}
	return out
}

// fallbackRank orders Fallback's states; -1 for a state that never falls back.
func fallbackRank(s State) int {
	switch s {
	case Lagging, Syncing:
		return 0
	case Unconfirmed:
		return 1
	case CoolingDown:
		return 2
	case Failing:
		return 3
	}
	return -1
}

// before is a comparison's result when a and b differ in a yes/no property: -1 when a goes first, else 1.
func before(first bool) int {
	if first {
		return -1
	}
	return 1
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
	switch t.state(u, now) {
	case WrongChain:
		if t.Undecided() {
			return fmt.Sprintf("eth_chainId is %d, and the upstreams disagree on the chain id with no chain_id configured: quarantined until chain_id is set", u.ChainID)
		}
		return fmt.Sprintf("eth_chainId is %d, the chain's is %d: quarantined", u.ChainID, t.expectedChainID())
	case Syncing:
		return "eth_syncing reports a sync in progress"
	case CoolingDown:
		return "answered HTTP 429: no traffic until " + u.CooldownUntil.UTC().Format(time.RFC3339)
	case Down:
		return fmt.Sprintf("never answered a health check: %d consecutive failures (last: %s)", u.Breaker.Failures, lastFailure(u))
	case Failing:
		return fmt.Sprintf("circuit breaker open after %d consecutive failures (last: %s) until %s",
			u.Breaker.Failures, lastFailure(u), u.Breaker.OpenUntil.UTC().Format(time.RFC3339)) + neverAnswered(u)
	case Recovering:
		return "circuit breaker half-open: a share of requests probes it" + neverAnswered(u)
	case Unconfirmed:
		if u.Unserved != 0 {
			return fmt.Sprintf("claimed head %d but could not serve block %d: its height is not believed", u.Unserved, u.Unserved)
		}
		return fmt.Sprintf("head %d is more than %d blocks above every other upstream's and no other upstream confirms its lead: not believed until one comes within %d blocks of it, or the others' heads stand still for %v while it moves",
			u.Height, t.settings.MaxLagBlocks, t.settings.MaxLagBlocks, t.settings.ConfirmAfter)
	case Lagging:
		if t.best > u.Height+t.settings.MaxLagBlocks {
			return fmt.Sprintf("%d blocks behind the best (at most %d)", t.best-u.Height, t.settings.MaxLagBlocks)
		}
		return fmt.Sprintf("head has not moved for over %v while others' did", t.settings.StaleAfter)
	}
	return ""
}

// lastFailure names u's last failure for a reason: the HTTP status when a check's answer had one, else its class
// (a refused connection in words). Nothing of the upstream's URL.
func lastFailure(u *Upstream) string {
	switch {
	case u.LastStatus != 0:
		return fmt.Sprintf("HTTP %d", u.LastStatus)
	case u.LastError == retry.Refused:
		return "connection refused or host not found"
	}
	return string(u.LastError)
}

// neverAnswered is a reason's ending for an upstream out of rotation that never answered a health check: it is
// dead since it was configured, not one that broke.
func neverAnswered(u *Upstream) string {
	if u.known() {
		return ""
	}
	return "; it never answered a health check"
}

// sorted returns a sorted copy of names.
func sorted(names []string) []string {
	out := append([]string(nil), names...)
	slices.Sort(out)
	return out
}

// row is v's verdict on u while u's height is the one v was decided at; false when there is none (v is nil: the
// table is the chain's own) or u's height moved since.
func (v *Verdict) row(u *Upstream) (RowVerdict, bool) {
	if v == nil {
		return RowVerdict{}, false
	}
	d, ok := v.Rows[u.Name]
	return d, ok && d.Height == u.Height
}
