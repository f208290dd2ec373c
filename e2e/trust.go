package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/evmlb/evmlb/e2e/internal/anvil"
	"github.com/evmlb/evmlb/e2e/internal/rpc"
	"github.com/evmlb/evmlb/e2e/internal/target"
)

// Issue 17 points 2 and 3: a head no upstream can prove by itself, and a floor that does not outlive the chain.

// EnvLiarDuration sets how long the liar scenario reads after the first checks (a Go duration; default 20 s, the
// issue's "3 minutes" with EVMLB_LIAR_DURATION=3m).
const EnvLiarDuration = "EVMLB_LIAR_DURATION"

// EnvRestarts sets how many restarts in front of a reset devnet the restart scenario makes (default 5).
const EnvRestarts = "EVMLB_RESTARTS"

// envDuration reads a positive Go duration from name, def when unset; a bad value fails s.
func (s *S) envDuration(name string, def time.Duration) time.Duration {
	s.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		s.Fatalf("%s=%q: want a positive Go duration", name, v)
	}
	return d
}

// envCount reads a positive count from name, def when unset; a bad value fails s.
func (s *S) envCount(name string, def int) int {
	s.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		s.Fatalf("%s=%q: want a positive count", name, v)
	}
	return n
}

// blockNumber asks the balancer for eth_blockNumber.
func (b *Balancer) blockNumber(chain string) uint64 {
	s := b.s
	s.Helper()
	r := b.Post(chain, rpc.Request(1, "eth_blockNumber"))
	m, err := rpc.Decode(r.Body)
	if err != nil || m.Error != nil {
		s.Fatalf("eth_blockNumber: %d %s\n--- log ---\n%s", r.Status, r.Body, b.Inst.Logs())
	}
	n, err := rpc.Quantity(m.Result)
	if err != nil {
		s.Fatalf("eth_blockNumber: %s", r.Body)
	}
	return n
}

// blockAt asks the balancer for eth_getBlockByNumber(tag) and returns the answered block's number; ok is false
// when the answer is null or an error.
func (b *Balancer) blockAt(chain, tag string) (n uint64, ok bool, body []byte) {
	s := b.s
	s.Helper()
	r := b.Post(chain, rpc.Request(2, "eth_getBlockByNumber", tag, false))
	m, err := rpc.Decode(r.Body)
	if err != nil || m.Error != nil || string(m.Result) == "null" {
		return 0, false, r.Body
	}
	var blk struct{ Number string }
	if json.Unmarshal(m.Result, &blk) != nil {
		return 0, false, r.Body
	}
	n, err = rpc.Quantity(json.RawMessage(`"` + blk.Number + `"`))
	return n, err == nil, r.Body
}

// upstreamState reads /admin/upstreams: name's state and reason.
func (b *Balancer) upstreamState(name string) (string, string) {
	r := b.Admin(http.MethodGet, "/admin/upstreams")
	var doc struct {
		Upstreams []struct{ Name, State, Reason string }
	}
	if json.Unmarshal(r.Body, &doc) != nil {
		b.s.Fatalf("/admin/upstreams: %s", r.Body)
	}
	for _, u := range doc.Upstreams {
		if u.Name == name {
			return u.State, u.Reason
		}
	}
	return "", ""
}

func within(a, b, d uint64) bool { return a <= b+d && b <= a+d }

// mineEverySecond mines a block on n every second until the returned stop is called (it waits for the miner).
func (s *S) mineEverySecond(n *anvil.Node) (stop func()) {
	ctx, cancel := context.WithCancel(s.Ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		for ctx.Err() == nil {
			_, _ = n.Mine(ctx, 1)
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	})
	return func() { cancel(); wg.Wait() }
}

// Issue 17 point 2: beside one honest upstream whose node mines a block a second, a liar that reports every
// height 1,000 above the chain's (eth_blockNumber, and so the head its checks ask about) and answers 0x0 to
// eth_getBlockTransactionCountByNumber for any block (it "serves" the head it claims). For EVMLB_LIAR_DURATION
// after the first checks, eth_blockNumber stays within 2 blocks of the honest node, the latest block is there,
// and no read at latest reaches the liar; admin shows it unconfirmed, no other upstream confirming its lead.
func scLiar(s *S) {
	n := s.Node(31337, 10)
	liar, uliar := s.Upstream(n, "ethereum", "liar")
	_, uhonest := s.Upstream(n, "ethereum", "honest")
	liar.SetHeightOffset(+1000)
	liar.SetAnyBlock(true)
	defer s.mineEverySecond(n)()
	b := s.Start([]target.Upstream{uliar, uhonest}, nil) // the liar first: "first in the config" cannot pass
	b.Post("ethereum", rpc.Request(1, "eth_chainId"))    // wakes the chain: its first checks
	waitChecks(s.Ctx, s.T, b.Inst, s.Password, 1)
	liar.ResetCounts()
	d := s.envDuration(EnvLiarDuration, 20*time.Second)
	var reads int
	var maxDist uint64
	for start := time.Now(); time.Since(start) < d; reads++ {
		num := b.blockNumber("ethereum")
		head, err := n.BlockNumber(s.Ctx)
		if err != nil {
			s.Fatal(err)
		}
		maxDist = max(maxDist, max(num, head)-min(num, head))
		if !within(num, head, 2) {
			st, why := b.upstreamState("liar")
			s.Fatalf("after %v: eth_blockNumber %d, the honest node is at %d (liar %s: %s)\n--- log ---\n%s", time.Since(start).Round(time.Millisecond), num, head, st, why, b.Inst.Logs())
		}
		if got, ok, body := b.blockAt("ethereum", "latest"); !ok || got < num || !within(got, head, 2) {
			s.Fatalf("eth_blockNumber %d (node %d), then the latest block: %s", num, head, rpc.Trunc(body, 200))
		}
		b.Post("ethereum", rpc.Request(3, "eth_getBalance", anvil.DevAddress, "latest"))
		time.Sleep(100 * time.Millisecond) // pacing: about ten rounds a second, nothing awaited
	}
	for _, m := range []string{"eth_getBlockByNumber", "eth_getBalance"} {
		// At latest only: the health checks ask the liar for its finalized block with eth_getBlockByNumber too.
		s.must(liar.CountAtLatest(m) == 0, "the liar served %d %s reads at latest", liar.CountAtLatest(m), m)
	}
	st, why := b.upstreamState("liar")
	s.must(st == "unconfirmed" && strings.Contains(why, "no other upstream confirms its lead"), "liar: %s: %s", st, why)
	st, why = b.upstreamState("honest")
	s.must(st == "healthy", "honest: %s: %s", st, why)
	s.Note("liar reads at latest", "0")
	s.Logf("MEASURE %s liar: %d rounds in %v, eth_blockNumber at most %d blocks from the honest node", s.Host.Name(), reads, d, maxDist)
}

// Issue 17 point 3: a balancer restarted with its stored state in front of a devnet that was reset (a new anvil
// at block 1 behind the same upstream names and URLs) answers eth_blockNumber within 2 blocks of the node from its
// first answer, and the block it answered is there; EVMLB_RESTARTS times in a row, each after it served a head 72
// on the node before the reset.
func scRestartReset(s *S) {
	restarts := s.envCount(EnvRestarts, 5)
	node := s.Node(31337, 72)
	pa, ua := s.Upstream(node, "ethereum", "a")
	pb, ub := s.Upstream(node, "ethereum", "b")
	cfg := target.Config{Upstreams: []target.Upstream{ua, ub}, StateDir: s.TempDir()}
	b := s.StartConfig(cfg)
	for i := 0; ; i++ {
		for k := range 5 {
			num := b.blockNumber("ethereum")
			head, err := node.BlockNumber(s.Ctx)
			if err != nil {
				s.Fatal(err)
			}
			if !within(num, head, 2) {
				s.Fatalf("restart %d, read %d: eth_blockNumber %d, the node is at %d\n--- log ---\n%s", i, k, num, head, b.Inst.Logs())
			}
			if got, ok, body := b.blockAt("ethereum", rpc.Hex(num)); !ok || got != num {
				s.Fatalf("restart %d, read %d: eth_blockNumber %d, then that block: %s", i, k, num, rpc.Trunc(body, 200))
			}
		}
		if i == restarts {
			break
		}
		// The chain reaches 72 and the balancer serves it: the floor, stored with the exchange that reports the
		// answer (stop once the chain object counts that request).
		if _, err := node.MineTo(s.Ctx, 72); err != nil {
			s.Fatal(err)
		}
		before := chainRequests(b.Admin(http.MethodGet, "/admin/chains").Body, "ethereum")
		for num := b.blockNumber("ethereum"); num != 72; num = b.blockNumber("ethereum") {
			s.must(num < 72, "eth_blockNumber %d above the node's 72", num)
			time.Sleep(waitPoll) // polling what eth_blockNumber answers, bounded by s.Ctx
		}
		b.waitAdmin("/admin/chains", "the chain object to hear of the eth_blockNumber 72 served", func(body []byte) bool {
			return chainRequests(body, "ethereum") > before
		})
		b.Inst.Stop()
		fresh := anvil.StartT(s.T, 31337)
		if _, err := fresh.Mine(s.Ctx, 1); err != nil {
			s.Fatal(err)
		}
		pa.SetTarget(fresh.URL)
		pb.SetTarget(fresh.URL)
		node = fresh
		b = s.StartConfig(cfg)
		if i == 0 {
			s.Record("eth_blockNumber after a restart in front of a reset devnet", b.Post("ethereum", rpc.Request(1, "eth_blockNumber")), NormRPC)
		}
	}
	s.Note("restarts in front of a reset devnet", strconv.Itoa(restarts))
}
