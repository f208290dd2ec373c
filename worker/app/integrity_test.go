package app

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/evmlb/evmlb/internal/adminapi"
	"github.com/evmlb/evmlb/internal/blockref"
	"github.com/evmlb/evmlb/internal/evmtest"
)

// Issue 8, a head nobody can poison: the faults of the issue against the whole balancer (memplatform, fake
// clock, evmtest nodes).

// blockNumber asks the balancer for eth_blockNumber.
func (h *harness) blockNumber(chain string) uint64 {
	h.t.Helper()
	_, body := h.post(chain, `{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber","params":[]}`)
	var a struct{ Result string }
	if json.Unmarshal([]byte(body), &a) != nil {
		h.t.Fatalf("eth_blockNumber: %s", body)
	}
	n, ok := blockref.ParseQuantity(a.Result)
	if !ok {
		h.t.Fatalf("eth_blockNumber: %s", body)
	}
	return n
}

// blockAt asks the balancer for eth_getBlockByNumber(tag): the number of the block answered, and false when the
// answer is null or an error.
func (h *harness) blockAt(chain, tag string) (uint64, bool) {
	h.t.Helper()
	_, body := h.post(chain, `{"jsonrpc":"2.0","id":2,"method":"eth_getBlockByNumber","params":["`+tag+`",false]}`)
	var a struct {
		Result *struct{ Number string }
	}
	if json.Unmarshal([]byte(body), &a) != nil || a.Result == nil {
		return 0, false
	}
	n, ok := blockref.ParseQuantity(a.Result.Number)
	return n, ok
}

// consistent checks the rule 3 once: eth_blockNumber N, then block N and the latest block are there
// and not lower. It returns N.
func (h *harness) consistent(chain string) uint64 {
	h.t.Helper()
	n := h.blockNumber(chain)
	if got, ok := h.blockAt(chain, fmt.Sprintf("0x%x", n)); !ok || got != n {
		h.t.Errorf("eth_blockNumber %d, then block %d: %d found %v", n, n, got, ok)
	}
	if got, ok := h.blockAt(chain, "latest"); !ok || got < n {
		h.t.Errorf("eth_blockNumber %d, then latest block: %d found %v", n, got, ok)
	}
	return n
}

// advance moves every node's head by one block and runs the health checks of the next interval.
func (h *harness) advance(nodes ...*evmtest.Node) {
	for _, n := range nodes {
		n.SetHeight(n.Height() + 1)
	}
	h.checks(5 * time.Second)
}

// Finding 1: a provider that switches networks (chain id 0xdead, head 50 above) is out at its next check, with
// the reason in admin; its head is never served; it is back once it answers the right chain id.
func TestSwitchedNetworkQuarantined(t *testing.T) {
	a := evmtest.NewNode(t, "a", 1, 100)
	b := evmtest.NewNode(t, "b", 1, 100)
	c := evmtest.NewNode(t, "c", 1, 100)
	h := started(t, nil, upstream{"eth", "a", a.URL}, upstream{"eth", "b", b.URL}, upstream{"eth", "c", c.URL})
	h.consistent("eth")
	reads := count(a, "eth_getBlockByNumber")
	a.SwitchNetwork(0xdead, 50)
	h.advance(b, c)
	if e := h.upstreamEntry("a"); e.State != "wrong_chain" || e.Reason != "eth_chainId is 57005, the chain's is 1: quarantined" {
		t.Fatalf("one interval after the switch: %+v", e)
	}
	for range 5 {
		if n := h.consistent("eth"); n != b.Height() {
			t.Errorf("eth_blockNumber %d, the chain is at %d", n, b.Height())
		}
		if _, got := h.post("eth", `{"jsonrpc":"2.0","id":7,"method":"eth_chainId"}`); got != `{"jsonrpc":"2.0","id":7,"result":"0x1"}` {
			t.Errorf("eth_chainId %s", got)
		}
	}
	if n := count(a, "eth_getBlockByNumber") - reads; n != 0 {
		t.Errorf("the switched upstream served %d block reads", n)
	}
	var chains struct{ Chains []adminapi.ChainSummary }
	h.admin(http.MethodGet, "/admin/chains", &chains)
	if chains.Chains[0].ChainID != 1 {
		t.Errorf("admin: chain id %d", chains.Chains[0].ChainID)
	}
	if !strings.Contains(strings.Join(h.host.Logs(), "\n"), "eth_chainId changed from 0x1 to 0xdead") {
		t.Error("the switch was not logged")
	}
	a.SetChainID(1)
	a.SetHeight(b.Height() + 1)
	h.advance(b, c)
	if e := h.upstreamEntry("a"); e.State != "healthy" {
		t.Fatalf("back on the right chain: %+v", e)
	}
}

// Finding 2: a provider on the right chain claiming a head far above the others (+50, +1,000,000) never raises
// the head: eth_blockNumber and the blocks served agree with the real chain. Its first check already finds that
// it cannot serve the head it claims; two such liars agreeing are out as well.
func TestLyingHeadNotServed(t *testing.T) {
	for _, tc := range []struct {
		lie int64
		bad int // liars of three
	}{{50, 1}, {1_000_000, 1}, {1_000_000, 2}} {
		t.Run(fmt.Sprintf("%d-%dof3", tc.lie, tc.bad), func(t *testing.T) {
			nodes := []*evmtest.Node{evmtest.NewNode(t, "x", 1, 100), evmtest.NewNode(t, "y", 1, 100), evmtest.NewNode(t, "z", 1, 100)}
			var ups []upstream
			for i, n := range nodes {
				if i < tc.bad {
					n.SetHeadOffset(tc.lie) // first in the configuration, and the highest claims
				}
				ups = append(ups, upstream{"eth", n.Name, n.URL})
			}
			h := started(t, nil, ups...)
			honest := nodes[2]
			for i := range 8 {
				if n := h.consistent("eth"); n != honest.Height() {
					t.Errorf("round %d: eth_blockNumber %d, the chain is at %d", i, n, honest.Height())
				}
				h.advance(nodes...)
			}
			for _, n := range nodes[:tc.bad] {
				if e := h.upstreamEntry(n.Name); e.State != "unconfirmed" || !strings.Contains(e.Reason, "could not serve block") {
					t.Fatalf("%s: %+v", n.Name, e)
				}
			}
			var chains struct{ Chains []adminapi.ChainSummary }
			h.admin(http.MethodGet, "/admin/chains", &chains)
			if cs := chains.Chains[0]; cs.Head != honest.Height() || cs.BestHeight != honest.Height() {
				t.Errorf("admin: head %d best %d, the chain is at %d", cs.Head, cs.BestHeight, honest.Height())
			}
		})
	}
}

// Issue 17 point 2: a node ahead of every other by more than max_lag_blocks is not believed on its own proof (it
// serves the block of its head) while the others move in step, however long; it is believed once the others
// stall (their heads stand still for confirm_after while its own moves).
func TestRealLead(t *testing.T) {
	ahead := evmtest.NewNode(t, "ahead", 1, 150)
	b := evmtest.NewNode(t, "b", 1, 100)
	c := evmtest.NewNode(t, "c", 1, 100)
	ups := []upstream{{"eth", "ahead", ahead.URL}, {"eth", "b", b.URL}, {"eth", "c", c.URL}}
	h := started(t, map[string]string{"UPSTREAM_CONFIG": objectConfig(`{"eth":{"confirm_after":"20s"}}`, ups...)})
	for i := range 24 { // two minutes in step
		if n := h.consistent("eth"); n != b.Height() {
			t.Fatalf("after %ds in step: eth_blockNumber %d, want the others' %d", i*5, n, b.Height())
		}
		if e := h.upstreamEntry("ahead"); e.State != "unconfirmed" || !strings.Contains(e.Reason, "no other upstream confirms its lead") {
			t.Fatalf("ahead: %+v", e)
		}
		h.advance(ahead, b, c)
	}
	// b and c stall; ahead moves on. After confirm_after (20 s) of that, its lead is believed.
	var believed time.Duration
	for elapsed := time.Duration(0); elapsed <= time.Minute; elapsed += 5 * time.Second {
		if n := h.consistent("eth"); n == ahead.Height() {
			believed = elapsed
			break
		} else if n != b.Height() {
			t.Fatalf("eth_blockNumber %d: neither the stalled %d nor the lead %d", n, b.Height(), ahead.Height())
		}
		h.advance(ahead)
	}
	if believed < 20*time.Second || believed > 30*time.Second {
		t.Fatalf("the lead over stalled nodes was believed after %v, want 20 to 30 s", believed)
	}
	if e := h.upstreamEntry("b"); e.State != "lagging" {
		t.Errorf("b: %+v", e)
	}
}

// Finding 3, issue 17 point 3: restarted in front of a fresh devnet (every node at block 0, storage kept), the
// balancer answers the nodes' head from its first answer (the stored floor is held back until current reports
// confirm it, and they disprove it: every node answers null for its block); it logs the reset once.
func TestFloorYieldsToFreshDevnet(t *testing.T) {
	nodes := []*evmtest.Node{evmtest.NewNode(t, "a", 1, 100), evmtest.NewNode(t, "b", 1, 100), evmtest.NewNode(t, "c", 1, 100)}
	h := started(t, nil, upstream{"eth", "a", nodes[0].URL}, upstream{"eth", "b", nodes[1].URL}, upstream{"eth", "c", nodes[2].URL})
	if n := h.consistent("eth"); n != 100 {
		t.Fatalf("head %d", n)
	}
	h.checks(5 * time.Second) // the floor is stored with the reports
	for _, n := range nodes {
		n.Restart()
	}
	h.restartApp()
	for i := range 4 {
		if got := h.consistent("eth"); got != nodes[0].Height() {
			t.Fatalf("after %ds: eth_blockNumber %d, the nodes are at %d", i*5, got, nodes[0].Height())
		}
		h.advance(nodes...)
	}
	var notes int
	for _, l := range h.host.Logs() {
		if strings.Contains(l, "head floor 100 (restored from storage) yields to") && strings.Contains(l, "none has block 100") {
			notes++
		}
	}
	if notes != 1 {
		t.Errorf("%d log lines of the reset, want 1:\n%s", notes, strings.Join(h.host.Logs(), "\n"))
	}
}

// Issue 17 point 3, while running: the nodes behind every upstream reset (a devnet restart). The floor yields
// once they all answer null for its block, at the second check after the reset (the first tells each upstream's
// object the floor to ask for), not after stale_after; logged once.
func TestFloorYieldsWhenDisproved(t *testing.T) {
	nodes := []*evmtest.Node{evmtest.NewNode(t, "a", 1, 100), evmtest.NewNode(t, "b", 1, 100)}
	h := started(t, nil, upstream{"eth", "a", nodes[0].URL}, upstream{"eth", "b", nodes[1].URL})
	if n := h.consistent("eth"); n != 100 {
		t.Fatalf("head %d", n)
	}
	h.checks(5 * time.Second)
	for _, n := range nodes {
		n.Restart()
	}
	var yielded time.Duration
	for elapsed := time.Duration(0); elapsed <= time.Minute; elapsed += 5 * time.Second {
		h.advance(nodes...)
		if got := h.blockNumber("eth"); got == nodes[0].Height() {
			yielded = elapsed + 5*time.Second
			break
		} else if got != 100 {
			t.Fatalf("eth_blockNumber %d: neither the floor nor the nodes' %d", got, nodes[0].Height())
		}
	}
	if yielded == 0 || yielded > 15*time.Second {
		t.Fatalf("the floor yielded after %v, want within three checks (15 s), not stale_after", yielded)
	}
	h.consistent("eth")
	var notes int
	for _, l := range h.host.Logs() {
		if strings.Contains(l, "head floor 100 yields to") && strings.Contains(l, "none has block 100") {
			notes++
		}
	}
	if notes != 1 {
		t.Errorf("%d log lines of the reset, want 1", notes)
	}
}

// Finding 4 and rule 3: with one upstream 50 blocks stale and the others moving at different moments, every
// eth_blockNumber is followed by blocks that are there and not lower, even when a request finds an upstream ahead
// of what its last check said.
func TestAnswersAgree(t *testing.T) {
	a := evmtest.NewNode(t, "a", 1, 100)
	b := evmtest.NewNode(t, "b", 1, 100)
	stale := evmtest.NewNode(t, "stale", 1, 100)
	stale.SetHeadOffset(-50)
	h := started(t, nil, upstream{"eth", "stale", stale.URL}, upstream{"eth", "a", a.URL}, upstream{"eth", "b", b.URL})
	for i := range 20 {
		// Between two checks one node gets a block the table has not heard of: an eth_blockNumber it answers
		// raises the head, and the other (behind) must not answer the reads at the tag.
		ahead := []*evmtest.Node{a, b}[i%2]
		ahead.SetHeight(ahead.Height() + 1)
		for range 3 {
			h.consistent("eth")
		}
		h.advance(a, b, stale)
	}
	if n := count(stale, "eth_getBlockByNumber"); n != 0 {
		t.Errorf("the stale upstream served %d block reads", n)
	}
	// The upstream at the served head fails a request: it ranks behind the clean one, except for reads at a tag,
	// which must not see a block below the head served.
	a.SetHeight(a.Height() + 1)
	for i := 0; h.blockNumber("eth") != a.Height(); i++ { // load is spread: a answers within a few
		if i == 10 {
			t.Fatal("a never answered eth_blockNumber")
		}
	}
	a.SetFault(evmtest.Status500)
	if _, got := h.post("eth", rpcBody); servedBy(t, got) != "b" {
		t.Fatalf("served by %s", servedBy(t, got))
	}
	a.SetFault(evmtest.None)
	if got, ok := h.blockAt("eth", "latest"); !ok || got != a.Height() {
		t.Errorf("latest block %d after eth_blockNumber answered %d", got, a.Height())
	}
}

// An upstream that goes 50 blocks stale between two checks: until its next check says so, the reads that reach it
// show it below the served head, and go to the next upstream instead of reaching the client.
func TestGoneStaleBetweenChecks(t *testing.T) {
	a := evmtest.NewNode(t, "a", 1, 100)
	b := evmtest.NewNode(t, "b", 1, 100)
	c := evmtest.NewNode(t, "c", 1, 100)
	h := started(t, nil, upstream{"eth", "a", a.URL}, upstream{"eth", "b", b.URL}, upstream{"eth", "c", c.URL})
	h.consistent("eth")
	a.SetHeadOffset(-50) // no check runs in this test from here on: the table still has a at 100
	for range 10 {
		if n := h.consistent("eth"); n != 100 {
			t.Errorf("eth_blockNumber %d", n)
		}
	}
	if e := h.upstreamEntry("a"); e.State != "lagging" {
		t.Errorf("a: %+v", e)
	}
}

// eth_chainId and net_version are answered by the balancer: no upstream is asked.
func TestChainIDAnsweredLocally(t *testing.T) {
	a := evmtest.NewNode(t, "a", 31337, 100)
	h := started(t, nil, upstream{"eth", "a", a.URL})
	before := a.Calls()
	for _, tc := range []struct{ body, want string }{
		{`{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[]}`, `{"jsonrpc":"2.0","id":1,"result":"0x7a69"}`},
		{`{"jsonrpc":"2.0","id":"n","method":"net_version"}`, `{"jsonrpc":"2.0","id":"n","result":"31337"}`},
		{`[{"jsonrpc":"2.0","id":1,"method":"eth_chainId"},{"jsonrpc":"2.0","id":2,"method":"net_version"}]`, `[{"jsonrpc":"2.0","id":1,"result":"0x7a69"},{"jsonrpc":"2.0","id":2,"result":"31337"}]`},
	} {
		if status, got := h.post("eth", tc.body); status != http.StatusOK || got != tc.want {
			t.Errorf("%s: %d %s, want %s", tc.body, status, got, tc.want)
		}
	}
	if a.Calls() != before {
		t.Errorf("the upstream was asked %d times", a.Calls()-before)
	}
	// A batch that mixes them with other calls goes to the upstream whole.
	if _, got := h.post("eth", `[{"jsonrpc":"2.0","id":1,"method":"eth_chainId"},{"jsonrpc":"2.0","id":2,"method":"eth_gasPrice"}]`); !strings.Contains(got, `"node":"a"`) {
		t.Errorf("mixed batch: %s", got)
	}
}
