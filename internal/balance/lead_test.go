package balance

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/evmlb/evmlb/internal/retry"
)

// Issue 17 point 2: a lead is believed only on evidence from outside its claimant.

// liarRun drives a chain of one honest upstream mining a block a second and a liar reporting the honest height
// plus lie, moving in step, both checked every second, for span, with the liar's own proof of its head in every
// report (it answers any block). Every second it also serves eth_blockNumber from the honest upstream, as an
// isolate does. down, when not zero, is a span in the middle during which the honest upstream's checks fail.
// It returns the first failure of the rule, "" when it held throughout.
func liarRun(span, down time.Duration, lie uint64) string {
	tb := New(Settings{BreakerFailures: 1}, []string{"liar", "honest"}, nil)
	downFrom := span/2 - down/2
	for i := 0; time.Duration(i)*time.Second <= span; i++ {
		at := t0.Add(time.Duration(i) * time.Second)
		h := 1000 + uint64(i)
		tb.Report("liar", Report{At: at, Height: h + lie, ChainID: 1, Proven: h + lie - 1})
		elapsed := time.Duration(i) * time.Second
		isDown := down > 0 && elapsed >= downFrom && elapsed < downFrom+down
		if isDown {
			tb.Report("honest", Report{At: at, Err: retry.Refused})
		} else {
			tb.Report("honest", Report{At: at, Height: h, ChainID: 1, Proven: h - 1})
			if got := tb.ServeHead("honest", h, at); got > h+2 {
				return "eth_blockNumber answered " + strconv.FormatUint(got, 10) + " at " + elapsed.String()
			}
		}
		if tb.Best() > h {
			return "the liar's height counted at " + elapsed.String()
		}
		if s := tb.State("liar", at); s != Unconfirmed {
			return "the liar is " + string(s) + " at " + elapsed.String()
		}
		if !isDown {
			if s := tb.State("honest", at); s != Healthy {
				return "the honest upstream is " + string(s) + " at " + elapsed.String()
			}
			if c := tb.Candidates(latest(), at); len(c) != 1 || c[0] != "honest" {
				return "reads at latest go to " + strings.Join(c, ",") + " at " + elapsed.String()
			}
		}
	}
	return ""
}

// Ten minutes of 1 s blocks with a liar +1,000 that moves in step and proves any head it claims: it never
// counts, the honest upstream is never lagging, reads at latest never go to the liar. The old rule (a lead
// believed on its own proof, or after confirm_after while moving) believed it at once.
func TestLiarInStepNeverBelieved(t *testing.T) {
	for _, lie := range []uint64{11, 50, 1000} {
		if msg := liarRun(10*time.Minute, 0, lie); msg != "" {
			t.Fatalf("+%d: %s", lie, msg)
		}
	}
}

// The honest upstream down for less than confirm_after (its breaker open) still stands against the liar: its
// last height is a witness while it is recent.
func TestLiarWhileHonestBrieflyDown(t *testing.T) {
	if msg := liarRun(10*time.Minute, 40*time.Second, 1000); msg != "" {
		t.Fatal(msg)
	}
}

// The liar shows as unconfirmed, with a reason that says no other upstream confirms its lead.
func TestLiarReason(t *testing.T) {
	tb := New(Settings{}, []string{"liar", "honest"}, nil)
	report(tb, "honest", t0, 100, 1)
	tb.Report("liar", Report{At: t0, Height: 1100, ChainID: 1, Proven: 1100})
	if s, r := tb.State("liar", t0), tb.Reason("liar", t0); s != Unconfirmed || !strings.Contains(r, "no other upstream confirms its lead") {
		t.Fatalf("liar %s %q", s, r)
	}
	if u, _ := tb.Get("liar"); u.LeadSince != t0 {
		t.Fatalf("lead since %v", u.LeadSince)
	}
}

// A real fork in time: the other upstreams stall (their heads stop) while one moves on. Its lead is believed once
// they have stood still for confirm_after while it moved, and they are then lagging.
func TestLeadBelievedWhenOthersStall(t *testing.T) {
	tb := New(Settings{ConfirmAfter: 30 * time.Second}, []string{"a", "b", "c"}, nil)
	for i := 0; i <= 60; i++ {
		at := t0.Add(time.Duration(i) * time.Second)
		report(tb, "a", at, 100+uint64(i), 1)
		stalled := min(100+uint64(i), 105) // b and c stop at 105 after 5 s
		report(tb, "b", at, stalled, 1)
		report(tb, "c", at, stalled, 1)
		believed := tb.Best() == 100+uint64(i)
		// a's lead begins at 116 (i=16) and has held for 30 s at i=46, long after b and c stopped (i=5).
		if want := i < 16 || i >= 46; believed != want {
			t.Fatalf("after %ds: best %d, a at %d: believed %v, want %v", i, tb.Best(), 100+i, believed, want)
		}
	}
	end := t0.Add(60 * time.Second)
	if tb.State("a", end) != Healthy || tb.State("b", end) != Lagging {
		t.Fatalf("a %s, b %s", tb.State("a", end), tb.State("b", end))
	}
}

// A lead that stands still is no chain: with everybody still, it is never believed, however long; nor is one that
// jumped once after the others had stood still for long (a static devnet and a liar).
func TestStillLeadNeverBelieved(t *testing.T) {
	tb := New(Settings{ConfirmAfter: 10 * time.Second}, []string{"a", "b"}, nil)
	for i := 0; i <= 600; i += 5 {
		at := t0.Add(time.Duration(i) * time.Second)
		h := uint64(100)
		if i >= 300 {
			h = 200 // the jump, after five minutes of nobody moving
		}
		report(tb, "a", at, h, 1)
		report(tb, "b", at, 100, 1)
		if tb.Best() != 100 {
			t.Fatalf("after %ds: best %d", i, tb.Best())
		}
	}
}

// A chain with a single upstream believes it; with two, one down for longer than confirm_after is no witness
// any more, and the one left is believed (a chain of one).
func TestOneLeftTrustedAfterConfirmAfter(t *testing.T) {
	tb := New(Settings{BreakerFailures: 1, ConfirmAfter: 30 * time.Second}, []string{"a", "b"}, nil)
	report(tb, "a", t0, 500, 1)
	report(tb, "b", t0, 100, 1)
	tb.Report("b", Report{At: t0.Add(time.Second), Err: retry.Refused}) // b's breaker opens
	report(tb, "a", t0.Add(20*time.Second), 500, 1)
	if tb.Best() != 0 {
		t.Fatalf("b down 19 s: best %d, want nothing believed", tb.Best())
	}
	report(tb, "a", t0.Add(31*time.Second), 500, 1)
	if tb.Best() != 500 {
		t.Fatalf("b down 30 s: best %d, want a's 500", tb.Best())
	}
}
