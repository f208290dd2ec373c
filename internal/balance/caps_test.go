package balance

import (
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/evmlb/evmlb/internal/blockref"
	"github.com/evmlb/evmlb/internal/retry"
)

func at(n uint64) blockref.Ref { return blockref.Ref{Kind: blockref.Number, Number: n} }

// capsTable is three healthy upstreams at height 10,000 with latencies that order them a, b, c (one request each).
func capsTable(s Settings) *Table {
	tb := New(s, []string{"a", "b", "c"}, nil)
	for _, n := range []string{"a", "b", "c"} {
		report(tb, n, t0, 10000, 1)
	}
	tb.Observe("a", retry.OK, 10*time.Millisecond, t0)
	tb.Observe("b", retry.OK, 20*time.Millisecond, t0)
	tb.Observe("c", retry.OK, 40*time.Millisecond, t0)
	return tb
}

// A method an upstream answered as not offered goes to the others for capability_ttl, then to it again.
func TestRouteMethodLackedForTTL(t *testing.T) {
	tb := capsTable(Settings{CapabilityTTL: time.Minute})
	if got := tb.Route("trace_block", at(9000), t0); !reflect.DeepEqual(got, []string{"a", "b", "c"}) {
		t.Fatalf("before any proof: %v", got)
	}
	tb.Learn("a", "trace_block", at(9000), retry.Unsupported, retry.LacksMethod, t0)
	if got := tb.Route("trace_block", at(9000), t0.Add(time.Second)); !reflect.DeepEqual(got, []string{"b", "c"}) {
		t.Fatalf("a lacks trace_block: %v, want b, c", got)
	}
	// Another method, and a batch (method ""), are not affected.
	if got := tb.Route("trace_filter", latest(), t0.Add(time.Second)); got[0] != "a" {
		t.Fatalf("another method: %v", got)
	}
	if got := tb.Route("", latest(), t0.Add(time.Second)); len(got) != 3 {
		t.Fatalf("a batch: %v", got)
	}
	if got := tb.Route("trace_block", at(9000), t0.Add(time.Minute)); !reflect.DeepEqual(got, []string{"a", "b", "c"}) {
		t.Fatalf("after capability_ttl a is asked again: %v", got)
	}
}

// When every upstream proved it lacks the method, exactly one is asked: the one whose proof is oldest.
func TestRouteNoneCanFailsFast(t *testing.T) {
	tb := capsTable(Settings{CapabilityTTL: time.Minute})
	tb.Learn("b", "debug_traceCall", latest(), retry.Unsupported, retry.LacksMethod, t0)
	tb.Learn("a", "debug_traceCall", latest(), retry.Unsupported, retry.LacksMethod, t0.Add(time.Second))
	tb.Learn("c", "debug_traceCall", latest(), retry.Unsupported, retry.LacksMethod, t0.Add(2*time.Second))
	if got := tb.Route("debug_traceCall", latest(), t0.Add(3*time.Second)); !reflect.DeepEqual(got, []string{"b"}) {
		t.Fatalf("none offers it: %v, want only b (oldest proof)", got)
	}
}

// A read of old state goes first to upstreams that proved they have it, never to those that proved they lack it;
// reads near the head, and reads of history rather than state, route as before.
func TestRouteOldState(t *testing.T) {
	tb := capsTable(Settings{CapabilityTTL: time.Hour})
	tb.Learn("a", "eth_getBalance", at(5000), retry.MissingData, retry.LacksState, t0)
	tb.Learn("c", "eth_call", at(100), retry.OK, retry.NoLack, t0)
	now := t0.Add(time.Second)
	for _, tc := range []struct {
		method string
		ref    blockref.Ref
		want   []string
	}{
		{"eth_getBalance", at(5000), []string{"c", "b"}},            // a lacks it; c has it from 100 up
		{"eth_getStorageAt", at(4000), []string{"c", "b"}},          // below what a lacks: lacks it too
		{"eth_getCode", at(7000), []string{"c", "a", "b"}},          // above what a lacks: a unknown, c first
		{"eth_call", at(50), []string{"b", "c"}},                    // below c's proof: c unknown too
		{"eth_getBalance", at(9900), []string{"a", "b", "c"}},       // near the head: as before
		{"eth_getBlockByNumber", at(5000), []string{"a", "b", "c"}}, // history, not state
		{"eth_getBalance", latest(), []string{"a", "b", "c"}},
		{"eth_getBalance", blockref.Ref{Kind: blockref.Earliest}, []string{"b", "c"}}, // block 0
	} {
		got := tb.Route(tc.method, tc.ref, now)
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s at %+v: %v, want %v", tc.method, tc.ref, got, tc.want)
		}
	}
}

// "header not found" at a block is a lack of state only when the block is well below the upstream's own head: near
// it, it is lag.
func TestLearnBlockLackOnlyBelowOwnHead(t *testing.T) {
	tb := capsTable(Settings{CapabilityTTL: time.Hour, MaxLagBlocks: 10})
	tb.Learn("a", "eth_getBalance", at(9000), retry.MissingData, retry.LacksBlock, t0)
	if got := tb.Route("eth_getBalance", at(9000), t0); !reflect.DeepEqual(got, []string{"b", "c"}) {
		t.Fatalf("header not found 1000 below a's head: %v, want b, c", got)
	}
	tb = New(Settings{CapabilityTTL: time.Hour, MaxLagBlocks: 10}, []string{"a", "b", "c"}, nil)
	report(tb, "a", t0, 9005, 1)
	report(tb, "b", t0, 10000, 1) // a lags, b and c are at the head
	report(tb, "c", t0, 10000, 1)
	tb.Learn("a", "eth_getBalance", at(9000), retry.MissingData, retry.LacksBlock, t0)
	if tb.Best() != 10000 {
		t.Fatalf("best %d: the block must be old", tb.Best())
	}
	if c := tb.ups["a"].Caps; !c.StateBelowUntil.IsZero() {
		t.Fatalf("header not found 5 below a's own head is lag, learned %+v", c)
	}
	// A method answered as not found by the caller's own fault (a revert, a bad param) proves nothing.
	tb.Learn("a", "eth_call", at(9000), retry.OK, retry.NoLack, t0)
	tb.Learn("a", "eth_sendRawTransaction", latest(), retry.Unsupported, retry.NoLack, t0)
	if len(tb.ups["a"].Caps.Methods) != 0 {
		t.Fatalf("methods learned from no lack: %v", tb.ups["a"].Caps.Methods)
	}
}

// A newer proof wins over an older one it contradicts: a full node's state window moves up.
func TestLearnNewerProofWins(t *testing.T) {
	tb := capsTable(Settings{CapabilityTTL: time.Hour})
	tb.Learn("a", "eth_getBalance", at(5000), retry.OK, retry.NoLack, t0)
	if !tb.ups["a"].Caps.HasState(5000, t0) {
		t.Fatal("success at 5000 not learned")
	}
	tb.Learn("a", "eth_getBalance", at(6000), retry.MissingData, retry.LacksState, t0.Add(time.Second))
	c := tb.ups["a"].Caps
	if c.HasState(6000, t0.Add(time.Second)) || !c.LacksState(5000, t0.Add(time.Second)) {
		t.Fatalf("lack at 6000 after a success at 5000: %+v", c)
	}
	tb.Learn("a", "eth_getBalance", at(5500), retry.OK, retry.NoLack, t0.Add(2*time.Second))
	c = tb.ups["a"].Caps
	if !c.HasState(5500, t0.Add(2*time.Second)) || c.LacksState(5500, t0.Add(2*time.Second)) {
		t.Fatalf("success at 5500 after a lack at 6000: %+v", c)
	}
	// An expired proof is replaced, not merged: the lowest success of the new period counts.
	tb.Learn("a", "eth_getBalance", at(8000), retry.OK, retry.NoLack, t0.Add(2*time.Hour))
	if c := tb.ups["a"].Caps; c.StateFrom != 8000 {
		t.Fatalf("after expiry StateFrom %d, want 8000", c.StateFrom)
	}
}

// An archive upstream has the state at every block: first for old reads, and nothing learned of its state.
func TestArchiveSetting(t *testing.T) {
	tb := capsTable(Settings{CapabilityTTL: time.Hour})
	tb.Learn("c", "eth_getBalance", at(10), retry.MissingData, retry.LacksState, t0) // before the setting is known
	tb.SetArchive("c", true)
	tb.Learn("c", "eth_getBalance", at(20), retry.MissingData, retry.LacksState, t0)
	if got := tb.Route("eth_getBalance", at(10), t0); !reflect.DeepEqual(got, []string{"c", "a", "b"}) {
		t.Fatalf("archive c first for old state: %v", got)
	}
	if got := tb.Route("eth_getBalance", latest(), t0); !reflect.DeepEqual(got, []string{"a", "b", "c"}) {
		t.Fatalf("at latest the usual order: %v", got)
	}
	// Yet it can lack a method.
	tb.Learn("c", "trace_block", at(10), retry.Unsupported, retry.LacksMethod, t0)
	if got := tb.Route("trace_block", at(10), t0); !reflect.DeepEqual(got, []string{"a", "b"}) {
		t.Fatalf("archive without trace_block: %v", got)
	}
}

// Made-up method names cannot grow the table: only methods on internal/methods' list are held.
func TestLackedMethodsOnlyKnown(t *testing.T) {
	tb := capsTable(Settings{CapabilityTTL: time.Hour})
	for i := range 100 {
		if tb.Learn("a", fmt.Sprintf("x_%d", i), latest(), retry.Unsupported, retry.LacksMethod, t0) {
			t.Fatal("a made-up method was learned")
		}
	}
	if !tb.Learn("a", "trace_filter", latest(), retry.Unsupported, retry.LacksMethod, t0) {
		t.Fatal("trace_filter not learned")
	}
	if m := tb.ups["a"].Caps.Methods; len(m) != 1 {
		t.Fatalf("held %v", m)
	}
}

// The capabilities travel with the row: a table restored from another's rows routes alike.
func TestCapsRestored(t *testing.T) {
	tb := capsTable(Settings{CapabilityTTL: time.Hour})
	tb.Learn("a", "eth_getBalance", at(5000), retry.MissingData, retry.LacksState, t0)
	tb.Learn("b", "trace_block", latest(), retry.Unsupported, retry.LacksMethod, t0)
	var rows []Upstream
	for _, n := range tb.Names() {
		u, _ := tb.Get(n)
		rows = append(rows, u)
	}
	iso := New(Settings{CapabilityTTL: time.Hour}, []string{"a", "b", "c"}, nil)
	iso.RestoreAll(rows)
	for _, q := range []struct {
		m string
		r blockref.Ref
	}{{"eth_getBalance", at(5000)}, {"trace_block", latest()}} {
		if got, want := iso.Route(q.m, q.r, t0), tb.Route(q.m, q.r, t0); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: restored %v, chain's %v", q.m, got, want)
		}
	}
	// The copy is the row's own: learning in one table leaves the other as it was.
	iso.Learn("b", "trace_filter", latest(), retry.Unsupported, retry.LacksMethod, t0)
	if tb.ups["b"].Caps.LacksMethod("trace_filter", t0) || rows[1].Caps.LacksMethod("trace_filter", t0) {
		t.Fatal("a restored table shares its methods map with the rows it came from")
	}
	tb.Learn("b", "trace_get", latest(), retry.Unsupported, retry.LacksMethod, t0)
	if rows[1].Caps.LacksMethod("trace_get", t0) {
		t.Fatal("a row Get returned shares its methods map with the table")
	}
}

// RouteSkips names the upstreams left out and why; on a fail fast the one asked is not among them; a batch and a
// call no proof touches skip none.
func TestRouteSkips(t *testing.T) {
	tb := capsTable(Settings{CapabilityTTL: time.Minute})
	tb.Learn("a", "trace_block", at(9000), retry.Unsupported, retry.LacksMethod, t0)
	tb.Learn("b", "eth_getBalance", at(5000), retry.MissingData, retry.LacksState, t0)
	now := t0.Add(time.Second)
	for _, tc := range []struct {
		method string
		ref    blockref.Ref
		names  []string
		skips  []Skip
	}{
		{"trace_block", at(9000), []string{"b", "c"}, []Skip{{"a", retry.LacksMethod}}},
		{"eth_getBalance", at(100), []string{"a", "c"}, []Skip{{"b", retry.LacksState}}},
		{"eth_getBalance", latest(), []string{"a", "b", "c"}, nil},
		{"", at(100), []string{"a", "b", "c"}, nil},
	} {
		names, _, skips := tb.RouteSkips(tc.method, tc.ref, now)
		if !reflect.DeepEqual(names, tc.names) || !reflect.DeepEqual(skips, tc.skips) {
			t.Errorf("%s at %+v: %v skipping %v, want %v skipping %v", tc.method, tc.ref, names, skips, tc.names, tc.skips)
		}
	}
	tb.Learn("b", "trace_block", at(9000), retry.Unsupported, retry.LacksMethod, t0.Add(time.Second))
	tb.Learn("c", "trace_block", at(9000), retry.Unsupported, retry.LacksMethod, t0.Add(2*time.Second))
	names, _, skips := tb.RouteSkips("trace_block", at(9000), t0.Add(3*time.Second))
	if want := []Skip{{"b", retry.LacksMethod}, {"c", retry.LacksMethod}}; !reflect.DeepEqual(names, []string{"a"}) || !reflect.DeepEqual(skips, want) {
		t.Errorf("fail fast: %v skipping %v, want a skipping %v", names, skips, want)
	}
}
