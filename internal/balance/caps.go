package balance

import (
	"slices"
	"time"

	"github.com/evmlb/evmlb/internal/blockref"
	"github.com/evmlb/evmlb/internal/methods"
	"github.com/evmlb/evmlb/internal/retry"
)

// Capabilities learned (issue 20): what each upstream proved it cannot serve, so that requests stop going where
// they fail. An upstream proves it lacks a method by its answer (retry.LackIn: -32601 and the providers' texts), or
// the state at an old block ("missing trie node" and kin). Both proofs are kept for a while (CapabilityTTL), then
// the upstream is asked again: a node can be reconfigured, and a full node's state window moves. A success of a
// state read at an old block proves the upstream has the state from that block up, for as long. The configured
// `archive` setting promises the state at every block, for good.

// OldStateDepth is how far below the best height a block must be for its state to be old: geth's full nodes keep
// the state of the latest 128 blocks, and every node has the state near its head. Reads at blocks above it are
// routed as before, whatever was learned.
const OldStateDepth = 128

// Caps is what one upstream proved it can and cannot serve: part of its row, shipped in the snapshot.
type Caps struct {
	// Archive: configured as an archive node (`archive = true`): it has the state at every block; nothing learned
	// of its state is kept.
	Archive bool
	// Methods are the methods it answered as not offered, each with when it is asked again.
	Methods map[string]time.Time
	// StateBelow: it lacks the state at this block and every lower one, until StateBelowUntil (zero: no proof).
	StateBelow      uint64
	StateBelowUntil time.Time
	// StateFrom: it served the state at this block, and so has it at every higher one, until StateFromUntil
	// (zero: no proof).
	StateFrom      uint64
	StateFromUntil time.Time
}

// LacksMethod reports whether it is held not to offer method at now.
func (c *Caps) LacksMethod(method string, now time.Time) bool {
	until, ok := c.Methods[method]
	return ok && now.Before(until)
}

// LacksState reports whether it proved it lacks the state at block n, and the proof still holds at now.
func (c *Caps) LacksState(n uint64, now time.Time) bool {
	return !c.Archive && now.Before(c.StateBelowUntil) && n <= c.StateBelow
}

// HasState reports whether it proved (or is configured) to have the state at block n at now.
func (c *Caps) HasState(n uint64, now time.Time) bool {
	return c.Archive || now.Before(c.StateFromUntil) && n >= c.StateFrom
}

// clone is c with a map of its own (rows are copied to snapshots and admin views).
func (c Caps) clone() Caps {
	if c.Methods != nil {
		c.Methods = maps(c.Methods)
	}
	return c
}

func maps(m map[string]time.Time) map[string]time.Time {
	out := make(map[string]time.Time, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// stateReads are the methods that read the state trie at the block they name: a full node fails them at an old
// block. (Block bodies, receipts and logs are history, not state: a full node keeps them.)
var stateReads = map[string]bool{
	"eth_getBalance": true, "eth_getCode": true, "eth_getTransactionCount": true, "eth_getStorageAt": true,
	"eth_getProof": true, "eth_call": true, "eth_estimateGas": true, "eth_createAccessList": true,
	"debug_traceCall": true, "trace_call": true, "debug_traceBlockByNumber": true, "trace_block": true,
	"trace_replayBlockTransactions": true,
}

// StateRead reports whether method reads the state at the block it names.
func StateRead(method string) bool { return stateReads[method] }

// oldState is the block whose state a request of method at ref reads, when that block is old (OldStateDepth below
// the best height).
func (t *Table) oldState(method string, ref blockref.Ref) (uint64, bool) {
	if !stateReads[method] {
		return 0, false
	}
	var n uint64
	switch ref.Kind {
	case blockref.Number:
		n = ref.Number
	case blockref.Earliest:
		n = 0
	default:
		return 0, false
	}
	return n, n+OldStateDepth < t.best
}

// SetArchive sets name's configured `archive` setting.
func (t *Table) SetArchive(name string, archive bool) {
	if u, ok := t.ups[name]; ok {
		u.Caps.Archive = archive
	}
}

// Learn records what an answer of name to a request of method at ref proves: lack is what its error proves
// (retry.LackIn; retry.NoLack for an answer), class the attempt's class. A method not offered is held so for
// CapabilityTTL. A state read at an old block: a lack of state (or of the block, when the block is more than
// max_lag_blocks below name's own height: below that it is lag) proves name lacks the state there and below; a
// success proves it has the state there and above. Newer proofs win over older ones they contradict (a full
// node's window moves up). It reports whether what the table routes by changed (a proof new, widened or renewed
// after it expired): only those answers are worth telling the chain object.
func (t *Table) Learn(name, method string, ref blockref.Ref, class retry.Class, lack retry.Lack, at time.Time) bool {
	u, ok := t.ups[name]
	if !ok || method == "" {
		return false
	}
	t.tick(at)
	until := at.Add(t.settings.CapabilityTTL)
	c := &u.Caps
	if lack == retry.LacksMethod {
		if c.Methods == nil {
			c.Methods = map[string]time.Time{}
		}
		if methods.Label(method) == methods.Other {
			// Only methods on internal/methods' list are held: a client sending made-up names must not grow the
			// table, nor push the real methods out of it.
			return false
		}
		changed := !c.LacksMethod(method, at)
		c.Methods[method] = until
		return changed
	}
	n, old := t.oldState(method, ref)
	if !old || c.Archive {
		return false
	}
	switch {
	case lack == retry.LacksState || lack == retry.LacksBlock && u.known() && n+t.settings.MaxLagBlocks < u.Height:
		changed := !c.LacksState(n, at)
		if !at.Before(c.StateBelowUntil) || n > c.StateBelow {
			c.StateBelow = n
		}
		c.StateBelowUntil = until
		if c.StateFrom <= n {
			c.StateFromUntil = time.Time{} // its proof no longer holds
		}
		return changed
	case lack == retry.NoLack && class == retry.OK:
		changed := !c.HasState(n, at)
		if !at.Before(c.StateFromUntil) || n < c.StateFrom {
			c.StateFrom = n
		}
		if changed {
			c.StateFromUntil = until
		}
		if c.StateBelow >= n {
			c.StateBelowUntil = time.Time{}
		}
		return changed
	}
	return false
}

// Route is every upstream to try for a request of method at ref, in order: Candidates then Fallback, each with
// the upstreams that proved they cannot serve it (the method, or the old state it reads) left out, and, for a
// read of old state, those that proved they have it (or are archive nodes) ahead of those not known either way.
// When every upstream that would be tried proved it cannot, the request fails fast: the one of them whose proof
// is oldest is the only one tried, its answer (its own error, or a success that ends the proof) being the
// client's. method "" (a batch) routes as Candidates and Fallback do.
func (t *Table) Route(method string, ref blockref.Ref, now time.Time) []string {
	names, _ := t.RouteCounted(method, ref, now)
	return names
}

// RouteCounted is Route, and how many of the names it returns are in rotation (from Candidates, before those
// from Fallback): a split eth_getLogs spreads its pieces over those (internal/proxy, logs.go).
func (t *Table) RouteCounted(method string, ref blockref.Ref, now time.Time) ([]string, int) {
	names, primary, _ := t.RouteSkips(method, ref, now)
	return names, primary
}

// Skip is an upstream that Route left out, and what it proved it lacks (retry.LacksMethod or retry.LacksState).
type Skip struct {
	Name string
	Lack retry.Lack
}

// RouteSkips is RouteCounted, and the upstreams it left out because they proved they cannot serve the call (for
// evmlb_upstream_skipped_total). On a fail fast, the one asked is not among them.
func (t *Table) RouteSkips(method string, ref blockref.Ref, now time.Time) ([]string, int, []Skip) {
	cands, fb := t.Candidates(ref, now), t.Fallback(ref, now)
	if method == "" {
		return append(cands, fb...), len(cands), nil
	}
	n, old := t.oldState(method, ref)
	var out, lacking []string
	var skips []Skip
	primary := 0
	for i, group := range [][]string{cands, fb} {
		var have, unknown []string
		for _, name := range group {
			c := &t.ups[name].Caps
			switch {
			case c.LacksMethod(method, now):
				lacking, skips = append(lacking, name), append(skips, Skip{name, retry.LacksMethod})
			case old && c.LacksState(n, now):
				lacking, skips = append(lacking, name), append(skips, Skip{name, retry.LacksState})
			case old && c.HasState(n, now):
				have = append(have, name)
			default:
				unknown = append(unknown, name)
			}
		}
		out = append(append(out, have...), unknown...)
		if i == 0 {
			primary = len(out)
		}
	}
	if len(out) > 0 || len(lacking) == 0 {
		return out, primary, skips
	}
	// Every one proved it cannot: ask the one whose proof is oldest (it expires first), once.
	proofEnd := func(name string) time.Time {
		c := &t.ups[name].Caps
		if end, ok := c.Methods[method]; ok && now.Before(end) {
			return end
		}
		return c.StateBelowUntil
	}
	asked := slices.MinFunc(lacking, func(a, b string) int { return proofEnd(a).Compare(proofEnd(b)) })
	skips = slices.DeleteFunc(skips, func(s Skip) bool { return s.Name == asked })
	return []string{asked}, 1, skips
}
