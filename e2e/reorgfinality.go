package e2e

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/evmlb/evmlb/e2e/internal/anvil"
	"github.com/evmlb/evmlb/e2e/internal/rpc"
	"github.com/evmlb/evmlb/e2e/internal/target"
)

// Issue 19: a reorg past finality. anvil with --slots-in-an-epoch 1 calls its head minus 2 finalized, and
// anvil_reorg of depth 5 replaces such blocks at the same height: the finalized number never goes back. A finalized
// block read through the balancer (a hit the second time) must, once the node replaced it, be answered as the node
// now answers it within a few health intervals (the next check asks each upstream the finalized block it found
// before again, by number, and the chain's cache epoch moves), not from the cache until its TTL ends (erpc#223).
func scReorgPastFinality(s *S) {
	const head, depth = 20, 5
	n := anvil.StartTWith(s.T, anvil.Options{ChainID: 31337, Args: []string{"--slots-in-an-epoch", "1"}})
	if _, err := n.Mine(s.Ctx, head); err != nil {
		s.Fatal(err)
	}
	s.name(strings.TrimPrefix(n.URL, "http://"), "<node 31337>")
	_, u0 := s.Upstream(n, "ethereum", "u0")
	_, u1 := s.Upstream(n, "ethereum", "u1")
	b := s.Start([]target.Upstream{u0, u1}, nil)
	b.Post("ethereum", rpc.Request(1, "eth_chainId")) // wakes the chain: its first checks
	fin := b.waitFinalized("ethereum", head-2)
	s.must(fin == head-2, "the chain's finalized block %d, want anvil's head %d minus 2", fin, head)
	// The block read: finalized, and among the blocks the reorg replaces (head-depth+1 … head).
	num := fin
	read := rpc.Request(7, "eth_getBlockByNumber", fmt.Sprintf("0x%x", num), false)
	hashOf := func(body []byte) string {
		var blk struct {
			Hash string `json:"hash"`
		}
		if m, err := rpc.Decode(body); err == nil {
			_ = json.Unmarshal(m.Result, &blk)
		}
		return blk.Hash
	}
	before := hashOf(s.direct(n, read).Body)
	s.must(before != "", "anvil's block %d: no hash", num)

	// Read until a hit: the isolate keys by the chain's finality once its snapshot has it.
	var hit *rpc.Response
	for deadline := time.Now().Add(waitLimit); ; time.Sleep(waitPoll) {
		r := b.Post("ethereum", read)
		s.must(r.Status == 200 && hashOf(r.Body) == before, "block %d through the balancer: %d %s, want hash %s", num, r.Status, rpc.Trunc(r.Body, 300), before)
		if r.Header.Get(cacheHeader) == "hit" {
			hit = r
			break
		}
		if time.Now().After(deadline) {
			s.Fatalf("waited %v for block %d to be a cache hit; last x-evmlb-cache %q", waitLimit, num, r.Header.Get(cacheHeader))
		}
	}
	s.Note("hit", fmt.Sprintf("finalized block %d (head %d) read twice through the balancer: x-evmlb-cache %s", num, head, hit.Header.Get(cacheHeader)))
	var v finalityView
	body := b.Admin("GET", "/admin/chains").Body
	s.must(json.Unmarshal(body, &v) == nil && len(v.Chains) == 1 && v.Chains[0].CacheEpoch != 0, "/admin/chains: %s", rpc.Trunc(body, 500))
	epoch := v.Chains[0].CacheEpoch

	// The reorg, sent to the node directly: blocks head-4 … head replaced, the height the same.
	if _, err := n.Call(s.Ctx, "anvil_reorg", depth, []any{}); err != nil {
		s.Fatal(err)
	}
	reorged := time.Now()
	after := hashOf(s.direct(n, read).Body)
	s.must(after != "" && after != before, "anvil_reorg %d at %d: block %d's hash %s, was %s", depth, head, num, after, before)
	h, err := n.BlockNumber(s.Ctx)
	s.must(err == nil && h == head, "after the reorg the node's head is %d (%v), want %d", h, err, head)

	// Within a bounded wait: the balancer answers the node's new block, and the epoch moved.
	var answered time.Duration
	var last *rpc.Response
	for deadline := reorged.Add(waitLimit); ; time.Sleep(waitPoll) {
		last = b.Post("ethereum", read)
		if last.Status == 200 && hashOf(last.Body) == after {
			answered = time.Since(reorged)
			break
		}
		if time.Now().After(deadline) {
			s.Fatalf("waited %v for block %d through the balancer to be the node's new block %s; last %d x-evmlb-cache %q %s\n--- log ---\n%s",
				waitLimit, num, after, last.Status, last.Header.Get(cacheHeader), rpc.Trunc(last.Body, 300), b.Inst.Logs())
		}
	}
	var moved uint64
	b.waitAdmin("/admin/chains", "the cache epoch to move after the reorg past finality", func(body []byte) bool {
		var v finalityView
		if json.Unmarshal(body, &v) != nil || len(v.Chains) != 1 || v.Chains[0].CacheEpoch <= epoch {
			return false
		}
		moved = v.Chains[0].CacheEpoch
		return true
	})
	s.must(strings.Contains(b.Inst.Logs(), fmt.Sprintf("answers another block at %d", num)), "no log line of the replaced block %d", num)
	// Once finality is decided again, the block is cached anew: every answer is the new block, up to a hit.
	b.waitFinalized("ethereum", num)
	for deadline := time.Now().Add(waitLimit); ; time.Sleep(waitPoll) {
		r := b.Post("ethereum", read)
		s.must(r.Status == 200 && hashOf(r.Body) == after, "block %d through the balancer after the reorg: %d x-evmlb-cache %q %s, want hash %s",
			num, r.Status, r.Header.Get(cacheHeader), rpc.Trunc(r.Body, 300), after)
		if r.Header.Get(cacheHeader) == "hit" {
			break
		}
		if time.Now().After(deadline) {
			s.Fatalf("waited %v for the new block %d to be a cache hit; last x-evmlb-cache %q", waitLimit, num, r.Header.Get(cacheHeader))
		}
	}
	s.Note("reorg", fmt.Sprintf("anvil_reorg %d at head %d: block %d through the balancer is the node's new block, then a hit of it; the cache epoch moved up", depth, head, num))
	s.Logf("MEASURE %s reorg-past-finality: the new block %d answered %v after anvil_reorg (x-evmlb-cache %s; EVMLB_HEALTH_INTERVAL %s); epoch %d -> %d",
		s.Host.Name(), num, answered.Round(10*time.Millisecond), last.Header.Get(cacheHeader), DefaultEnv["EVMLB_HEALTH_INTERVAL"], epoch, moved)
}
