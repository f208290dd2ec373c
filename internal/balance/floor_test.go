package balance

import (
	"strings"
	"testing"
	"time"
)

// Issue 17 point 3: a floor yields as soon as it is disproved, and a persisted floor never makes the balancer
// answer a block that no upstream has.

// served100 is a table of upstreams a and b at 100 that answered eth_blockNumber 100.
func served100(s Settings) *Table {
	tb := New(s, []string{"a", "b"}, nil)
	report(tb, "a", t0, 100, 1)
	report(tb, "b", t0, 100, 1)
	tb.ServeHead("a", 100, t0)
	return tb
}

// Every counted upstream far below the floor and answering null for its block: the floor yields at once (not
// after stale_after), with one note giving the reason. One of them having it, or not asked, is no proof.
func TestFloorYieldsWhenDisproved(t *testing.T) {
	tb := served100(Settings{})
	at := t0.Add(5 * time.Second)
	report(tb, "a", at, 1, 1) // a devnet reset behind both
	report(tb, "b", at, 1, 1)
	if tb.Head() != 100 {
		t.Fatalf("no proof yet: head %d", tb.Head())
	}
	if tb.Ask("a") != 100 || tb.Ask("b") != 100 {
		t.Fatalf("asks %d %d, want the floor's block", tb.Ask("a"), tb.Ask("b"))
	}
	at = at.Add(time.Second)
	tb.Report("a", Report{At: at, Height: 2, ChainID: 1, Lacks: 100})
	if tb.Head() != 100 {
		t.Fatalf("only a lacks it: head %d", tb.Head())
	}
	tb.Report("b", Report{At: at, Height: 2, ChainID: 1, Lacks: 100})
	if tb.Head() != 2 || tb.Served() != 2 {
		t.Fatalf("both lack it: head %d served %d, want 2", tb.Head(), tb.Served())
	}
	n := tb.Notes()
	if len(n) != 1 || !strings.Contains(n[0], "head floor 100 yields to 2") || !strings.Contains(n[0], "none has block 100") {
		t.Fatalf("notes %q", n)
	}
	if tb.Ask("a") != 0 {
		t.Fatalf("ask %d after the floor yielded", tb.Ask("a"))
	}
	// A null for another block proves nothing of this floor.
	tb = served100(Settings{})
	tb.Report("a", Report{At: at, Height: 2, ChainID: 1, Lacks: 99})
	tb.Report("b", Report{At: at, Height: 2, ChainID: 1, Lacks: 99})
	if tb.Head() != 100 {
		t.Fatalf("lacks another block: head %d", tb.Head())
	}
}

// After a restart on stored state, the restored floor is not served before a current report confirms it: the
// rows' heights are forgotten, the floor held back; a current report within max_lag_blocks confirms it.
func TestRestoredFloorHeldUntilConfirmed(t *testing.T) {
	src := served100(Settings{})
	rows := []Upstream{}
	for _, n := range []string{"a", "b"} {
		u, _ := src.Get(n)
		rows = append(rows, u)
	}
	load := func() *Table {
		tb := New(Settings{}, []string{"a", "b"}, nil)
		tb.RestoreAll(rows)
		tb.RestoreFloor(src.Floor())
		tb.Restarted()
		return tb
	}
	tb := load()
	if tb.Head() != 0 || tb.Best() != 0 || tb.Floor().Served != 0 {
		t.Fatalf("restored, nothing current: head %d best %d snapshot floor %d", tb.Head(), tb.Best(), tb.Floor().Served)
	}
	if u, _ := tb.Get("a"); u.Height != 0 || u.known() || u.ChainID != 1 {
		t.Fatalf("restored row %+v: the height must be forgotten, the chain id kept", u)
	}
	if tb.StoredFloor().Served != 100 {
		t.Fatalf("stored floor %d: a restart before any report must keep it", tb.StoredFloor().Served)
	}
	at := t0.Add(time.Hour)
	report(tb, "a", at, 95, 1) // the chain went on: within max_lag_blocks
	if tb.Head() != 100 || tb.Floor().Served != 100 {
		t.Fatalf("confirmed: head %d floor %d", tb.Head(), tb.Floor().Served)
	}
	if tb.Notes() != nil {
		t.Fatal("a confirmed floor is no news")
	}
}

// A restored floor that a reset devnet disproves is dropped at the proof, never served meanwhile; one that
// nothing proves or confirms is dropped after stale_after, never served either.
func TestRestoredFloorDisprovedOrOutlived(t *testing.T) {
	src := served100(Settings{StaleAfter: 30 * time.Second})
	rows := []Upstream{}
	for _, n := range []string{"a", "b"} {
		u, _ := src.Get(n)
		rows = append(rows, u)
	}
	load := func() *Table {
		tb := New(Settings{StaleAfter: 30 * time.Second}, []string{"a", "b"}, nil)
		tb.RestoreAll(rows)
		tb.RestoreFloor(src.Floor())
		tb.Restarted()
		return tb
	}
	at := t0.Add(time.Hour)
	tb := load()
	report(tb, "a", at, 1, 1)
	report(tb, "b", at, 1, 1)
	if tb.Head() != 1 || tb.ServeHead("a", 1, at) != 1 {
		t.Fatalf("a reset devnet: head %d, want 1 from the first answer", tb.Head())
	}
	if tb.Ask("a") != 100 {
		t.Fatalf("ask %d, want the held floor's block", tb.Ask("a"))
	}
	tb.Report("a", Report{At: at.Add(time.Second), Height: 2, ChainID: 1, Lacks: 100})
	tb.Report("b", Report{At: at.Add(time.Second), Height: 2, ChainID: 1, Lacks: 100})
	if n := tb.Notes(); len(n) != 1 || !strings.Contains(n[0], "head floor 100 (restored from storage) yields to 2") {
		t.Fatalf("notes %q", n)
	}
	if tb.StoredFloor().Served != 1 || tb.Ask("a") != 0 { // what was served since: 1
		t.Fatalf("stored floor %d, ask %d after the proof", tb.StoredFloor().Served, tb.Ask("a"))
	}
	// No proof (the upstreams' answers for block 100 prove nothing): dropped after stale_after, never served.
	tb = load()
	for i := 0; i <= 8; i++ {
		now := at.Add(time.Duration(i) * 5 * time.Second)
		report(tb, "a", now, uint64(i), 1)
		report(tb, "b", now, uint64(i), 1)
		if tb.Head() != uint64(i) {
			t.Fatalf("after %ds: head %d, want %d", i*5, tb.Head(), i)
		}
	}
	if n := tb.Notes(); len(n) != 1 || !strings.Contains(n[0], "for over 30s") || tb.StoredFloor().Served != 0 {
		t.Fatalf("notes %q, stored floor %d", n, tb.StoredFloor().Served)
	}
}
