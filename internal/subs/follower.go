package subs

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/evmlb/evmlb/internal/jsonrpc"
)

// The follower turns the chain's verified head into events. Its State is what the chain's subscription object
// persists between alarms; one step is (Example shows the loop):
//
//	p := NextPlan(&st, head, cfg, len(filters) > 0)
//	if p.Fetch { fetch headers p.From..p.To by number (eth_getBlockByNumber(n, false)) and, when p.Logs,
//	             eth_getLogs with p.LogsParams(filters); then events, report, err := Apply(&st, p, headers, logs, filters, cfg) }
//
// Headers are fetched from the head down, K at a time, and held in State.Pending until they link to the chain
// already emitted (State.Chain): every header is thus checked against the verified head through the parent
// hashes before anything is emitted, a long gap is crossed in steps of K, and a reorg is found by walking back by
// number to the block whose hash the emitted chain holds.

// Config bounds the follower. The zero value of a field means its default.
type Config struct {
	// Depth (N) is the number of emitted blocks the State keeps, and the longest walk back from a head: a reorg
	// deeper, or a gap longer, is reported (Report.Deep, Report.Skipped). Default 128, at most 1024.
	Depth int
	// Step (K) is the number of headers one step fetches. Default 16, at most 128.
	Step int
	// MaxLogBytes bounds the logs the State keeps (default 512 KiB, at most 1 MiB): the logs of the oldest kept
	// blocks are dropped first, and a reorg that removes them can no longer say which logs were removed
	// (Report.LogsLost).
	MaxLogBytes int
}

const (
	defaultDepth       = 128
	maxDepth           = 1024
	defaultStep        = 16
	maxStep            = 128
	defaultMaxLogBytes = 512 << 10
	maxMaxLogBytes     = 1 << 20
	// MaxHeaderBytes bounds one header as fetched: a mainnet header without transactions is about 1.5 KB.
	MaxHeaderBytes = 8 << 10
	// MaxPendingBytes bounds the pending blocks' headers and logs: a walk that would hold more ends as a gap
	// longer than Depth does (Report.Skipped, or Deep).
	MaxPendingBytes = 512 << 10
)

func (c Config) withDefaults() Config {
	clamp := func(v, def, hi int) int {
		switch {
		case v <= 0:
			return def
		case v > hi:
			return hi
		}
		return v
	}
	c.Depth = clamp(c.Depth, defaultDepth, maxDepth)
	c.Step = clamp(c.Step, defaultStep, maxStep)
	c.MaxLogBytes = clamp(c.MaxLogBytes, defaultMaxLogBytes, maxMaxLogBytes)
	return c
}

// Head is the chain's verified head, from its table.
type Head struct {
	Number uint64
	Hash   string
}

// Link is what the follower knows of a block: its number, hash and parent hash (lower-case 0x-hex).
type Link struct {
	Number uint64 `json:"n"`
	Hash   string `json:"h"`
	Parent string `json:"p"`
}

// Block is a block of the State: its link, its header while pending (the newHeads result to emit), and the logs
// kept for it (those that passed a filter active when it was fetched).
type Block struct {
	Link
	Header json.RawMessage   `json:"r,omitempty"`
	Logs   []json.RawMessage `json:"l,omitempty"`
	// NoLogs is set when its logs were not fetched (no logs subscription then) or were dropped for MaxLogBytes.
	NoLogs bool `json:"x,omitempty"`
}

// State is the follower's persisted state. Chain is the canonical chain emitted, ascending and linked, at most
// Depth blocks, headers dropped; Pending the blocks fetched from a head down that do not link to Chain yet,
// ascending and linked, at most Depth blocks and MaxPendingBytes of headers and logs. Its JSON is at most about
// Depth × 2 × 165 bytes of links + MaxLogBytes + MaxPendingBytes: with the defaults about 1.07 MB at worst
// (under the 2 MB a SQLite-backed Durable Object stores in one value), at the largest settings about 1.9 MB; and
// about 21 KB plus the kept logs while the chain is followed block by block (nothing pending).
type State struct {
	Chain   []Block `json:"c,omitempty"`
	Pending []Block `json:"p,omitempty"`
}

// DropPending forgets the blocks fetched and not yet emitted; the next plan starts from the head it is given.
func (s *State) DropPending() { s.Pending = nil }

// Tip is the last block emitted; ok is false before the first.
func (s *State) Tip() (Link, bool) {
	if len(s.Chain) == 0 {
		return Link{}, false
	}
	return s.Chain[len(s.Chain)-1].Link, true
}

// hashAt is the emitted chain's hash at n, or "".
func (s *State) hashAt(n uint64) string {
	if len(s.Chain) == 0 || n < s.Chain[0].Number || n > s.Chain[len(s.Chain)-1].Number {
		return ""
	}
	return s.Chain[n-s.Chain[0].Number].Hash
}

// Plan is one step's fetch: the headers From..To by number, of which To must have the hash ToHash; and, when Logs,
// the logs of those blocks.
type Plan struct {
	Fetch    bool
	From, To uint64
	ToHash   string
	Logs     bool
}

// LogsParams are the params of the eth_getLogs call that fetches the plan's logs: its block range, and the union of
// the filters' addresses when every filter names some (otherwise every log of the range; the follower filters).
func (p Plan) LogsParams(filters []*Filter) json.RawMessage {
	q := struct {
		From    string   `json:"fromBlock"`
		To      string   `json:"toBlock"`
		Address []string `json:"address,omitempty"`
	}{From: hexQuantity(p.From), To: hexQuantity(p.To)}
	seen := map[string]bool{}
	for _, f := range filters {
		if len(f.Addresses) == 0 {
			q.Address = nil
			break
		}
		for _, a := range f.Addresses {
			if !seen[a] {
				seen[a] = true
				q.Address = append(q.Address, a)
			}
		}
	}
	b, _ := json.Marshal([]any{q}) // strings only
	return b
}

// NextPlan is what to fetch next to follow head from st; Fetch is false when there is nothing to do (the head is
// already emitted, or is behind the emitted chain on the same branch: a head going back is waited out, never
// re-emitted). While blocks are pending, it continues their walk down and ignores a head above them until they are
// emitted; a head at or below their top that is not one of them drops them (their branch was left), and the walk
// starts again from it. logs is whether any logs subscription is active.
//
// A walk whose branch is left while the head stays above it gets ErrInconsistent from every upstream (none serves
// that branch any more): after ErrInconsistent from each upstream in turn, the caller calls DropPending.
func NextPlan(st *State, head Head, cfg Config, logs bool) Plan {
	cfg = cfg.withDefaults()
	k := uint64(cfg.Step)
	hash := strings.ToLower(head.Hash)
	if n := len(st.Pending); n > 0 && head.Number <= st.Pending[n-1].Number {
		// A head at or below the pending blocks' top: the walk goes on if the head is one of them, else their
		// branch was left and the walk starts again from this head.
		if i := head.Number - st.Pending[0].Number; head.Number < st.Pending[0].Number || st.Pending[i].Hash != hash {
			st.Pending = nil
		}
	}
	switch {
	case len(st.Pending) > 0:
		p0 := st.Pending[0]
		to := p0.Number - 1
		from := max(sub(to, k-1), st.Chain[0].Number)
		return Plan{Fetch: true, From: from, To: to, ToHash: p0.Parent, Logs: logs}
	case len(st.Chain) == 0:
		return Plan{Fetch: true, From: head.Number, To: head.Number, ToHash: hash, Logs: logs}
	}
	tip, _ := st.Tip()
	low := st.Chain[0].Number
	switch {
	case st.hashAt(head.Number) == hash, head.Number < low:
		return Plan{} // emitted already, or behind what is known: nothing to follow
	case head.Number > tip.Number:
		return Plan{Fetch: true, From: max(tip.Number+1, sub(head.Number, k-1)), To: head.Number, ToHash: hash, Logs: logs}
	default: // a head at or below the tip on another branch
		return Plan{Fetch: true, From: max(low, sub(head.Number, k-1)), To: head.Number, ToHash: hash, Logs: logs}
	}
}

func sub(a, b uint64) uint64 {
	if b > a {
		return 0
	}
	return a - b
}

// Kind is an event's kind.
type Kind uint8

// The kinds of events.
const (
	KindHead Kind = 1 + iota // a newHeads result
	KindLog                  // a log, new or removed
)

// Event is one thing the follower emits, in order: a new canonical block's header, or a log of one.
type Event struct {
	Kind   Kind
	Number uint64
	// Result is the notification's result: the header as geth's newHeads sends it, or the log as the node
	// answered it, with "removed": true when its block left the canonical chain.
	Result  json.RawMessage
	Log     Log
	Removed bool
}

// Report says what one step did beyond its events.
type Report struct {
	// Removed is the number of emitted blocks that left the canonical chain (the reorg's depth); Added the number
	// of blocks emitted.
	Removed, Added int
	// Deep is set when the new branch did not link to any kept block: a reorg deeper than Depth (or the chain
	// rewritten below what the State knows), or a walk that reached Depth or MaxPendingBytes below the tip. The
	// kept blocks at the new blocks' heights were removed; what was below them is not known.
	Deep bool
	// Skipped, when To ≥ From, are heights never emitted: a gap longer than Depth (or MaxPendingBytes of headers)
	// between two steps.
	Skipped struct{ From, To uint64 }
	// LogsLost is set when logs were not known for some removed block (fetched before any logs subscription, or
	// dropped for MaxLogBytes), or dropped from a pending block: those removals or additions are not emitted.
	LogsLost bool
}

// ErrStalePlan is the error of a plan that NextPlan did not make from this State (the State changed since, or the
// plan was built by hand): nothing was applied; plan again.
var ErrStalePlan = errors.New("subs: the plan was not made from this state")

// fits checks that p could have come from NextPlan on st: a fetch whose blocks sit where the walk is.
func (p Plan) fits(st *State) error {
	switch {
	case !p.Fetch || p.To < p.From:
		return ErrStalePlan
	case len(st.Pending) > 0:
		if p0 := st.Pending[0]; p.To+1 != p0.Number || p.ToHash != p0.Parent || p.From < st.Chain[0].Number {
			return ErrStalePlan
		}
	case len(st.Chain) > 0:
		if p.From < st.Chain[0].Number {
			return ErrStalePlan
		}
	}
	return nil
}

// ErrInconsistent is the error of a fetched answer that does not fit the plan or the verified head: the caller
// fetches again, from another upstream.
var ErrInconsistent = errors.New("subs: fetched blocks inconsistent with the verified head")

func inconsistent(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInconsistent, fmt.Sprintf(format, args...))
}

// dropped are the members of eth_getBlockByNumber's answer that geth's newHeads does not send (it sends
// types.Header's JSON, whose members are those of RPCMarshalHeader): the body's and the block's, not the header's.
var dropped = []string{"transactions", "uncles", "withdrawals", "size", "totalDifficulty"}

// headerFields reads one fetched header: its link, and the newHeads result (the dropped members removed; every
// other member kept in its order, so that a chain's own header fields pass through).
func headerFields(raw json.RawMessage) (Link, json.RawMessage, error) {
	if len(raw) > MaxHeaderBytes {
		return Link{}, nil, fmt.Errorf("header of %d bytes, at most %d", len(raw), MaxHeaderBytes)
	}
	ms, err := members(raw)
	if err != nil {
		return Link{}, nil, errors.New("header is not a JSON object")
	}
	var l Link
	var num, hash, parent bool
	keep := ms[:0]
	for _, m := range ms {
		switch m.key {
		case "number":
			l.Number, num = quantity(m.value)
		case "hash":
			var s string
			if s, hash = str(m.value); hash {
				l.Hash, err = hexData(s, 32, "hash")
				hash = err == nil
			}
		case "parentHash":
			var s string
			if s, parent = str(m.value); parent {
				l.Parent, err = hexData(s, 32, "hash")
				parent = err == nil
			}
		}
		if !contains(dropped, m.key) {
			keep = append(keep, m)
		}
	}
	if !num || !hash || !parent {
		return Link{}, nil, errors.New("header without a number, hash or parentHash")
	}
	return l, object(keep), nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Apply takes the answers to p, which NextPlan made from st: headers, the blocks p.From..p.To in order (each an
// eth_getBlockByNumber(n, false) result), and logs, the eth_getLogs result of p.LogsParams (nil when !p.Logs).
// It checks them (numbers, parent links, the top's hash; each log's block), keeps the logs that pass one of
// filters, and either holds the blocks as pending (the walk goes on) or emits: the removed blocks' logs with
// "removed": true, oldest block first and in each block in log order (geth's RemovedLogsEvent order), then for each
// new block in order its header and its logs. On an error st is unchanged.
func Apply(st *State, p Plan, headers []json.RawMessage, logs json.RawMessage, filters []*Filter, cfg Config) ([]Event, Report, error) {
	cfg = cfg.withDefaults()
	var rep Report
	if err := p.fits(st); err != nil {
		return nil, rep, err
	}
	if uint64(len(headers)) != p.To-p.From+1 {
		return nil, rep, inconsistent("%d headers for blocks %d..%d", len(headers), p.From, p.To)
	}
	frag := make([]Block, len(headers))
	byHash := make(map[string]int, len(headers))
	for i, h := range headers {
		if string(h) == "null" {
			return nil, rep, inconsistent("block %d not found", p.From+uint64(i))
		}
		l, res, err := headerFields(h)
		if err != nil {
			return nil, rep, inconsistent("block %d: %v", p.From+uint64(i), err)
		}
		if l.Number != p.From+uint64(i) {
			return nil, rep, inconsistent("block %d answered for %d", l.Number, p.From+uint64(i))
		}
		if i > 0 && l.Parent != frag[i-1].Hash {
			return nil, rep, inconsistent("block %d's parent is not block %d", l.Number, l.Number-1)
		}
		frag[i] = Block{Link: l, Header: res, NoLogs: !p.Logs}
		byHash[l.Hash] = i
	}
	if top := frag[len(frag)-1].Hash; top != strings.ToLower(p.ToHash) {
		return nil, rep, inconsistent("block %d is %s, the verified chain's is %s", p.To, top, p.ToHash)
	}
	if p.Logs {
		elems, ok := jsonrpc.Array(logs)
		if !ok {
			return nil, rep, inconsistent("logs are not a JSON array")
		}
		for _, e := range elems {
			l, err := ParseLog(e)
			if err != nil {
				return nil, rep, inconsistent("%v", err)
			}
			i, ok := byHash[l.Hash]
			if !ok || frag[i].Number != l.Number {
				return nil, rep, inconsistent("a log of block %d %s, not one of the blocks fetched", l.Number, l.Hash)
			}
			for _, f := range filters {
				if f.Match(&l) {
					frag[i].Logs = append(frag[i].Logs, e)
					break
				}
			}
		}
	}
	pending := append(frag, st.Pending...)
	if len(st.Chain) == 0 { // the first step: the head is adopted, nothing is emitted
		st.Chain = strip(pending)
		st.Pending = nil
		trim(st, cfg, &rep)
		return nil, rep, nil
	}
	// Where does the pending branch meet the emitted chain? At the highest pending block the chain also holds, or
	// at the parent of the lowest.
	fork, met := uint64(0), false
	for i := len(pending) - 1; i >= 0; i-- {
		if st.hashAt(pending[i].Number) == pending[i].Hash {
			fork, met = pending[i].Number, true
			pending = pending[i+1:]
			break
		}
	}
	if !met && pending[0].Number > 0 && st.hashAt(pending[0].Number-1) == pending[0].Parent {
		fork, met = pending[0].Number-1, true
	}
	low := st.Chain[0].Number
	tip, _ := st.Tip()
	if !met {
		switch {
		case pending[0].Number <= low: // walked down to the oldest block kept: a reorg deeper than Depth
			rep.Deep = true
		case len(pending) >= cfg.Depth || pendingBytes(pending) > MaxPendingBytes: // a gap longer than Depth
			if pending[0].Number > tip.Number+1 {
				rep.Skipped.From, rep.Skipped.To = tip.Number+1, pending[0].Number-1
			} else {
				rep.Deep = true
			}
		default: // walk on
			st.Pending = pending
			rep.LogsLost = capPending(st, cfg)
			return nil, rep, nil
		}
		fork = sub(pending[0].Number, 1)
	}
	// keep is what stays of the emitted chain under the new blocks, removed what leaves it. Where the new blocks
	// do not link to the chain (deep, skipped), the chain starts again from them, so that it stays contiguous and
	// linked; the blocks they replace at the same heights are removed, those below are forgotten.
	var events []Event
	keep, removed := st.Chain, []Block(nil)
	switch {
	case !met:
		keep = nil
		if pending[0].Number <= tip.Number {
			removed = st.Chain[max(pending[0].Number, low)-low:]
		}
	case fork < tip.Number:
		keep = st.Chain[:fork-low+1]
		removed = st.Chain[len(keep):]
	}
	for _, b := range removed {
		rep.Removed++
		if b.NoLogs {
			rep.LogsLost = true
		}
		for _, raw := range b.Logs {
			l, _ := ParseLog(raw) // parsed when it was kept
			events = append(events, Event{Kind: KindLog, Number: b.Number, Result: setRemoved(raw), Log: l, Removed: true})
		}
	}
	for _, b := range pending {
		rep.Added++
		events = append(events, Event{Kind: KindHead, Number: b.Number, Result: b.Header})
		for _, raw := range b.Logs {
			l, _ := ParseLog(raw)
			events = append(events, Event{Kind: KindLog, Number: b.Number, Result: raw, Log: l})
		}
	}
	st.Chain = append(append([]Block(nil), keep...), strip(pending)...)
	st.Pending = nil
	trim(st, cfg, &rep)
	return events, rep, nil
}

func pendingBytes(blocks []Block) int {
	n := 0
	for i := range blocks {
		n += len(blocks[i].Header) + logBytes(&blocks[i])
	}
	return n
}

// strip is blocks without their headers, which only pending blocks keep.
func strip(blocks []Block) []Block {
	out := make([]Block, len(blocks))
	for i, b := range blocks {
		b.Header = nil
		out[i] = b
	}
	return out
}

func logBytes(b *Block) int {
	n := 0
	for _, l := range b.Logs {
		n += len(l)
	}
	return n
}

// trim keeps the last Depth blocks of the chain and at most MaxLogBytes of their logs, dropping the oldest.
func trim(st *State, cfg Config, rep *Report) {
	if n := len(st.Chain) - cfg.Depth; n > 0 {
		st.Chain = append([]Block(nil), st.Chain[n:]...)
	}
	total := 0
	for i := range st.Chain {
		total += logBytes(&st.Chain[i])
	}
	for i := 0; total > cfg.MaxLogBytes && i < len(st.Chain); i++ {
		total -= logBytes(&st.Chain[i])
		st.Chain[i].Logs, st.Chain[i].NoLogs = nil, true
	}
}

// capPending holds the logs of the chain and the pending blocks to MaxLogBytes: the chain's oldest go first, then
// the highest pending blocks'; it reports whether it dropped any pending block's logs (which then are not emitted).
func capPending(st *State, cfg Config) bool {
	total := 0
	for i := range st.Chain {
		total += logBytes(&st.Chain[i])
	}
	for i := range st.Pending {
		total += logBytes(&st.Pending[i])
	}
	for i := 0; total > cfg.MaxLogBytes && i < len(st.Chain); i++ {
		total -= logBytes(&st.Chain[i])
		st.Chain[i].Logs, st.Chain[i].NoLogs = nil, true
	}
	lost := false
	for i := len(st.Pending) - 1; total > cfg.MaxLogBytes && i >= 0; i-- {
		if len(st.Pending[i].Logs) > 0 {
			total -= logBytes(&st.Pending[i])
			st.Pending[i].Logs, st.Pending[i].NoLogs = nil, true
			lost = true
		}
	}
	return lost
}

// setRemoved is the log with its "removed" member true (added when the node sent none).
func setRemoved(raw json.RawMessage) json.RawMessage {
	ms, err := members(raw)
	if err != nil {
		return raw
	}
	for i := range ms {
		if ms[i].key == "removed" {
			ms[i].value = json.RawMessage("true")
			return object(ms)
		}
	}
	return object(append(ms, member{"removed", json.RawMessage("true")}))
}
