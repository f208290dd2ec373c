package proxy

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/evmlb/evmlb/internal/balance"
	"github.com/evmlb/evmlb/internal/blockref"
	"github.com/evmlb/evmlb/internal/protocol"
	"github.com/evmlb/evmlb/internal/retry"
)

// Issue 17, point 1: one decision, made once. For every state an upstream can be in, the chain object's table is
// built, its snapshot shipped as the real exchange ships it (JSON), and restored in an isolate's copy as the real
// exchange restores it (copyOf): the copy's states are the table's, and its candidates are exactly the upstreams
// the table has in rotation. The history a copy lacks (the chain id verified before, the time a lead held) must
// not make it route differently.
func TestIsolateRoutesAsTheChainTable(t *testing.T) {
	rep := func(tb *balance.Table, name string, at time.Time, height, chainID uint64) {
		tb.Report(name, balance.Report{At: at, Height: height, ChainID: chainID})
	}
	fail := func(tb *balance.Table, name string, class retry.Class, n int, at time.Time) {
		for range n {
			tb.Observe(name, class, 10*time.Millisecond, at)
		}
	}
	three := []string{"a", "b", "x"}
	cases := []struct {
		state balance.State // x's state in the chain's table
		names []string
		build func(tb *balance.Table) time.Time // returns the time the states are read at
	}{
		{balance.Healthy, three, func(tb *balance.Table) time.Time {
			for _, n := range three {
				rep(tb, n, t0, 100, 1)
			}
			return t0
		}},
		{balance.Lagging, three, func(tb *balance.Table) time.Time {
			rep(tb, "a", t0, 200, 1)
			rep(tb, "b", t0, 200, 1)
			rep(tb, "x", t0, 150, 1)
			return t0
		}},
		// The case: x on 1337 joined a chain that had verified 31337 with a alone. The copy has no
		// history: re-deriving the id, it took the smaller and routed every read to x.
		{balance.WrongChain, []string{"a", "x"}, func(tb *balance.Table) time.Time {
			tb.Report("x", balance.Report{At: t0, Err: retry.Refused}) // x down at first: a's id is verified
			rep(tb, "a", t0, 100, 31337)
			rep(tb, "x", t0.Add(time.Second), 500, 1337)
			return t0.Add(time.Second)
		}},
		{balance.Syncing, three, func(tb *balance.Table) time.Time {
			rep(tb, "a", t0, 100, 1)
			rep(tb, "b", t0, 100, 1)
			tb.Report("x", balance.Report{At: t0, Height: 100, ChainID: 1, Syncing: true})
			return t0
		}},
		{balance.CoolingDown, three, func(tb *balance.Table) time.Time {
			for _, n := range three {
				rep(tb, n, t0, 100, 1)
			}
			fail(tb, "x", retry.HTTP429, 1, t0)
			return t0.Add(time.Second)
		}},
		{balance.Failing, three, func(tb *balance.Table) time.Time {
			for _, n := range three {
				rep(tb, n, t0, 100, 1)
			}
			fail(tb, "x", retry.HTTP5xx, 5, t0)
			return t0.Add(time.Second)
		}},
		{balance.Recovering, three, func(tb *balance.Table) time.Time {
			for _, n := range three {
				rep(tb, n, t0, 100, 1)
			}
			fail(tb, "x", retry.HTTP5xx, 5, t0)
			return t0.Add(time.Hour)
		}},
		{balance.Unconfirmed, three, func(tb *balance.Table) time.Time {
			rep(tb, "a", t0, 100, 1)
			rep(tb, "b", t0, 100, 1)
			rep(tb, "x", t0, 150, 1)
			return t0
		}},
		{balance.Down, three, func(tb *balance.Table) time.Time {
			rep(tb, "a", t0, 100, 1)
			rep(tb, "b", t0, 100, 1)
			tb.Report("x", balance.Report{At: t0, Err: retry.Refused})
			return t0
		}},
		{balance.Unknown, three, func(tb *balance.Table) time.Time {
			rep(tb, "a", t0, 100, 1)
			rep(tb, "b", t0, 100, 1)
			return t0
		}},
	}
	// Two decisions the copy cannot make alone, each a row of its own: a lead the table believed on time (held
	// for confirm_after while moving, the others still under it, seen at a refresh later than any report), which made a and b lagging; and
	// a chain undecided between two ids (both wrong_chain).
	extra := []struct {
		name  string
		names []string
		build func(tb *balance.Table) time.Time
		want  map[string]balance.State
	}{
		{"lead held", three, func(tb *balance.Table) time.Time {
			rep(tb, "a", t0, 100, 1)
			rep(tb, "b", t0, 100, 1)
			rep(tb, "x", t0, 150, 1)
			rep(tb, "x", t0.Add(time.Second), 151, 1)
			rep(tb, "x", t0.Add(90*time.Second), 180, 1) // a and b stood still for confirm_after under it
			late := t0.Add(2 * time.Minute)
			fail(tb, "a", retry.Timeout, 1, late) // a refresh after confirm_after: the lead is believed
			return late
		}, map[string]balance.State{"a": balance.Lagging, "b": balance.Lagging, "x": balance.Healthy}},
		{"undecided", []string{"a", "x"}, func(tb *balance.Table) time.Time {
			rep(tb, "a", t0, 100, 31337)
			rep(tb, "x", t0, 100, 1337)
			return t0
		}, map[string]balance.State{"a": balance.WrongChain, "x": balance.WrongChain}},
	}
	type row struct {
		name  string
		names []string
		build func(tb *balance.Table) time.Time
		want  map[string]balance.State
	}
	var rows []row
	for _, c := range cases {
		rows = append(rows, row{string(c.state), c.names, c.build, map[string]balance.State{"x": c.state}})
	}
	for _, e := range extra {
		rows = append(rows, row{e.name, e.names, e.build, e.want})
	}
	seen := map[balance.State]bool{}
	for _, c := range rows {
		t.Run(c.name, func(t *testing.T) {
			obj := balance.New(balance.Settings{}, c.names, nil)
			now := c.build(obj)
			for n, want := range c.want {
				if got := obj.State(n, now); got != want {
					t.Fatalf("the chain's table: %s is %s, the case is for %s", n, got, want)
				}
				seen[want] = true
			}
			b, err := json.Marshal(protocol.SnapshotOf(obj))
			if err != nil {
				t.Fatal(err)
			}
			var snap protocol.Snapshot
			if err := json.Unmarshal(b, &snap); err != nil {
				t.Fatal(err)
			}
			iso := copyOf(balance.Settings{}, c.names, snap)
			for _, n := range c.names {
				if o, i := obj.State(n, now), iso.State(n, now); o != i {
					t.Errorf("%s: %s in the chain's table, %s in the isolate's copy", n, o, i)
				}
			}
			if o, i := obj.ChainID(), iso.ChainID(); o != i {
				t.Errorf("chain id %d in the chain's table, %d in the isolate's copy", o, i)
			}
			if o, i := obj.Undecided(), iso.Undecided(); o != i {
				t.Errorf("undecided %v in the chain's table, %v in the isolate's copy", o, i)
			}
			var rotation []string
			for _, n := range c.names {
				switch obj.State(n, now) {
				case balance.Healthy, balance.Unknown, balance.Down, balance.Recovering:
					rotation = append(rotation, n)
				}
			}
			for _, ref := range []blockref.Ref{{}, {Kind: blockref.Latest}, {Kind: blockref.Number, Number: 100}} {
				got := iso.Candidates(ref, now)
				slices.Sort(got)
				if want := sortedCopy(obj.Candidates(ref, now)); !slices.Equal(got, want) {
					t.Errorf("ref %+v: the isolate's candidates %v, the chain's table has %v in rotation", ref, got, want)
				}
			}
			if ref := (blockref.Ref{}); !slices.Equal(sortedCopy(obj.Candidates(ref, now)), rotation) {
				t.Errorf("the chain's own candidates %v, its rotation %v", obj.Candidates(ref, now), rotation)
			}
		})
	}
	for _, s := range balance.States {
		if !seen[s] {
			t.Errorf("no case holds the isolate to the table for state %s", s)
		}
	}
}

func sortedCopy(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return out
}

// An undecided chain (upstreams split on the chain id, nothing to break the tie) serves no upstream's answer,
// eth_chainId's included: every request gets -32073 with HTTP 503, and no node is asked. Once the chain's table
// decides, the isolate follows at its next exchange.
func TestUndecidedChainRefuses(t *testing.T) {
	r := newRig(t, "")
	r.obj.table = balance.New(balance.Settings{}, r.obj.names, nil)
	r.obj.table.Report("a", balance.Report{At: t0, Height: 100, ChainID: 31337})
	r.obj.table.Report("b", balance.Report{At: t0, Height: 100, ChainID: 1337})
	r.obj.table.Report("c", balance.Report{At: t0, Height: 100, ChainID: 5})
	for _, body := range []string{read, `{"jsonrpc":"2.0","id":7,"method":"eth_chainId"}`, `[{"jsonrpc":"2.0","id":1,"method":"net_version"}]`, `{"jsonrpc":"2.0","id":2,"method":"eth_blockNumber"}`} {
		code, got := r.serve(body)
		if code != http.StatusServiceUnavailable || !strings.Contains(got, `"code":-32073`) || !strings.Contains(got, "chain_id") {
			t.Errorf("%s: HTTP %d %s", body, code, got)
		}
		if strings.Contains(got, "127.0.0.1") {
			t.Errorf("%s: an upstream's address in %s", body, got)
		}
	}
	if c := r.calls(); c != "a=0 b=0 c=0" {
		t.Errorf("nodes asked while undecided: %s", c)
	}
	r.obj.mu.Lock()
	r.obj.table.Report("c", balance.Report{At: t0.Add(time.Second), Height: 100, ChainID: 31337}) // 2 of 3
	r.obj.mu.Unlock()
	r.plane.Flush(context.Background())
	code, got := r.serve(`{"jsonrpc":"2.0","id":7,"method":"eth_chainId"}`)
	if code != http.StatusOK || got != `{"jsonrpc":"2.0","id":7,"result":"0x7a69"}` {
		t.Errorf("decided: HTTP %d %s", code, got)
	}
}

// With every upstream out of rotation and out of the fallback (all on another chain id than the configured one),
// no upstream could be tried: a read gets -32070 with HTTP 503, not -32071's "a write is not sent twice".
func TestNoCandidateIsNoUpstream(t *testing.T) {
	r := newRig(t, `"chain_id": 5`)
	code, got := r.serve(read)
	if code != http.StatusServiceUnavailable || !strings.Contains(got, `"code":-32070`) {
		t.Errorf("HTTP %d %s", code, got)
	}
	if c := r.calls(); c != "a=0 b=0 c=0" {
		t.Errorf("calls %s", c)
	}
}
