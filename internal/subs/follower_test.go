package subs

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// fakeChain is a node's canonical chain: block n at index n, two logs per block (addrA with topic1, addrB with
// topic2), hashes made from a branch label so that two branches differ.
type fakeChain struct {
	blocks []fakeBlock
	pad    int // bytes of extraData in each header (twice as many hex digits)
}

type fakeBlock struct {
	n            uint64
	hash, parent string
	logs         []json.RawMessage
}

func hash32(s string) string {
	h := sha256.Sum256([]byte(s))
	return "0x" + hex.EncodeToString(h[:])
}

func newChain(n int) *fakeChain {
	c := &fakeChain{blocks: []fakeBlock{{n: 0, hash: hash32("genesis"), parent: "0x" + strings.Repeat("0", 64)}}}
	c.mine(n, "a")
	return c
}

func (c *fakeChain) mine(k int, label string) {
	for range k {
		prev := c.blocks[len(c.blocks)-1]
		b := fakeBlock{n: prev.n + 1, parent: prev.hash}
		b.hash = hash32(fmt.Sprintf("%s/%d/%s", label, b.n, prev.hash))
		for i, la := range []struct{ addr, topic string }{{addrA, topic1}, {addrB, topic2}} {
			b.logs = append(b.logs, json.RawMessage(fmt.Sprintf(`{"address":"%s","topics":["%s"],"data":"0x%02x","blockNumber":"%s","transactionHash":"%s","transactionIndex":"0x0","blockHash":"%s","logIndex":"%s","removed":false}`,
				la.addr, la.topic, i, hexQuantity(b.n), hash32("tx"+b.hash), b.hash, hexQuantity(uint64(i)))))
		}
		c.blocks = append(c.blocks, b)
	}
}

// reorg replaces the last depth blocks with length new ones.
func (c *fakeChain) reorg(depth, length int, label string) {
	c.blocks = c.blocks[:len(c.blocks)-depth]
	c.mine(length, label)
}

func (c *fakeChain) head() Head {
	b := c.blocks[len(c.blocks)-1]
	return Head{b.n, b.hash}
}

func (c *fakeChain) at(n uint64) Head { return Head{n, c.blocks[n].hash} }

// header is eth_getBlockByNumber(n, false) as geth answers it.
func (c *fakeChain) header(n uint64) json.RawMessage {
	if n >= uint64(len(c.blocks)) {
		return json.RawMessage("null")
	}
	b := c.blocks[n]
	z := "0x" + strings.Repeat("0", 64)
	return json.RawMessage(fmt.Sprintf(`{"baseFeePerGas":"0x7","blobGasUsed":"0x0","difficulty":"0x0","excessBlobGas":"0x0","extraData":"0x%s","gasLimit":"0x1c9c380","gasUsed":"0x0","hash":"%s","logsBloom":"0x%s","miner":"%s","mixHash":"%s","nonce":"0x0000000000000000","number":"%s","parentBeaconBlockRoot":"%s","parentHash":"%s","receiptsRoot":"%s","requestsHash":"%s","sha3Uncles":"%s","size":"0x25c","stateRoot":"%s","timestamp":"%s","totalDifficulty":"0x0","transactions":["%s"],"transactionsRoot":"%s","uncles":[],"withdrawals":[],"withdrawalsRoot":"%s"}`,
		strings.Repeat("ab", c.pad), b.hash, strings.Repeat("0", 512), addrA, z, hexQuantity(n), z, b.parent, z, z, z, z, hexQuantity(1000+n), hash32("tx"+b.hash), z, z))
}

func (c *fakeChain) logs(from, to uint64) json.RawMessage {
	var all []json.RawMessage
	for n := from; n <= to && n < uint64(len(c.blocks)); n++ {
		all = append(all, c.blocks[n].logs...)
	}
	b, _ := json.Marshal(append([]json.RawMessage{}, all...))
	return b
}

// follower runs the follower against a fakeChain as the wiring will: plan, fetch, apply, persist (the State goes
// through JSON after every step, as through Durable Object storage).
type follower struct {
	t       *testing.T
	st      State
	cfg     Config
	filters []*Filter
	events  []Event
	reports []Report
	steps   int
}

func (f *follower) follow(c *fakeChain, head Head) {
	f.t.Helper()
	for range 1000 {
		p := NextPlan(&f.st, head, f.cfg, len(f.filters) > 0)
		if !p.Fetch {
			return
		}
		var headers []json.RawMessage
		for n := p.From; n <= p.To; n++ {
			headers = append(headers, c.header(n))
		}
		var logs json.RawMessage
		if p.Logs {
			logs = c.logs(p.From, p.To)
		}
		ev, rep, err := Apply(&f.st, p, headers, logs, f.filters, f.cfg)
		if err != nil {
			f.t.Fatalf("step %d (%+v): %v", f.steps, p, err)
		}
		f.steps++
		invariants(f.t, &f.st, f.cfg)
		f.events = append(f.events, ev...)
		f.reports = append(f.reports, rep)
		b, err := json.Marshal(&f.st)
		if err != nil {
			f.t.Fatal(err)
		}
		var back State
		if err := json.Unmarshal(b, &back); err != nil {
			f.t.Fatal(err)
		}
		if b2, _ := json.Marshal(&back); string(b2) != string(b) {
			f.t.Fatalf("State changed through JSON:\n%s\n%s", b, b2)
		}
		f.st = back
	}
	f.t.Fatal("no end to the steps")
}

// invariants: the chain and the pending blocks are each contiguous and linked, within Depth, and the pending ones
// above the chain's oldest block.
func invariants(t *testing.T, st *State, cfg Config) {
	t.Helper()
	cfg = cfg.withDefaults()
	for _, part := range []struct {
		name   string
		blocks []Block
	}{{"chain", st.Chain}, {"pending", st.Pending}} {
		if len(part.blocks) > cfg.Depth {
			t.Fatalf("%s of %d blocks, Depth %d", part.name, len(part.blocks), cfg.Depth)
		}
		for i := 1; i < len(part.blocks); i++ {
			if b, a := part.blocks[i], part.blocks[i-1]; b.Number != a.Number+1 || b.Parent != a.Hash {
				t.Fatalf("%s not contiguous and linked at %d: %+v after %+v", part.name, i, b.Link, a.Link)
			}
		}
	}
	if len(st.Pending) > 0 && (len(st.Chain) == 0 || st.Pending[0].Number <= st.Chain[0].Number) {
		t.Fatalf("pending from %d, chain from %d", st.Pending[0].Number, st.Chain[0].Number)
	}
	if pendingBytes(st.Pending) > MaxPendingBytes {
		t.Fatalf("%d bytes pending", pendingBytes(st.Pending))
	}
}

func (f *follower) take() []Event {
	e := f.events
	f.events = nil
	return e
}

func allLogs() []*Filter { return []*Filter{{}} }

// heads lists the numbers of the head events.
func heads(events []Event) []uint64 {
	var ns []uint64
	for _, e := range events {
		if e.Kind == KindHead {
			ns = append(ns, e.Number)
		}
	}
	return ns
}

// describe is the events as a client sees them, one short word each: h<n>:<hash prefix>, +<block>/<logIndex>,
// -<block>/<logIndex>.
func describe(events []Event) string {
	var s []string
	for _, e := range events {
		switch {
		case e.Kind == KindHead:
			l, _, _ := headerFields(e.Result)
			s = append(s, fmt.Sprintf("h%d:%s", e.Number, l.Hash[2:6]))
		case e.Removed:
			s = append(s, fmt.Sprintf("-%d:%s/%d", e.Number, e.Log.Hash[2:6], e.Log.Index))
		default:
			s = append(s, fmt.Sprintf("+%d:%s/%d", e.Number, e.Log.Hash[2:6], e.Log.Index))
		}
	}
	return strings.Join(s, " ")
}

// gethOrder is what geth emits for a chain moving from old (the blocks that leave it, ascending) to new (those
// that join it, ascending): BlockChain.reorg sends the removed logs oldest block first, each block's logs in
// order (RemovedLogsEvent, "forward order ... for legacy reasons"), then the new blocks' logs; newHeads, which
// geth sends for the new head only, is sent here for every new block before its logs.
func gethOrder(old, new []fakeBlock) []Event {
	var ev []Event
	for _, b := range old {
		for _, raw := range b.logs {
			l, _ := ParseLog(raw)
			ev = append(ev, Event{Kind: KindLog, Number: b.n, Log: l, Removed: true})
		}
	}
	for _, b := range new {
		ev = append(ev, Event{Kind: KindHead, Number: b.n, Result: (&fakeChain{blocks: []fakeBlock{b}}).headerOf(b)})
		for _, raw := range b.logs {
			l, _ := ParseLog(raw)
			ev = append(ev, Event{Kind: KindLog, Number: b.n, Log: l})
		}
	}
	return ev
}

func (c *fakeChain) headerOf(b fakeBlock) json.RawMessage {
	return json.RawMessage(`{"number":"` + hexQuantity(b.n) + `","hash":"` + b.hash + `","parentHash":"` + b.parent + `"}`)
}

// client reconstructs the chain and the set of live logs from the events, as a subscriber does, and fails on an
// event that makes no sense to it (a log removed that it never had, added twice).
type client struct {
	chain map[uint64]string
	logs  map[string]bool
}

func (c *client) apply(t *testing.T, events []Event) {
	t.Helper()
	if c.chain == nil {
		c.chain, c.logs = map[uint64]string{}, map[string]bool{}
	}
	for _, e := range events {
		switch {
		case e.Kind == KindHead:
			l, _, err := headerFields(e.Result)
			if err != nil {
				t.Fatal(err)
			}
			for n := range c.chain {
				if n >= e.Number {
					delete(c.chain, n)
				}
			}
			c.chain[e.Number] = l.Hash
		case e.Removed:
			k := fmt.Sprintf("%s/%d", e.Log.Hash, e.Log.Index)
			if !c.logs[k] {
				t.Fatalf("log %s removed, never added", k)
			}
			delete(c.logs, k)
		default:
			k := fmt.Sprintf("%s/%d", e.Log.Hash, e.Log.Index)
			if c.logs[k] {
				t.Fatalf("log %s added twice", k)
			}
			c.logs[k] = true
		}
	}
}

// equals checks the client's chain and logs against the node's above block from.
func (c *client) equals(t *testing.T, ch *fakeChain, from uint64) {
	t.Helper()
	want := map[string]bool{}
	for _, b := range ch.blocks[from+1:] {
		if c.chain[b.n] != b.hash {
			t.Errorf("client's block %d is %.10s, the node's %.10s", b.n, c.chain[b.n], b.hash)
		}
		for _, raw := range b.logs {
			l, _ := ParseLog(raw)
			want[fmt.Sprintf("%s/%d", l.Hash, l.Index)] = true
		}
	}
	for n := range c.chain {
		if n >= uint64(len(ch.blocks)) {
			t.Errorf("client holds block %d above the node's head", n)
		}
	}
	if fmt.Sprint(c.logs) != fmt.Sprint(want) {
		t.Errorf("client's logs %d, the node's %d", len(c.logs), len(want))
	}
}

func consecutive(t *testing.T, ns []uint64, from, to uint64) {
	t.Helper()
	if uint64(len(ns)) != to-from+1 {
		t.Fatalf("heads %v, want %d..%d each once", ns, from, to)
	}
	for i, n := range ns {
		if n != from+uint64(i) {
			t.Fatalf("heads %v, want %d..%d in order", ns, from, to)
		}
	}
}

// A straight chain seen at irregular looks: one block, five, none (the same head twice), forty (more than a step
// holds), then a head that went back on the same chain: every height once, in order, and each step fetches at
// most Step headers.
func TestFollowStraight(t *testing.T) {
	c := newChain(10)
	f := &follower{t: t, filters: allLogs()}
	f.follow(c, c.head())
	if ev := f.take(); len(ev) != 0 {
		t.Fatalf("the first head is adopted, not emitted: %s", describe(ev))
	}
	var cl client
	for _, k := range []int{1, 5, 0, 40, 2} {
		c.mine(k, "a")
		steps := f.steps
		f.follow(c, c.head())
		f.follow(c, c.head()) // a duplicate look
		if want := (k + defaultStep - 1) / defaultStep; f.steps-steps != want {
			t.Errorf("%d blocks took %d steps, want %d", k, f.steps-steps, want)
		}
	}
	f.follow(c, c.at(30)) // the head went back: nothing
	ev := f.take()
	consecutive(t, heads(ev), 11, 58)
	cl.apply(t, ev)
	cl.equals(t, c, 10)
	if p := NextPlan(&f.st, c.at(57), Config{}, true); p.Fetch {
		t.Errorf("a head behind on the same chain plans %+v", p)
	}
}

// Heads seen out of order and twice, as isolates' snapshots may give them: each height once, in order.
func TestFollowOutOfOrder(t *testing.T) {
	c := newChain(20)
	f := &follower{t: t, filters: allLogs()}
	f.follow(c, c.head())
	c.mine(4, "a")
	for _, n := range []uint64{21, 23, 22, 23, 21, 24, 24} {
		f.follow(c, c.at(n))
	}
	consecutive(t, heads(f.take()), 21, 24)
}

// Reorgs of depth 1 to 3, onto branches as long, shorter and longer: the removed logs then the new branch, in
// geth's order, and the client's chain and logs equal the node's.
func TestFollowReorg(t *testing.T) {
	for depth := 1; depth <= 3; depth++ {
		for _, length := range []int{depth, depth + 1, depth + 5, 1} {
			t.Run(fmt.Sprintf("depth%d/length%d", depth, length), func(t *testing.T) {
				c := newChain(20)
				f := &follower{t: t, filters: allLogs()}
				f.follow(c, c.head())
				c.mine(3, "a")
				f.follow(c, c.head())
				var cl client
				cl.apply(t, f.take())
				old := append([]fakeBlock(nil), c.blocks[len(c.blocks)-depth:]...)
				c.reorg(depth, length, "b")
				f.follow(c, c.head())
				ev := f.take()
				want := gethOrder(old, c.blocks[len(c.blocks)-length:])
				t.Log(describe(ev))
				if describe(ev) != describe(want) {
					t.Errorf("events\n%s\nwant (geth's order)\n%s", describe(ev), describe(want))
				}
				if r := f.reports[len(f.reports)-1]; r.Removed != depth || r.Added != length || r.Deep || r.LogsLost {
					t.Errorf("report %+v", r)
				}
				for _, e := range ev {
					if e.Removed && !strings.Contains(string(e.Result), `"removed":true`) {
						t.Errorf("removed log without removed true: %s", e.Result)
					}
				}
				cl.apply(t, ev)
				cl.equals(t, c, 20)
			})
		}
	}
}

// Two reorgs in a row, the second over blocks the first emitted, and a reorg while the follower was behind.
func TestFollowReorgTwice(t *testing.T) {
	c := newChain(20)
	f := &follower{t: t, filters: allLogs()}
	f.follow(c, c.head())
	var cl client
	c.mine(2, "a")
	f.follow(c, c.head())
	c.reorg(2, 3, "b")
	f.follow(c, c.head())
	c.reorg(2, 2, "c")
	f.follow(c, c.head())
	c.mine(3, "c")
	c.reorg(4, 6, "d") // never seen: the follower knew c's 23 and 24 only
	f.follow(c, c.head())
	cl.apply(t, f.take())
	cl.equals(t, c, 20)
}

// A reorg deeper than Depth: the follower walks down to its oldest kept block, removes every block it kept, emits
// the new branch from there, and says so.
func TestFollowDeepReorg(t *testing.T) {
	c := newChain(30)
	cfg := Config{Depth: 8, Step: 4}
	f := &follower{t: t, cfg: cfg, filters: allLogs()}
	f.follow(c, c.head())
	c.mine(8, "a")
	f.follow(c, c.head())
	f.take()
	c.reorg(12, 12, "b")
	f.follow(c, c.head())
	ev := f.take()
	r := f.reports[len(f.reports)-1]
	if !r.Deep || r.Removed != 8 || r.Added != 8 {
		t.Errorf("report %+v, want deep, 8 removed, 8 added", r)
	}
	consecutive(t, heads(ev), 31, 38)
	removed := 0
	for _, e := range ev {
		if e.Removed {
			removed++
		}
	}
	if removed != 16 {
		t.Errorf("%d logs removed, want the 16 of the 8 blocks kept", removed)
	}
	if len(f.st.Chain) != 8 || f.st.Chain[7].Hash != c.blocks[38].hash {
		t.Errorf("chain after a deep reorg: %d blocks", len(f.st.Chain))
	}
	// It goes on from the new branch.
	c.mine(1, "b")
	f.follow(c, c.head())
	consecutive(t, heads(f.take()), 39, 39)
}

// A reorg below every block kept while fewer than Depth are kept: the walk stops at the oldest.
func TestFollowDeepReorgShortChain(t *testing.T) {
	c := newChain(30)
	f := &follower{t: t, cfg: Config{Depth: 8, Step: 2}, filters: allLogs()}
	f.follow(c, c.head())
	c.mine(4, "a")
	f.follow(c, c.head())
	f.take()
	c.reorg(7, 7, "b")
	f.follow(c, c.head())
	r := f.reports[len(f.reports)-1]
	if !r.Deep || r.Removed != 5 || r.Added != 5 {
		t.Errorf("report %+v, want deep, 5 removed, 5 added", r)
	}
	consecutive(t, heads(f.take()), 30, 34)
}

// A walk whose branch is left: a head at or below its top drops it, and DropPending ends one the upstreams no
// longer serve while the head is above it.
func TestFollowWalkAbandoned(t *testing.T) {
	c := newChain(20)
	f := &follower{t: t, cfg: Config{Step: 2}, filters: allLogs()}
	f.follow(c, c.head())
	var cl client
	c.mine(6, "a") // 21..26: a walk of three steps
	p := NextPlan(&f.st, c.head(), f.cfg, true)
	if _, _, err := Apply(&f.st, p, []json.RawMessage{c.header(25), c.header(26)}, c.logs(25, 26), f.filters, f.cfg); err != nil || len(f.st.Pending) != 2 {
		t.Fatalf("%v, %d pending", err, len(f.st.Pending))
	}
	c.reorg(4, 4, "b") // 23..26 replaced: the pending 25 and 26 are gone
	if p := NextPlan(&f.st, c.head(), f.cfg, true); len(f.st.Pending) != 0 || p.To != 26 || p.ToHash != c.blocks[26].hash {
		t.Fatalf("a head at the pending top on another branch: plan %+v, %d pending", p, len(f.st.Pending))
	}
	// Again, and this time the head moves above the pending blocks onto a branch that left them.
	p = NextPlan(&f.st, c.head(), f.cfg, true)
	if _, _, err := Apply(&f.st, p, []json.RawMessage{c.header(25), c.header(26)}, c.logs(25, 26), f.filters, f.cfg); err != nil {
		t.Fatal(err)
	}
	c.reorg(5, 6, "c") // 22..27
	p = NextPlan(&f.st, c.head(), f.cfg, true)
	var hs []json.RawMessage
	for n := p.From; n <= p.To; n++ {
		hs = append(hs, c.header(n))
	}
	if _, _, err := Apply(&f.st, p, hs, c.logs(p.From, p.To), f.filters, f.cfg); !errors.Is(err, ErrInconsistent) {
		t.Fatalf("the walk of a branch left: %v", err)
	}
	f.st.DropPending()
	f.follow(c, c.head())
	cl.apply(t, f.take())
	cl.equals(t, c, 20)
}

// A gap longer than Depth: the heights the follower cannot reach are reported, the rest emitted in order.
func TestFollowGapLongerThanDepth(t *testing.T) {
	c := newChain(20)
	f := &follower{t: t, cfg: Config{Depth: 8, Step: 4}}
	f.follow(c, c.head())
	c.mine(20, "a")
	f.follow(c, c.head())
	r := f.reports[len(f.reports)-1]
	if r.Skipped.From != 21 || r.Skipped.To != 32 || r.Deep || r.Removed != 0 {
		t.Errorf("report %+v, want 21..32 skipped", r)
	}
	consecutive(t, heads(f.take()), 33, 40)
	if f.steps != 1+2 {
		t.Errorf("%d steps, want 3 (the first head, two walks of 4)", f.steps)
	}
}

// Pending blocks stay within MaxPendingBytes: a walk of large headers ends as a gap does.
func TestFollowPendingBytesBound(t *testing.T) {
	c := newChain(20)
	c.pad = 3000
	f := &follower{t: t}
	f.follow(c, c.head())
	c.mine(100, "a")
	f.follow(c, c.head())
	r := f.reports[len(f.reports)-1]
	b, _ := json.Marshal(&f.st)
	if r.Skipped.From != 21 || r.Skipped.To <= 21 || r.Skipped.To >= 120 {
		t.Errorf("report %+v, want a gap from 21 reported", r)
	}
	consecutive(t, heads(f.take()), r.Skipped.To+1, 120)
	t.Logf("headers of %d bytes: %d heights skipped; the largest State on the way was under %d bytes, now %d", len(c.header(30)), r.Skipped.To-r.Skipped.From+1, MaxPendingBytes+len(b), len(b))
}

// A head that goes back to a lower height on another branch (a reorg onto a shorter chain).
func TestFollowHeadBackOtherBranch(t *testing.T) {
	c := newChain(20)
	f := &follower{t: t, filters: allLogs()}
	f.follow(c, c.head())
	c.mine(5, "a")
	f.follow(c, c.head())
	var cl client
	cl.apply(t, f.take())
	c.reorg(4, 2, "b")
	f.follow(c, c.head())
	ev := f.take()
	if h := heads(ev); fmt.Sprint(h) != "[22 23]" {
		t.Errorf("heads %v, want [22 23]", h)
	}
	cl.apply(t, ev)
	cl.equals(t, c, 20)
}

// Logs of blocks fetched while no logs subscription was active are not known: their removal cannot be emitted,
// and the report says so; a filter keeps only its logs.
func TestFollowLogsKnown(t *testing.T) {
	c := newChain(20)
	f := &follower{t: t}
	f.follow(c, c.head())
	c.mine(2, "a")
	f.follow(c, c.head())
	f.filters = []*Filter{{Addresses: []string{addrB}}}
	c.mine(2, "a")
	f.follow(c, c.head())
	f.take()
	c.reorg(3, 3, "b")
	f.follow(c, c.head())
	ev := f.take()
	r := f.reports[len(f.reports)-1]
	if !r.LogsLost {
		t.Errorf("report %+v: LogsLost not set for block 22", r)
	}
	var got []string
	for _, e := range ev {
		if e.Kind == KindLog {
			got = append(got, fmt.Sprintf("%v%d:%s", e.Removed, e.Number, e.Log.Address[len(e.Log.Address)-2:]))
		}
	}
	if want := "[true23:bb true24:bb false22:bb false23:bb false24:bb]"; fmt.Sprint(got) != want {
		t.Errorf("logs %v, want %s", got, want)
	}
}

// The State's logs stay within MaxLogBytes: the oldest blocks' go first.
func TestFollowLogBytesBound(t *testing.T) {
	c := newChain(10)
	cfg := Config{MaxLogBytes: 2000}
	f := &follower{t: t, cfg: cfg, filters: allLogs()}
	f.follow(c, c.head())
	for range 30 {
		c.mine(1, "a")
		f.follow(c, c.head())
		total := 0
		for i := range f.st.Chain {
			total += logBytes(&f.st.Chain[i])
		}
		if total > 2000 {
			t.Fatalf("%d bytes of logs kept, at most 2000", total)
		}
	}
	last := f.st.Chain[len(f.st.Chain)-1]
	if last.NoLogs || len(last.Logs) != 2 || !f.st.Chain[0].NoLogs {
		t.Errorf("the newest block's logs must be kept and the oldest dropped: %+v / %+v", last.Link, f.st.Chain[0].Link)
	}
	if len(f.st.Chain) != 31 {
		t.Errorf("%d blocks kept", len(f.st.Chain))
	}
	b, _ := json.Marshal(&f.st)
	t.Logf("State: %d blocks, %d bytes of JSON with %d bytes of logs kept", len(f.st.Chain), len(b), cfg.MaxLogBytes)
}

// The State's size at Depth blocks, followed block by block, without logs: the figure the documentation gives.
func TestStateSize(t *testing.T) {
	c := newChain(200)
	f := &follower{t: t}
	f.follow(c, c.at(50))
	for n := uint64(51); n <= 200; n++ {
		f.follow(c, c.at(n))
	}
	b, _ := json.Marshal(&f.st)
	if len(f.st.Chain) != defaultDepth || len(b) > 22_000 {
		t.Errorf("State of %d blocks is %d bytes", len(f.st.Chain), len(b))
	}
	t.Logf("State of %d blocks, no logs: %d bytes", len(f.st.Chain), len(b))
}

// The header of newHeads: what geth's newHeads sends (types.Header's members, which are RPCMarshalHeader's), not
// the block's body nor its size and total difficulty.
func TestNewHeadsResult(t *testing.T) {
	c := newChain(3)
	_, res, err := headerFields(c.header(2))
	if err != nil {
		t.Fatal(err)
	}
	ms, err := members(res)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, m := range ms {
		keys = append(keys, m.key)
	}
	want := "[baseFeePerGas blobGasUsed difficulty excessBlobGas extraData gasLimit gasUsed hash logsBloom miner mixHash nonce number parentBeaconBlockRoot parentHash receiptsRoot requestsHash sha3Uncles stateRoot timestamp transactionsRoot withdrawalsRoot]"
	if fmt.Sprint(keys) != want {
		t.Errorf("newHeads members %v\nwant %s", keys, want)
	}
}

// Answers that do not fit the plan or the verified head are refused, and the State is left as it was.
func TestApplyRefuses(t *testing.T) {
	c := newChain(20)
	f := &follower{t: t, filters: allLogs()}
	f.follow(c, c.head())
	c.mine(3, "a")
	other := newChain(0)
	other.blocks = append([]fakeBlock(nil), c.blocks...)
	other.reorg(1, 1, "z")
	fork := newChain(0)
	fork.blocks = append([]fakeBlock(nil), c.blocks...)
	fork.reorg(2, 2, "y")
	p := NextPlan(&f.st, c.head(), Config{}, true)
	if p.From != 21 || p.To != 23 {
		t.Fatalf("plan %+v", p)
	}
	good := func() ([]json.RawMessage, json.RawMessage) {
		return []json.RawMessage{c.header(21), c.header(22), c.header(23)}, c.logs(21, 23)
	}
	big := c.header(22)
	big = append(big[:len(big)-1], []byte(`,"pad":"`+strings.Repeat("0", MaxHeaderBytes)+`"}`)...)
	for name, change := range map[string]func(h []json.RawMessage, l json.RawMessage) ([]json.RawMessage, json.RawMessage){
		"top not the verified head": func(h []json.RawMessage, l json.RawMessage) ([]json.RawMessage, json.RawMessage) {
			h[2] = other.header(23)
			return h, l
		},
		"parent link broken": func(h []json.RawMessage, l json.RawMessage) ([]json.RawMessage, json.RawMessage) {
			h[1] = fork.header(22)
			return h, l
		},
		"a number not asked": func(h []json.RawMessage, l json.RawMessage) ([]json.RawMessage, json.RawMessage) {
			h[0] = c.header(20)
			return h, l
		},
		"one header fewer": func(h []json.RawMessage, l json.RawMessage) ([]json.RawMessage, json.RawMessage) { return h[1:], l },
		"a block not found": func(h []json.RawMessage, l json.RawMessage) ([]json.RawMessage, json.RawMessage) {
			h[0] = json.RawMessage("null")
			return h, l
		},
		"a header without hash": func(h []json.RawMessage, l json.RawMessage) ([]json.RawMessage, json.RawMessage) {
			h[0] = json.RawMessage(`{"number":"0x15"}`)
			return h, l
		},
		"a header not an object": func(h []json.RawMessage, l json.RawMessage) ([]json.RawMessage, json.RawMessage) {
			h[0] = json.RawMessage(`[1]`)
			return h, l
		},
		"a header too large": func(h []json.RawMessage, l json.RawMessage) ([]json.RawMessage, json.RawMessage) {
			h[1] = big
			return h, l
		},
		"a log of another branch": func(h []json.RawMessage, l json.RawMessage) ([]json.RawMessage, json.RawMessage) {
			return h, fork.logs(22, 23)
		},
		"a log of a block not asked": func(h []json.RawMessage, l json.RawMessage) ([]json.RawMessage, json.RawMessage) {
			return h, c.logs(20, 23)
		},
		"logs not an array": func(h []json.RawMessage, l json.RawMessage) ([]json.RawMessage, json.RawMessage) {
			return h, json.RawMessage(`{}`)
		},
		"a log without a blockNumber": func(h []json.RawMessage, l json.RawMessage) ([]json.RawMessage, json.RawMessage) {
			return h, json.RawMessage(`[{"address":"` + addrA + `"}]`)
		},
		"a log of a fetched block's hash at another number": func(h []json.RawMessage, l json.RawMessage) ([]json.RawMessage, json.RawMessage) {
			return h, json.RawMessage(strings.Replace(string(c.logs(22, 22)), `"blockNumber":"0x16"`, `"blockNumber":"0x15"`, 1))
		},
	} {
		// Each answer is tried without logs too (unless its fault is in the logs), so that a bad header is
		// refused for its own sake, not for the logs that do not fit it.
		for _, logs := range []bool{true, false} {
			before, _ := json.Marshal(&f.st)
			h, l := change(good())
			q := p
			if !logs {
				if strings.Contains(name, "log") {
					continue
				}
				q.Logs, l = false, nil
			}
			_, _, err := Apply(&f.st, q, h, l, f.filters, Config{})
			if !errors.Is(err, ErrInconsistent) {
				t.Errorf("%s (logs %v): %v, want ErrInconsistent", name, logs, err)
			}
			if after, _ := json.Marshal(&f.st); string(after) != string(before) {
				t.Errorf("%s: State changed", name)
			}
		}
	}
	// A plan that was not made from this State is refused as such.
	for name, q := range map[string]Plan{
		"no fetch":        {},
		"below the chain": {Fetch: true, From: 2, To: 23, ToHash: p.ToHash},
		"reversed range":  {Fetch: true, From: 23, To: 21, ToHash: p.ToHash},
	} {
		h, l := good()
		if _, _, err := Apply(&f.st, q, h, l, f.filters, Config{}); !errors.Is(err, ErrStalePlan) {
			t.Errorf("plan %s: %v, want ErrStalePlan", name, err)
		}
	}
	h, l := good()
	if _, _, err := Apply(&f.st, p, h, l, f.filters, Config{}); err != nil {
		t.Fatalf("the good answer: %v", err)
	}
}

// While blocks are pending, only the plan that continues their walk applies.
func TestApplyStalePlanWhilePending(t *testing.T) {
	c := newChain(20)
	cfg := Config{Step: 2}
	f := &follower{t: t, cfg: cfg}
	f.follow(c, c.head())
	c.mine(6, "a")
	p := NextPlan(&f.st, c.head(), cfg, false)
	if _, _, err := Apply(&f.st, p, []json.RawMessage{c.header(25), c.header(26)}, nil, nil, cfg); err != nil {
		t.Fatal(err)
	}
	// The same plan again (a retry after the State moved on) would put 25..26 below 25..26.
	if _, _, err := Apply(&f.st, p, []json.RawMessage{c.header(25), c.header(26)}, nil, nil, cfg); !errors.Is(err, ErrStalePlan) {
		t.Fatalf("a stale plan: %v", err)
	}
	f.follow(c, c.head())
	consecutive(t, heads(f.take()), 21, 26)
}

// The eth_getLogs params of a plan: the range, and the addresses' union only when every filter names some.
func TestLogsParams(t *testing.T) {
	p := Plan{Fetch: true, From: 16, To: 17, Logs: true}
	for _, c := range []struct {
		filters []*Filter
		want    string
	}{
		{[]*Filter{{Addresses: []string{addrA}}, {Addresses: []string{addrB, addrA}}}, `[{"fromBlock":"0x10","toBlock":"0x11","address":["` + addrA + `","` + addrB + `"]}]`},
		{[]*Filter{{Addresses: []string{addrA}}, {}}, `[{"fromBlock":"0x10","toBlock":"0x11"}]`},
		{[]*Filter{{}, {Addresses: []string{addrA}}}, `[{"fromBlock":"0x10","toBlock":"0x11"}]`},
	} {
		if got := string(p.LogsParams(c.filters)); got != c.want {
			t.Errorf("%s, want %s", got, c.want)
		}
	}
}
