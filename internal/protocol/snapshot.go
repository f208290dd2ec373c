package protocol

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/evmlb/evmlb/internal/balance"
	"github.com/evmlb/evmlb/internal/blockref"
	"github.com/evmlb/evmlb/internal/metrics"
	"github.com/evmlb/evmlb/internal/retry"
	"github.com/evmlb/evmlb/internal/stats"
)

// PathExchange is the Chain object's endpoint for Worker isolates: POST an Exchange (what the isolate saw since its
// last one), get back the chain's Snapshot.
const PathExchange = "/exchange"

// Snapshot is a chain's routing table as the Chain object holds it: every configured upstream's row, the head
// served, and the table's verdict (balance.Verdict: the chain id, whether it is undecided, whose heights count),
// which the isolate's copy takes as given rather than derive again. A Worker isolate routes from it
// (internal/proxy); past the snapshot TTL it exchanges for a fresh one. SnapshotOf and Restore are its only
// conversions from and to the table.
type Snapshot struct {
	Rows  []Row         `json:"rows"`
	Floor balance.Floor `json:"floor"`
	// Poison is every isolate's poison requests still refused (internal/proxy): one isolate's finding reaches
	// the others with their next snapshot.
	Poison []PoisonMark `json:"poison,omitempty"`
	// ChainID is the chain's chain id as its table decided it (balance.Table.ChainID); 0 when none is.
	ChainID uint64 `json:"chain_id,omitempty"`
	// Undecided: the upstreams disagree on the chain id and nothing breaks the tie (balance.Table.Undecided).
	Undecided bool `json:"undecided,omitempty"`
	// Finalized and CacheEpoch are the chain's finalized block and cache generation (balance.Verdict).
	Finalized  uint64 `json:"finalized,omitempty"`
	CacheEpoch uint64 `json:"cache_epoch,omitempty"`
}

// Row is an upstream's row of the table as a snapshot carries it: what a Worker isolate's copy of the table routes
// by. It leaves out what only the chain object's table or admin uses (the last failure's class and time, the
// request count): an isolate counts its own from there. Its JSON names are those of the rows admin shows and the
// chain object stores; zero times are left out.
type Row struct {
	Name          string    `json:"name"`
	Height        uint64    `json:"height"`
	HeightAt      time.Time `json:"height_at,omitzero"`
	HeightMovedAt time.Time `json:"height_moved_at,omitzero"`
	ChainID       uint64    `json:"chain_id,omitempty"`
	Syncing       bool      `json:"syncing,omitempty"`
	// ReportedAt moves the isolate's table to the chain's time as it restores (balance.Table.RestoreAll).
	ReportedAt    time.Time `json:"reported_at,omitzero"`
	CooldownUntil time.Time `json:"cooldown_until,omitzero"`
	Breaker       Breaker   `json:"breaker,omitzero"`
	LatencyMS     float64   `json:"latency_ewma_ms,omitempty"`
	ErrorRate     float64   `json:"error_rate_ewma,omitempty"`
	Unserved      uint64    `json:"unserved,omitempty"`
	Proven        uint64    `json:"proven,omitempty"`
	LeadSince     time.Time `json:"lead_since,omitzero"`
	// Counts: the chain's table counts its height (at Height) towards the best.
	Counts bool `json:"counts,omitempty"`
	// Caps is what it proved it can and cannot serve (balance.Caps), so that every isolate routes by it.
	Caps Caps `json:"caps,omitzero"`
}

// Caps is an upstream's balance.Caps in a Row (and in admin's rows).
type Caps struct {
	Archive         bool                 `json:"archive,omitempty"`
	Methods         map[string]time.Time `json:"lacks_methods,omitempty"` // method: until when it is held not offered
	StateBelow      uint64               `json:"lacks_state_below,omitempty"`
	StateBelowUntil time.Time            `json:"lacks_state_until,omitzero"`
	StateFrom       uint64               `json:"has_state_from,omitempty"`
	StateFromUntil  time.Time            `json:"has_state_until,omitzero"`
}

// CapsOf is c in a Row; expired proofs are left out.
func CapsOf(c balance.Caps, now time.Time) Caps {
	out := Caps{Archive: c.Archive}
	for m, until := range c.Methods {
		if now.Before(until) {
			if out.Methods == nil {
				out.Methods = map[string]time.Time{}
			}
			out.Methods[m] = until
		}
	}
	if now.Before(c.StateBelowUntil) {
		out.StateBelow, out.StateBelowUntil = c.StateBelow, c.StateBelowUntil
	}
	if now.Before(c.StateFromUntil) {
		out.StateFrom, out.StateFromUntil = c.StateFrom, c.StateFromUntil
	}
	return out
}

// Balance is c as the table holds it.
func (c Caps) Balance() balance.Caps {
	return balance.Caps{Archive: c.Archive, Methods: c.Methods, StateBelow: c.StateBelow, StateBelowUntil: c.StateBelowUntil,
		StateFrom: c.StateFrom, StateFromUntil: c.StateFromUntil}
}

// Breaker is an upstream's circuit breaker in a Row.
type Breaker struct {
	Failures  int       `json:"consecutive_failures,omitempty"`
	OpenUntil time.Time `json:"open_until,omitzero"`
}

// SnapshotOf is the snapshot of t: its rows in configuration order, its floor and its verdict.
func SnapshotOf(t *balance.Table) Snapshot {
	v := t.Verdict()
	s := Snapshot{Floor: t.Floor(), Rows: make([]Row, 0, len(t.Names())), ChainID: v.ChainID, Undecided: v.Undecided,
		Finalized: v.Finalized, CacheEpoch: v.CacheEpoch}
	for _, n := range t.Names() {
		u, _ := t.Get(n)
		r := rowOf(u)
		r.Counts = v.Rows[n].Counts
		r.Caps = CapsOf(u.Caps, t.Now())
		s.Rows = append(s.Rows, r)
	}
	return s
}

// Restore makes t a copy of the snapshot's table: its verdict taken as given (balance.Table.Follow), then its
// rows and its floor (RestoreAll and RestoreFloor).
func (s Snapshot) Restore(t *balance.Table) {
	rows := make([]balance.Upstream, len(s.Rows))
	v := balance.Verdict{ChainID: s.ChainID, Undecided: s.Undecided, Finalized: s.Finalized, CacheEpoch: s.CacheEpoch, Rows: make(map[string]balance.RowVerdict, len(s.Rows))}
	for i, r := range s.Rows {
		rows[i] = r.upstream()
		v.Rows[r.Name] = balance.RowVerdict{Counts: r.Counts, Height: r.Height}
	}
	t.Follow(v)
	t.RestoreAll(rows)
	t.RestoreFloor(s.Floor)
}

func rowOf(u balance.Upstream) Row {
	return Row{
		Name: u.Name, Height: u.Height, HeightAt: u.HeightAt, HeightMovedAt: u.HeightMovedAt, ChainID: u.ChainID,
		Syncing: u.Syncing, ReportedAt: u.ReportedAt, CooldownUntil: u.CooldownUntil,
		Breaker:   Breaker{Failures: u.Breaker.Failures, OpenUntil: u.Breaker.OpenUntil},
		LatencyMS: u.LatencyMS, ErrorRate: u.ErrorRate, Unserved: u.Unserved, Proven: u.Proven, LeadSince: u.LeadSince,
		Caps: CapsOf(u.Caps, time.Time{}), // SnapshotOf leaves out the expired proofs
	}
}

func (r Row) upstream() balance.Upstream {
	return balance.Upstream{
		Name: r.Name, Height: r.Height, HeightAt: r.HeightAt, HeightMovedAt: r.HeightMovedAt, ChainID: r.ChainID,
		Syncing: r.Syncing, ReportedAt: r.ReportedAt, CooldownUntil: r.CooldownUntil,
		Breaker:   balance.Breaker{Failures: r.Breaker.Failures, OpenUntil: r.Breaker.OpenUntil},
		LatencyMS: r.LatencyMS, ErrorRate: r.ErrorRate, Unserved: r.Unserved, Proven: r.Proven, LeadSince: r.LeadSince,
		Caps: r.Caps.Balance(),
	}
}

// Outcome is how one attempt of a Worker at one upstream ended, or (N > 1) a run of N successful attempts at it
// with no other outcome of that upstream between them: LatencyUS is then their mean and At the last one's time.
// An isolate merges its successes so that a report holds a few entries per upstream, not one per request: the
// chain object takes reports from every isolate, and applying each attempt one by one cost it CPU in proportion
// to the whole deployment's traffic.
type Outcome struct {
	Upstream  string      `json:"u"`
	Class     retry.Class `json:"c,omitempty"` // retry.OK is ""
	LatencyUS int64       `json:"l"`
	At        int64       `json:"t"`           // Unix milliseconds
	N         int         `json:"n,omitempty"` // attempts in the run; 0 means 1
}

// Count is the number of attempts o stands for.
func (o Outcome) Count() int { return max(o.N, 1) }

// mergeWindow bounds how far back AddOutcome and AddSeen look for an upstream's latest entry: a request pays for
// the look, and in a storm of another upstream's failures an entry further back is simply not merged into.
const mergeWindow = 64

// AddOutcome appends o to the report's outcomes, merging a success into the latest entry of its upstream when
// that entry is a run of successes too.
func (ex *Exchange) AddOutcome(o Outcome) {
	if o.Class == retry.OK {
		for i := len(ex.Outcomes) - 1; i >= max(0, len(ex.Outcomes)-mergeWindow); i-- {
			e := &ex.Outcomes[i]
			if e.Upstream != o.Upstream {
				continue
			}
			if e.Class == retry.OK {
				n := int64(e.Count())
				e.LatencyUS = (e.LatencyUS*n + o.LatencyUS*int64(o.Count())) / (n + int64(o.Count()))
				e.N, e.At = int(n)+o.Count(), max(e.At, o.At)
				return
			}
			break
		}
	}
	ex.Outcomes = append(ex.Outcomes, o)
}

// AddSeen appends a height seen to the report, replacing the latest entry of its upstream when both are heads
// it answered and the new one is not lower (a later, higher head says all the earlier one did).
func (ex *Exchange) AddSeen(h Seen) {
	if !h.Behind {
		for i := len(ex.Seen) - 1; i >= max(0, len(ex.Seen)-mergeWindow); i-- {
			e := &ex.Seen[i]
			if e.Upstream != h.Upstream {
				continue
			}
			if !e.Behind && h.Height >= e.Height {
				*e = h
				return
			}
			break
		}
	}
	ex.Seen = append(ex.Seen, h)
}

// Seen is a height an answer showed of an upstream: an eth_blockNumber it answered, or (Behind) a block read that
// showed it below the chain's served head. The chain object applies them as the isolate did
// (balance.Table.ServeHead and Behind).
type Seen struct {
	Upstream string `json:"u"`
	Height   uint64 `json:"h"`
	Behind   bool   `json:"b,omitempty"`
	At       int64  `json:"t"` // Unix milliseconds
}

// Exchange is what a Worker isolate reports to a chain: its attempts' outcomes and the heights its answers
// showed, each in order (at most MaxOutcomes each; Dropped counts those left out), per-method counts per
// upstream, and the Prometheus counts.
type Exchange struct {
	Outcomes []Outcome                           `json:"outcomes,omitempty"`
	Seen     []Seen                              `json:"seen,omitempty"`
	Dropped  int                                 `json:"dropped,omitempty"`
	Methods  map[string]map[string]stats.Counter `json:"methods,omitempty"`
	// Metrics are the isolate's Prometheus counts of the chain since its last exchange (internal/metrics).
	Metrics *metrics.Chain `json:"metrics,omitempty"`
	// Poison are the poison requests the isolate found since its last exchange.
	Poison []PoisonMark `json:"poison,omitempty"`
	// Learned are the answers that taught the isolate's table something of an upstream's capabilities
	// (balance.Table.Learn said it changed), in order, at most MaxLearned (the latest kept).
	Learned []Learned `json:"learned,omitempty"`
}

// Learned is an answer that proved something of what an upstream can serve: the arguments of balance.Table.Learn.
type Learned struct {
	Upstream string        `json:"u"`
	Method   string        `json:"m"`
	Kind     blockref.Kind `json:"k,omitempty"`
	Block    uint64        `json:"b,omitempty"`
	Class    retry.Class   `json:"c,omitempty"`
	Lack     retry.Lack    `json:"l,omitempty"`
	At       int64         `json:"t"` // Unix milliseconds
}

// MaxLearned bounds the Learned of one Exchange.
const MaxLearned = 256

// AddLearned appends l, keeping the latest MaxLearned.
func (ex *Exchange) AddLearned(l Learned) {
	ex.Learned = append(ex.Learned, l)
	if len(ex.Learned) > MaxLearned {
		ex.Learned = append(ex.Learned[:0], ex.Learned[len(ex.Learned)-MaxLearned:]...)
	}
}

// Apply applies l to t, as the chain object and the isolate's next copy do.
func (l Learned) Apply(t *balance.Table) bool {
	return t.Learn(l.Upstream, l.Method, blockref.Ref{Kind: l.Kind, Number: l.Block}, l.Class, l.Lack, time.UnixMilli(l.At))
}

// PoisonMark is a poison request (retry.Poison): its calls' fingerprint (internal/proxy) and until when they are
// refused without an attempt.
type PoisonMark struct {
	FP    uint64 `json:"fp,string"` // a string: JSON numbers past 2^53 do not survive every reader
	Until int64  `json:"until"`     // Unix milliseconds
}

// MaxPoison bounds the poison marks a chain (object or isolate) keeps; past it the one that ends first goes.
const MaxPoison = 256

// AddPoison puts marks into m (fingerprint → until, Unix ms), dropping those ended at now and, past MaxPoison,
// those that end first; a fingerprint keeps its later end.
func AddPoison(m map[uint64]int64, marks []PoisonMark, now time.Time) {
	ms := now.UnixMilli()
	for _, k := range marks {
		if k.Until > ms && k.Until > m[k.FP] {
			m[k.FP] = k.Until
		}
	}
	for fp, until := range m {
		if until <= ms {
			delete(m, fp)
		}
	}
	for len(m) > MaxPoison {
		var first uint64
		var at int64
		for fp, until := range m {
			if at == 0 || until < at {
				first, at = fp, until
			}
		}
		delete(m, first)
	}
}

// PoisonList is m's marks that have not ended at now.
func PoisonList(m map[uint64]int64, now time.Time) []PoisonMark {
	var out []PoisonMark
	for fp, until := range m {
		if until > now.UnixMilli() {
			out = append(out, PoisonMark{FP: fp, Until: until})
		}
	}
	return out
}

// MaxOutcomes bounds the outcomes of one Exchange: an isolate under load keeps the latest.
const MaxOutcomes = 1024

// Exchange sends ex to the chain's object and returns its snapshot.
func (c Client) Exchange(ctx context.Context, chain string, ex Exchange) (Snapshot, error) {
	body, err := json.Marshal(ex)
	if err != nil {
		return Snapshot{}, err
	}
	var s Snapshot
	err = c.Chain(ctx, chain, http.MethodPost, PathExchange, body, &s)
	return s, err
}

// OutcomeOf makes the Outcome of an attempt.
func OutcomeOf(up string, class retry.Class, latency time.Duration, at time.Time) Outcome {
	return Outcome{Upstream: up, Class: class, LatencyUS: latency.Microseconds(), At: at.UnixMilli()}
}
