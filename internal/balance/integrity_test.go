package balance

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/evmlb/evmlb/internal/blockref"
	"github.com/evmlb/evmlb/internal/retry"
)

// Issue 8: a head nobody can poison. Each test is one rule of README.md's "How requests are routed".

// An upstream that switches networks is out at its next report, its height stops counting, and it is back once
// it answers the right chain id again.
func TestChainSwitchQuarantinedAndBack(t *testing.T) {
	tb := New(Settings{}, []string{"a", "b", "c"}, nil)
	for _, n := range []string{"a", "b", "c"} {
		report(tb, n, t0, 100, 1)
	}
	at := t0.Add(5 * time.Second)
	report(tb, "a", at, 150, 0xdead) // another network, 50 above
	report(tb, "b", at, 101, 1)
	if s := tb.State("a", at); s != WrongChain {
		t.Fatalf("switched upstream: state %s, want wrong_chain", s)
	}
	if tb.Best() != 101 || tb.Head() != 101 {
		t.Fatalf("best %d head %d: the switched upstream's height counted", tb.Best(), tb.Head())
	}
	if got := tb.Reason("a", at); got != "eth_chainId is 57005, the chain's is 1: quarantined" {
		t.Errorf("reason %q", got)
	}
	back := at.Add(5 * time.Second)
	report(tb, "a", back, 102, 1)
	if s := tb.State("a", back); s != Healthy {
		t.Fatalf("back on the right chain: state %s", s)
	}
}

// Without a configured chain id, a tie keeps the chain id verified before: one of two upstreams switching does
// not switch the chain.
func TestChainIDTieKeepsVerified(t *testing.T) {
	tb := New(Settings{}, []string{"a", "b"}, nil)
	report(tb, "a", t0, 100, 0xdead0) // larger than 0xdead: the old rule (smallest on a tie) would pick 0xdead
	report(tb, "b", t0, 100, 0xdead0)
	report(tb, "a", t0.Add(time.Second), 150, 0xdead)
	if tb.ChainID() != 0xdead0 || tb.State("a", t0.Add(time.Second)) != WrongChain {
		t.Fatalf("chain id %d, a %s", tb.ChainID(), tb.State("a", t0.Add(time.Second)))
	}
	if New(Settings{ExpectedChainID: 5}, []string{"a"}, nil).ChainID() != 5 {
		t.Fatal("a configured chain id is the chain's id before any report")
	}
	if New(Settings{}, []string{"a"}, nil).ChainID() != 0 {
		t.Fatal("no chain id before any report")
	}
}

// One upstream claiming a head far above every other is not believed: not the best, not the head, not in
// rotation; the others stay healthy.
func TestLeadUnconfirmed(t *testing.T) {
	for _, lie := range []uint64{50, 1_000_000} {
		tb := New(Settings{}, []string{"liar", "b", "c"}, nil)
		report(tb, "liar", t0, 100+lie, 1)
		report(tb, "b", t0, 100, 1)
		report(tb, "c", t0, 99, 1)
		if tb.Best() != 100 || tb.Head() != 100 {
			t.Fatalf("+%d: best %d head %d", lie, tb.Best(), tb.Head())
		}
		if s := tb.State("liar", t0); s != Unconfirmed {
			t.Fatalf("+%d: liar %s", lie, s)
		}
		for _, n := range []string{"b", "c"} {
			if s := tb.State(n, t0); s != Healthy {
				t.Fatalf("+%d: %s %s", lie, n, s)
			}
		}
		if got := tb.Candidates(latest(), t0); !reflect.DeepEqual(got, []string{"b", "c"}) {
			t.Fatalf("+%d: candidates %v", lie, got)
		}
		if got := tb.Fallback(latest(), t0); !reflect.DeepEqual(got, []string{"liar"}) {
			t.Fatalf("+%d: fallback %v", lie, got)
		}
		if got := tb.Reason("liar", t0); !strings.Contains(got, "more than 10 blocks above every other") {
			t.Errorf("reason %q", got)
		}
		// Its own eth_blockNumber answer, served as a fallback, is not believed either.
		if got := tb.ServeHead("liar", 100+lie, t0); got != 100 {
			t.Fatalf("+%d: eth_blockNumber from the liar answered %d", lie, got)
		}
	}
}

// A lead is never believed on the claimant's own proof: serving the block of its own head (Proven) proves
// nothing, at once or later.
func TestSelfProvenLeadNotBelieved(t *testing.T) {
	tb := New(Settings{}, []string{"a", "b", "c"}, nil)
	report(tb, "b", t0, 100, 1)
	report(tb, "c", t0, 100, 1)
	tb.Report("a", Report{At: t0, Height: 150, ChainID: 1, Proven: 150})
	if tb.Best() != 100 || tb.State("a", t0) != Unconfirmed || tb.State("b", t0) != Healthy {
		t.Fatalf("self-proven lead: best %d, a %s, b %s", tb.Best(), tb.State("a", t0), tb.State("b", t0))
	}
	// A reset node proves its new head again: a proof above it is forgotten.
	tb.Report("a", Report{At: t0.Add(2 * time.Second), Height: 3, ChainID: 1})
	if u, _ := tb.Get("a"); u.Proven != 0 {
		t.Fatalf("proven %d after a reset to 3", u.Proven)
	}
}

// A lead is believed once another upstream confirms it (comes within max_lag_blocks).
func TestLeadConfirmedByAnother(t *testing.T) {
	tb := New(Settings{}, []string{"a", "b", "c"}, nil)
	report(tb, "a", t0, 120, 1)
	report(tb, "b", t0, 100, 1)
	report(tb, "c", t0, 100, 1)
	if tb.Best() != 100 {
		t.Fatalf("best %d", tb.Best())
	}
	report(tb, "c", t0.Add(time.Second), 112, 1)
	if tb.Best() != 120 || tb.State("a", t0.Add(time.Second)) != Healthy || tb.State("b", t0.Add(time.Second)) != Lagging {
		t.Fatalf("confirmed: best %d, a %s, b %s", tb.Best(), tb.State("a", t0), tb.State("b", t0))
	}
}

// A chain with a single upstream, or a single one left trusted, believes it.
func TestSingleUpstreamTrusted(t *testing.T) {
	tb := New(Settings{}, []string{"a"}, nil)
	report(tb, "a", t0, 1_000_000, 1)
	if tb.Best() != 1_000_000 || tb.State("a", t0) != Healthy {
		t.Fatalf("single upstream: best %d %s", tb.Best(), tb.State("a", t0))
	}
}

// A node stuck behind is no witness against one that keeps moving, once it has stood still for confirm_after.
func TestStuckNodeIsNoWitness(t *testing.T) {
	tb := New(Settings{StaleAfter: 30 * time.Second, ConfirmAfter: 30 * time.Second}, []string{"a", "b"}, nil)
	for i := 0; i <= 18; i++ {
		at := t0.Add(time.Duration(i) * 5 * time.Second)
		report(tb, "a", at, 100+uint64(i), 1)
		report(tb, "b", at, 100, 1) // stuck
	}
	now := t0.Add(90 * time.Second) // a's lead began at 55 s and held 30 s while it moved
	if tb.Best() != 118 || tb.State("a", now) != Healthy || tb.State("b", now) != Lagging {
		t.Fatalf("best %d, a %s, b %s", tb.Best(), tb.State("a", now), tb.State("b", now))
	}
}

// An upstream that cannot serve the head it claimed is not believed, whatever its height, and is back once it
// can.
func TestUnservedHead(t *testing.T) {
	tb := New(Settings{}, []string{"a", "b", "c"}, nil)
	report(tb, "b", t0, 100, 1)
	report(tb, "c", t0, 100, 1)
	tb.Report("a", Report{At: t0, Height: 105, ChainID: 1, Unserved: 105})
	if tb.Best() != 100 || tb.State("a", t0) != Unconfirmed || !strings.Contains(tb.Reason("a", t0), "could not serve block 105") {
		t.Fatalf("best %d, a %s %q", tb.Best(), tb.State("a", t0), tb.Reason("a", t0))
	}
	report(tb, "a", t0.Add(time.Second), 101, 1)
	if tb.Best() != 101 || tb.State("a", t0.Add(time.Second)) != Healthy {
		t.Fatalf("servable again: best %d, a %s", tb.Best(), tb.State("a", t0))
	}
}

// Reads at a tag go first to the upstreams at or above the served head, even when the ranking prefers another.
func TestTaggedReadsAtServedHead(t *testing.T) {
	tb := New(Settings{}, []string{"a", "b", "c"}, nil)
	report(tb, "a", t0, 100, 1)
	report(tb, "b", t0, 100, 1)
	report(tb, "c", t0, 99, 1)
	// a answers eth_blockNumber 101 live: it is recorded and served.
	if got := tb.ServeHead("a", 101, t0); got != 101 {
		t.Fatalf("served %d", got)
	}
	tb.Observe("a", retry.HTTP5xx, time.Millisecond, t0) // one failure: a ranks last for untagged reads
	if got := tb.Candidates(latest(), t0); got[0] != "a" {
		t.Fatalf("latest: %v, want a (the only one at the served head 101) first", got)
	}
	if got := tb.Candidates(blockref.Ref{Kind: blockref.Number, Number: 101}, t0); !reflect.DeepEqual(got, []string{"a"}) {
		t.Fatalf("block 101: %v", got)
	}
	if got := tb.Candidates(blockref.Ref{}, t0); got[len(got)-1] != "a" {
		t.Fatalf("untagged: %v, want a last", got)
	}
}

// The floor yields when every trusted upstream has stayed more than max_lag_blocks below it for stale_after,
// with one note; not before.
func TestFloorYieldsToReality(t *testing.T) {
	tb := New(Settings{StaleAfter: 30 * time.Second}, []string{"a", "b"}, nil)
	report(tb, "a", t0, 100, 1)
	report(tb, "b", t0, 100, 1)
	tb.ServeHead("a", 100, t0)
	// A fresh devnet behind the same endpoints.
	for i := 1; i <= 8; i++ {
		at := t0.Add(time.Duration(i) * 5 * time.Second)
		report(tb, "a", at, uint64(i), 1)
		report(tb, "b", at, uint64(i), 1)
		if want := uint64(100); i <= 7 && tb.Head() != want {
			t.Fatalf("after %ds: head %d, want the floor %d", i*5, tb.Head(), want)
		}
	}
	if tb.Head() != 8 {
		t.Fatalf("after 40s below: head %d, want 8", tb.Head())
	}
	notes := tb.Notes()
	if len(notes) != 1 || !strings.Contains(notes[0], "head floor 100 yields to") {
		t.Fatalf("notes %q", notes)
	}
	if tb.Notes() != nil {
		t.Fatal("notes not drained")
	}
	// Coming back above in between resets the count.
	tb = New(Settings{StaleAfter: 30 * time.Second}, []string{"a"}, nil)
	report(tb, "a", t0, 100, 1)
	tb.ServeHead("a", 100, t0)
	report(tb, "a", t0.Add(20*time.Second), 5, 1)
	report(tb, "a", t0.Add(25*time.Second), 95, 1)
	report(tb, "a", t0.Add(40*time.Second), 5, 1)
	report(tb, "a", t0.Add(60*time.Second), 6, 1)
	if tb.Head() != 100 {
		t.Fatalf("head %d: below only 20s in a row", tb.Head())
	}
}

// A restart on persisted state: the floor comes back for the same chain id and upstreams, and goes away for
// another chain id or set; a reported height of 0 (a new devnet) is a height.
func TestRestoreFloor(t *testing.T) {
	tb := New(Settings{}, []string{"a", "b"}, nil)
	report(tb, "a", t0, 100, 1)
	report(tb, "b", t0, 100, 1)
	tb.ServeHead("a", 100, t0)
	rows := []Upstream{}
	for _, n := range []string{"a", "b"} {
		u, _ := tb.Get(n)
		rows = append(rows, u)
	}
	floor := tb.Floor()
	if floor.Served != 100 || floor.ChainID != 1 || !reflect.DeepEqual(floor.Upstreams, []string{"a", "b"}) {
		t.Fatalf("floor %+v", floor)
	}
	restore := func(s Settings, names []string) *Table {
		tb := New(s, names, nil)
		tb.RestoreAll(rows)
		tb.RestoreFloor(floor)
		return tb
	}
	tb = restore(Settings{}, []string{"b", "a"})
	if tb.Head() != 100 || tb.Notes() != nil {
		t.Fatalf("same chain and set: head %d", tb.Head())
	}
	// The devnet restarted: its heights are real, the floor holds until it yields.
	report(tb, "a", t0.Add(time.Minute), 0, 1)
	report(tb, "b", t0.Add(time.Minute), 0, 1)
	if u, _ := tb.Get("a"); u.Height != 0 || tb.Best() != 0 || tb.Head() != 100 {
		t.Fatalf("height %d best %d head %d", u.Height, tb.Best(), tb.Head())
	}
	tb = restore(Settings{ExpectedChainID: 5}, []string{"a", "b"})
	if tb.Head() != 0 || len(tb.Notes()) != 1 {
		t.Fatalf("another configured chain id: head %d", tb.Head())
	}
	tb = restore(Settings{}, []string{"a", "b", "c"})
	if tb.Head() != 100 || len(tb.Notes()) != 1 { // the rows still count; the served floor is gone
		t.Fatalf("another set: head %d", tb.Head())
	}
	tb.SetUpstreams([]string{"a"})
	if tb.Head() != 100 || len(tb.Notes()) != 0 {
		t.Fatalf("no served floor left to drop: head %d", tb.Head())
	}
	tb.ServeHead("a", 100, t0)
	tb.SetUpstreams([]string{"a", "b"})
	if n := tb.Notes(); len(n) != 1 || !strings.Contains(n[0], "the upstream set changed") {
		t.Fatalf("notes %q", n)
	}
}

// The chain id changing under a floor (no configured id, every upstream now on another) drops it.
func TestChainIDChangeDropsFloor(t *testing.T) {
	tb := New(Settings{}, []string{"a"}, nil)
	report(tb, "a", t0, 100, 1)
	tb.ServeHead("a", 100, t0)
	report(tb, "a", t0.Add(time.Second), 3, 7)
	if tb.Head() != 3 || tb.ChainID() != 7 {
		t.Fatalf("head %d chain id %d", tb.Head(), tb.ChainID())
	}
	if n := tb.Notes(); len(n) != 1 || !strings.Contains(n[0], "the chain id is now 7, was 1") {
		t.Fatalf("notes %q", n)
	}
}

// With nothing verified, eth_blockNumber passes the upstream's answer and records nothing.
func TestServeHeadBlind(t *testing.T) {
	tb := New(Settings{}, []string{"a"}, nil)
	if got := tb.ServeHead("a", 42, t0); got != 42 || tb.Head() != 0 {
		t.Fatalf("blind: answered %d, head %d", got, tb.Head())
	}
}

// A live answer showing an upstream below the served head lowers its height at once: it no longer serves reads
// at the head, and a lower eth_blockNumber it answers is a report too.
func TestBehindLowersHeight(t *testing.T) {
	tb := New(Settings{}, []string{"a", "b", "c"}, nil)
	for _, n := range []string{"a", "b", "c"} {
		report(tb, n, t0, 100, 1)
	}
	if tb.ServeHead("a", 100, t0) != 100 || tb.Served() != 100 {
		t.Fatal("served")
	}
	tb.Behind("a", 50, t0)
	if u, _ := tb.Get("a"); u.Height != 50 || tb.State("a", t0) != Lagging {
		t.Fatalf("a at %d, %s", u.Height, tb.State("a", t0))
	}
	tb.Behind("b", 120, t0) // never raises
	if u, _ := tb.Get("b"); u.Height != 100 {
		t.Fatalf("b at %d", u.Height)
	}
	if got := tb.ServeHead("b", 90, t0); got != 100 {
		t.Fatalf("answered %d", got)
	}
	if u, _ := tb.Get("b"); u.Height != 90 {
		t.Fatalf("b's lower live answer not recorded: %d", u.Height)
	}
}

// Issue 17, point 1: without a configured chain id, two upstreams that start together on two ids leave the chain
// undecided (every upstream quarantined, the reason in admin, one log line), whichever check lands first; an id
// verified once every upstream had reported breaks later ties, an outage does not switch it, and a strict
// majority decides.
func TestChainIDUndecidedAndVerified(t *testing.T) {
	t.Run("together", func(t *testing.T) {
		tb := New(Settings{}, []string{"a", "b"}, nil)
		report(tb, "a", t0, 100, 31337)
		if tb.ChainID() != 31337 || tb.Undecided() {
			t.Fatalf("a alone: chain id %d, undecided %v", tb.ChainID(), tb.Undecided())
		}
		report(tb, "b", t0, 100, 1337)
		if !tb.Undecided() || tb.ChainID() != 0 {
			t.Fatalf("a tie with nothing verified: chain id %d, undecided %v", tb.ChainID(), tb.Undecided())
		}
		for _, n := range []string{"a", "b"} {
			if s := tb.State(n, t0); s != WrongChain {
				t.Errorf("%s: %s, want wrong_chain", n, s)
			}
			if !strings.Contains(tb.Reason(n, t0), "no chain_id configured") {
				t.Errorf("%s: reason %q", n, tb.Reason(n, t0))
			}
		}
		if c := tb.Candidates(latest(), t0); len(c) != 0 {
			t.Errorf("candidates %v while undecided", c)
		}
		if r := tb.UndecidedReason(); !strings.Contains(r, "a: 31337, b: 1337") || !strings.Contains(r, "chain_id") {
			t.Errorf("reason %q", r)
		}
		report(tb, "a", t0.Add(time.Second), 101, 31337)
		if n := tb.Notes(); len(n) != 1 || !strings.Contains(n[0], "chain id undecided") {
			t.Errorf("notes %q, want one line", n)
		}
		report(tb, "b", t0.Add(2*time.Second), 101, 31337) // b now on a's network: decided
		if tb.Undecided() || tb.ChainID() != 31337 {
			t.Fatalf("chain id %d, undecided %v", tb.ChainID(), tb.Undecided())
		}
	})
	t.Run("one first", func(t *testing.T) {
		tb := New(Settings{}, []string{"a", "b"}, nil)
		tb.Report("b", Report{At: t0, Err: retry.Refused})
		report(tb, "a", t0, 100, 31337) // every upstream reported: 31337 is verified
		report(tb, "b", t0.Add(time.Second), 500, 1337)
		if tb.Undecided() || tb.ChainID() != 31337 || tb.State("b", t0.Add(time.Second)) != WrongChain {
			t.Fatalf("chain id %d, undecided %v, b %s", tb.ChainID(), tb.Undecided(), tb.State("b", t0.Add(time.Second)))
		}
		for i := range 10 { // a down: it still votes with the id it reported, and the chain does not switch
			tb.Report("a", Report{At: t0.Add(time.Duration(2+i) * time.Second), Err: retry.Refused})
		}
		if tb.ChainID() != 31337 || tb.State("b", t0.Add(time.Minute)) != WrongChain {
			t.Fatalf("a down: chain id %d, b %s", tb.ChainID(), tb.State("b", t0.Add(time.Minute)))
		}
	})
	t.Run("strict majority", func(t *testing.T) {
		tb := New(Settings{}, []string{"a", "b", "c", "d"}, nil)
		report(tb, "a", t0, 100, 5)
		report(tb, "b", t0, 100, 5)
		report(tb, "c", t0, 100, 6)
		report(tb, "d", t0, 100, 7)
		if !tb.Undecided() { // 5 leads, but 2 of 4 is no majority
			t.Fatalf("chain id %d: a plurality decided", tb.ChainID())
		}
		report(tb, "d", t0, 100, 5)
		if tb.Undecided() || tb.ChainID() != 5 {
			t.Fatalf("3 of 4: chain id %d, undecided %v", tb.ChainID(), tb.Undecided())
		}
	})
	t.Run("configured", func(t *testing.T) {
		tb := New(Settings{ExpectedChainID: 1337}, []string{"a", "b"}, nil)
		report(tb, "a", t0, 100, 31337)
		report(tb, "b", t0, 100, 1337)
		if tb.Undecided() || tb.State("a", t0) != WrongChain || tb.State("b", t0) != Healthy {
			t.Fatalf("undecided %v, a %s, b %s", tb.Undecided(), tb.State("a", t0), tb.State("b", t0))
		}
	})
}
