package balance

import (
	"strings"
	"testing"
	"time"
)

// Issue 19 point 2: the chain's finalized block obeys the head's trust rules, and finality going back moves the
// cache epoch.

// final reports a check of name at height with finalized block fin (0: the node lacks the tag).
func final(tb *Table, name string, at time.Time, height, fin uint64) {
	tb.Report(name, Report{At: at, Height: height, ChainID: 1, Finalized: fin})
}

func wantFinal(t *testing.T, tb *Table, want uint64, what string) {
	t.Helper()
	got, ok := tb.Finalized()
	if got != want || ok != (want != 0) {
		t.Errorf("%s: finalized %d (known %v), want %d", what, got, ok, want)
	}
}

// No single upstream among several can raise the chain's finalized block: it takes two that report at least it.
func TestFinalityLiarCannotRaise(t *testing.T) {
	tb := New(Settings{}, []string{"a", "b", "c"}, nil)
	for _, n := range []string{"a", "b", "c"} {
		final(tb, n, t0, 200, 100)
	}
	wantFinal(t, tb, 100, "all at 100")
	final(tb, "c", t0.Add(time.Second), 200, 190) // a liar, or a node ahead of the others
	wantFinal(t, tb, 100, "c alone says 190")
	final(tb, "b", t0.Add(2*time.Second), 200, 150)
	wantFinal(t, tb, 150, "b says 150, c 190")
	// A lone liar saying less cannot lower it either while two others agree.
	final(tb, "a", t0.Add(3*time.Second), 200, 10)
	wantFinal(t, tb, 150, "a says 10")

	// Of two upstreams, the lower word wins.
	tb = New(Settings{}, []string{"a", "b"}, nil)
	final(tb, "a", t0, 200, 100)
	final(tb, "b", t0, 200, 190)
	wantFinal(t, tb, 100, "two upstreams")

	// One upstream reporting the tag among several decides nothing, even with finality_depth set: depth is for
	// chains whose nodes lack the tag.
	tb = New(Settings{FinalityDepth: 10}, []string{"a", "b", "c"}, nil)
	final(tb, "a", t0, 200, 0)
	final(tb, "b", t0, 200, 0)
	final(tb, "c", t0, 200, 190)
	wantFinal(t, tb, 0, "one reporter among three")

	// An upstream whose height does not count (another chain id, a lead nobody confirms) takes no part.
	tb = New(Settings{ExpectedChainID: 1}, []string{"a", "b", "c"}, nil)
	final(tb, "a", t0, 200, 100)
	final(tb, "b", t0, 200, 100)
	tb.Report("c", Report{At: t0, Height: 200, ChainID: 5, Finalized: 190})
	tb.Report("c", Report{At: t0, Height: 200, ChainID: 5, Finalized: 190})
	final(tb, "a", t0, 200, 195)
	wantFinal(t, tb, 100, "a says 195, c on another chain says 190")

	// A chain of one upstream takes its word, as for its head.
	tb = New(Settings{}, []string{"a"}, nil)
	final(tb, "a", t0, 200, 136)
	wantFinal(t, tb, 136, "a single upstream")
}

// The chain's finalized block is never above its head: an upstream's word counts at most up to its own height.
func TestFinalityNeverAboveHead(t *testing.T) {
	tb := New(Settings{}, []string{"a", "b"}, nil)
	final(tb, "a", t0, 100, 150)
	final(tb, "b", t0, 100, 150)
	if got, _ := tb.Finalized(); got > tb.Head() || got != 100 {
		t.Errorf("finalized %d, head %d", got, tb.Head())
	}
	// finality_depth larger than the head: unknown, not a wrapped number.
	tb = New(Settings{FinalityDepth: 500}, []string{"a", "b"}, nil)
	final(tb, "a", t0, 100, 0)
	final(tb, "b", t0, 100, 0)
	wantFinal(t, tb, 0, "depth 500 at head 100")
}

// Chains whose nodes lack the tag take the head minus finality_depth; without it, finality is unknown.
func TestFinalityDepthFallback(t *testing.T) {
	tb := New(Settings{FinalityDepth: 64}, []string{"a", "b"}, nil)
	final(tb, "a", t0, 1000, 0)
	final(tb, "b", t0, 1000, 0)
	wantFinal(t, tb, 1000-64, "depth 64")
	tb.ServeHead("a", 1010, t0.Add(time.Second))
	wantFinal(t, tb, 1010-64, "the head moved")

	tb = New(Settings{}, []string{"a", "b"}, nil)
	final(tb, "a", t0, 1000, 0)
	final(tb, "b", t0, 1000, 0)
	wantFinal(t, tb, 0, "no tag, no depth")
	if tb.Verdict().Finalized != 0 {
		t.Error("the verdict carries a finalized block nobody knows")
	}
}

// When the decided finalized block falls (a node reset, a devnet restart), the cache epoch moves, with a note;
// when it only becomes unknown, or rises, it does not.
func TestFinalityBackMovesEpoch(t *testing.T) {
	tb := New(Settings{}, []string{"a", "b"}, nil)
	tb.RestoreCache(CacheState{}, t0)
	e0 := tb.CacheEpoch()
	if e0 != uint64(t0.UnixMilli()) {
		t.Fatalf("a new chain's epoch %d, want now in ms %d", e0, t0.UnixMilli())
	}
	at := t0.Add(time.Second)
	final(tb, "a", at, 200, 100)
	final(tb, "b", at, 200, 100)
	final(tb, "a", at, 210, 0) // a lost the tag: finality unknown, nothing cached is wrong
	final(tb, "a", at, 210, 110)
	final(tb, "b", at, 210, 110)
	if tb.CacheEpoch() != e0 || len(tb.Notes()) != 0 {
		t.Fatalf("epoch %d (was %d) without finality going back", tb.CacheEpoch(), e0)
	}
	v := tb.Verdict()
	if v.Finalized != 110 || v.CacheEpoch != e0 {
		t.Fatalf("verdict %d/%d", v.Finalized, v.CacheEpoch)
	}
	at = at.Add(time.Second)
	final(tb, "a", at, 220, 50) // a devnet restarted under both, with a far lower finality
	final(tb, "b", at, 220, 50)
	e1 := tb.CacheEpoch()
	if e1 <= e0 {
		t.Fatalf("finality went from 110 to 50: epoch %d, was %d", e1, e0)
	}
	if n := tb.Notes(); len(n) != 1 || !strings.Contains(n[0], "went back from 110 to 50") {
		t.Fatalf("notes %q", n)
	}
	wantFinal(t, tb, 50, "after the reset")
	// The head floor yielding takes finality_depth's finality down with it: the epoch moves again.
	tb = served100(Settings{FinalityDepth: 10})
	wantFinal(t, tb, 90, "depth 10 at 100")
	e := tb.CacheEpoch()
	at = t0.Add(5 * time.Second)
	tb.Report("a", Report{At: at, Height: 2, ChainID: 1, Lacks: 100})
	tb.Report("b", Report{At: at, Height: 2, ChainID: 1, Lacks: 100})
	if tb.Head() != 2 || tb.CacheEpoch() == e {
		t.Fatalf("the floor yielded to %d: epoch %d, was %d", tb.Head(), tb.CacheEpoch(), e)
	}
	wantFinal(t, tb, 0, "depth 10 at 2")
}

// The epoch and the finalized block decided in it survive a restart: finality found lower after it (a reset
// while the chain object was gone) moves the epoch; a fresh start never reuses an epoch (made from the time,
// and always above the last).
func TestCacheEpochPersists(t *testing.T) {
	tb := New(Settings{}, []string{"a", "b"}, nil)
	tb.RestoreCache(CacheState{}, t0)
	final(tb, "a", t0, 200, 100)
	final(tb, "b", t0, 200, 100)
	purged := tb.MoveCacheEpoch(t0, "purged")
	stored := tb.CacheState()
	if stored.Epoch != purged || stored.Finalized != 100 || purged <= uint64(t0.UnixMilli()) {
		t.Fatalf("stored %+v after a purge to %d", stored, purged)
	}
	again := New(Settings{}, []string{"a", "b"}, nil)
	again.RestoreAll([]Upstream{{Name: "a", Height: 200, ChainID: 1, HeightAt: t0, ReportedAt: t0, Finalized: 100},
		{Name: "b", Height: 200, ChainID: 1, HeightAt: t0, ReportedAt: t0, Finalized: 100}})
	again.Restarted()
	again.RestoreCache(stored, t0.Add(-time.Hour)) // a clock behind changes nothing
	if again.CacheEpoch() != purged {
		t.Fatalf("restored epoch %d, want %d", again.CacheEpoch(), purged)
	}
	wantFinal(t, again, 0, "nothing current after a restart")
	at := t0.Add(time.Minute)
	final(again, "a", at, 30, 20)
	final(again, "b", at, 30, 20)
	if again.CacheEpoch() <= purged {
		t.Fatalf("finality 20 after a restart at 100: epoch %d, was %d", again.CacheEpoch(), purged)
	}
	if e := again.MoveCacheEpoch(t0, ""); e != again.CacheState().Epoch || e <= purged {
		t.Fatalf("a move with the clock behind gave %d", e)
	}
}

// A block an upstream had called final that the chain replaced (a reorg past finality: a devnet, a broken client,
// a lying provider) moves the epoch on that upstream's word alone, when its height counts, and finality is decided
// afresh from reports made after it; from an upstream whose height does not count it moves nothing.
func TestFinalityReplacedMovesEpoch(t *testing.T) {
	tb := New(Settings{ExpectedChainID: 1}, []string{"a", "b", "c", "d"}, nil)
	tb.RestoreCache(CacheState{}, t0)
	at := t0.Add(time.Second)
	for _, n := range []string{"a", "b", "c"} {
		final(tb, n, at, 200, 100)
	}
	tb.Report("d", Report{At: at, Height: 200, ChainID: 5, Finalized: 100}) // another chain
	wantFinal(t, tb, 100, "three at 100")
	e0 := tb.CacheEpoch()
	_ = tb.Notes()

	// d is on another chain id; a syncing node's height does not count: neither moves it.
	at = at.Add(time.Second)
	tb.Report("d", Report{At: at, Height: 200, ChainID: 5, Finalized: 100, Replaced: 100})
	tb.Report("c", Report{At: at, Height: 200, ChainID: 1, Syncing: true, Finalized: 100, Replaced: 100})
	// Nor does a failed check.
	tb.Report("b", Report{At: at, Height: 200, ChainID: 1, Finalized: 100, Replaced: 100, Err: "timeout"})
	if tb.CacheEpoch() != e0 || len(tb.Notes()) != 0 {
		t.Fatalf("epoch %d (was %d) on the word of upstreams whose height does not count", tb.CacheEpoch(), e0)
	}
	tb = New(Settings{ExpectedChainID: 1}, []string{"a", "b", "c"}, nil)
	tb.RestoreCache(CacheState{}, t0)
	at = t0.Add(time.Second)
	for _, n := range []string{"a", "b", "c"} {
		final(tb, n, at, 200, 100)
	}
	e0 = tb.CacheEpoch()
	_ = tb.Notes()

	at = at.Add(time.Second)
	tb.Report("a", Report{At: at, Height: 200, ChainID: 1, Finalized: 100, Replaced: 98})
	e1 := tb.CacheEpoch()
	if e1 <= e0 {
		t.Fatalf("a's finalized block 98 was replaced: epoch %d, was %d", e1, e0)
	}
	if n := tb.Notes(); len(n) != 1 || !strings.Contains(n[0], "upstream a ") || !strings.Contains(n[0], " 98,") {
		t.Fatalf("notes %q", n)
	}
	// b's and c's words were of the old branch: finality is unknown until two report again.
	wantFinal(t, tb, 0, "after the replacement, a alone")
	if v := tb.Verdict(); v.CacheEpoch != e1 || v.Finalized != 0 {
		t.Fatalf("verdict %d/%d", v.Finalized, v.CacheEpoch)
	}
	// b finds the same reorg: nothing was decided final since the move, so nothing was cached as final under
	// the new epoch: it stays (one reorg, one move), and b's new word counts.
	at = at.Add(time.Second)
	tb.Report("b", Report{At: at, Height: 200, ChainID: 1, Finalized: 99, Replaced: 98})
	wantFinal(t, tb, 99, "b reports again")
	if tb.CacheEpoch() != e1 || len(tb.Notes()) != 0 {
		t.Fatalf("the same reorg seen by b moved the epoch again: %d, was %d", tb.CacheEpoch(), e1)
	}
	// Once finality is decided again in the new epoch, another replacement moves it again.
	tb.Report("b", Report{At: at, Height: 200, ChainID: 1, Finalized: 99, Replaced: 99})
	e2 := tb.CacheEpoch()
	if e2 <= e1 || len(tb.Notes()) != 1 {
		t.Fatalf("b's finalized block 99 replaced once finality was decided again: epoch %d, was %d", e2, e1)
	}
	e1 = e2
	wantFinal(t, tb, 0, "after b's replacement, b alone")
	final(tb, "a", at, 200, 99)
	wantFinal(t, tb, 99, "b and a report again")
	final(tb, "c", at, 200, 100)
	final(tb, "a", at, 200, 100)
	wantFinal(t, tb, 100, "all report again")
	if tb.CacheEpoch() != e1 || len(tb.Notes()) != 0 {
		t.Fatalf("epoch %d (was %d) moved again without a replacement", tb.CacheEpoch(), e1)
	}

	// A chain of one upstream decides afresh from that same report.
	tb = New(Settings{}, []string{"a"}, nil)
	tb.RestoreCache(CacheState{}, t0)
	final(tb, "a", at, 200, 136)
	e0 = tb.CacheEpoch()
	tb.Report("a", Report{At: at.Add(time.Second), Height: 200, ChainID: 1, Finalized: 136, Replaced: 136})
	if tb.CacheEpoch() <= e0 {
		t.Fatalf("a single upstream's replaced block: epoch %d, was %d", tb.CacheEpoch(), e0)
	}
	wantFinal(t, tb, 136, "a single upstream after the replacement")
}
