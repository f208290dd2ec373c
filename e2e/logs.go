package e2e

import (
	"bytes"
	"fmt"
	"math/big"
	"net/http"
	"reflect"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/ethclient"

	"github.com/evmlb/evmlb/e2e/internal/anvil"
	"github.com/evmlb/evmlb/e2e/internal/faultproxy"
	"github.com/evmlb/evmlb/e2e/internal/rpc"
	"github.com/evmlb/evmlb/e2e/internal/target"
)

// The chain of scLogsSplit: logsBlocks blocks; a transaction to the logs emitter (anvil.LogsCode) in every tenth
// block up to block 4,600, emitting 40 logs, except the ten of blocks 2,010 … 2,100 which emit 200 each (a burst of
// 20 logs a block); the last 400 blocks are empty. 450 × 40 + 10 × 200 = 20,000 logs.
const (
	logsBlocks  = 5000
	logsTotal   = 20_000
	logsEmitter = "0x00000000000000000000000000000000000e2e20"
)

func logsAt(block uint64) int {
	switch {
	case block%10 != 0 || block > 4600:
		return 0
	case block > 2000 && block <= 2100:
		return 200
	}
	return 40
}

// scLogsSplit (issue 20): three upstreams over one anvil, behind fault proxies capping eth_getLogs at 500, 1,000
// and 2,000 blocks and each at 1,000 logs, refusing in different providers' words and codes (Alchemy's two texts
// with their hint ranges; geth's range cap and Infura's result cap with its hint; dRPC's range cap and Erigon's
// result cap, no hint). go-ethereum's FilterLogs over the 5,000 blocks through the balancer returns exactly what
// anvil direct returns (20,000 logs, deep-equal), and the raw eth_getLogs answer is the node's bytes. The upstream
// eth_getLogs calls (the proxies' counts; no health check sends eth_getLogs) and evmlb_logs_splits_total /
// evmlb_logs_pieces_total are in the log. Then the same request again, at a head where the range is not final, and
// once anvil's finalized block (head − 64) has passed it (cache_max_answer_bytes raised to 16 MiB): not cached
// (x-evmlb-cache skip) while the range is not final, then (a miss, then) a hit with no upstream call.
func scLogsSplit(s *S) {
	// --prune-history: no state kept per block, which makes mining 5,000 blocks about twice as fast (eth_getLogs reads
	// the blocks' receipts, not state).
	n := anvil.StartTWith(s.T, anvil.Options{ChainID: 31337, Args: []string{"--prune-history"}})
	s.name(strings.TrimPrefix(n.URL, "http://"), "<node 31337>")
	start := time.Now()
	_, err := n.Call(s.Ctx, "anvil_setCode", logsEmitter, anvil.LogsCode)
	s.must(err == nil, "anvil_setCode: %v", err)
	// Automine off: each transaction waits in the pool, and the next anvil_mine puts it in its first block.
	_, err = n.Call(s.Ctx, "evm_setAutomine", false)
	s.must(err == nil, "evm_setAutomine: %v", err)
	var head uint64 // the last block mined
	for b := uint64(1); b <= logsBlocks; b++ {
		k := logsAt(b)
		if k == 0 {
			continue
		}
		if b-1 > head { // the previous transaction's block (if any) and the empty ones up to b-1
			_, err := n.Call(s.Ctx, "anvil_mine", rpc.Hex(b-1-head))
			s.must(err == nil, "anvil_mine: %v", err)
		}
		_, err := n.Call(s.Ctx, "eth_sendTransaction", map[string]string{"from": anvil.DevAddress, "to": logsEmitter,
			"data": fmt.Sprintf("0x%064x", k), "gas": "0x100000"})
		s.must(err == nil, "eth_sendTransaction: %v", err)
		head = b - 1
	}
	head, err = n.Mine(s.Ctx, logsBlocks-head)
	s.must(err == nil && head == logsBlocks, "head %d (%v), want %d", head, err, logsBlocks)
	s.Logf("MEASURE %s logs-split: the chain (%d blocks, %d logs) made in %v", s.Host.Name(), logsBlocks, logsTotal, time.Since(start).Round(time.Millisecond))

	caps := []faultproxy.LogsLimit{
		{Range: 500, Results: 1000, RangeWords: faultproxy.AlchemyWords, ResultsWords: faultproxy.AlchemyWords},
		{Range: 1000, Results: 1000, RangeWords: faultproxy.GethWords, ResultsWords: faultproxy.InfuraWords},
		{Range: 2000, Results: 1000, RangeWords: faultproxy.DRPCWords, ResultsWords: faultproxy.ErigonWords},
	}
	var proxies []*faultproxy.Proxy
	var ups []target.Upstream
	for i, c := range caps {
		p, up := s.Upstream(n, "ethereum", fmt.Sprintf("u%d", c.Range))
		p.SetLogsLimit(caps[i])
		proxies, ups = append(proxies, p), append(ups, up)
	}
	// cache_max_answer_bytes 16 MiB: the merged answer (about 9.5 MiB) may be kept once its range is final.
	b := s.StartConfig(target.Config{Upstreams: ups, Chains: `{"ethereum":{"cache_max_answer_bytes":16777216}}`})
	b.waitHead("ethereum", rpc.Hex(logsBlocks))

	q := ethereum.FilterQuery{FromBlock: big.NewInt(1), ToBlock: big.NewInt(logsBlocks)}
	direct, err := ethclient.DialContext(s.Ctx, n.URL)
	s.must(err == nil, "dial anvil: %v", err)
	defer direct.Close()
	want, err := direct.FilterLogs(s.Ctx, q)
	s.must(err == nil && len(want) == logsTotal, "anvil direct: %d logs, %v", len(want), err)
	s.must(want[0].BlockNumber == 10 && want[len(want)-1].BlockNumber == 4600, "anvil's logs from block %d to %d, want 10 to 4600", want[0].BlockNumber, want[len(want)-1].BlockNumber)
	lb, err := s.ethclient(s.Ctx, b.Inst.URL+"/ethereum")
	s.must(err == nil, "dial the balancer: %v", err)
	defer lb.Close()

	start = time.Now()
	got, err := lb.FilterLogs(s.Ctx, q)
	took := time.Since(start)
	if err != nil {
		s.Fatalf("FilterLogs through the balancer: %v\n--- log ---\n%s", err, tail(b.Inst.Logs(), 4000))
	}
	equal := reflect.DeepEqual(got, want)
	s.must(equal && len(got) == logsTotal, "FilterLogs through the balancer: %d logs, equal to anvil's %d: %t", len(got), len(want), equal)
	s.Note("FilterLogs 1-5000", fmt.Sprintf("%d logs, equal to anvil direct: %t", len(got), equal))
	calls := func() (string, int) {
		var parts []string
		total := 0
		for i, p := range proxies {
			byRange, byResults := p.LogsRefused()
			c := p.Count("eth_getLogs")
			total += c
			parts = append(parts, fmt.Sprintf("u%d: %d calls (%d refused for the range, %d for the logs)", caps[i].Range, c, byRange, byResults))
		}
		return strings.Join(parts, "; "), total
	}
	perProxy, total := calls()
	var splits, pieces float64
	b.waitAdmin("/admin/metrics", "evmlb_logs_splits_total to count the split", func(body []byte) bool {
		splits, pieces = metricValue(body, "evmlb_logs_splits_total"), metricValue(body, "evmlb_logs_pieces_total")
		return splits >= 1
	})
	s.Logf("MEASURE %s logs-split: FilterLogs over %d blocks, %d logs in %v; upstream eth_getLogs calls %d (%s); evmlb_logs_splits_total %v, evmlb_logs_pieces_total %v",
		s.Host.Name(), logsBlocks, len(got), took.Round(time.Millisecond), total, perProxy, splits, pieces)

	// The same range again, raw: the node's bytes. The range is not final (anvil's finalized block is its head − 64).
	body := rpc.Request(1, "eth_getLogs", map[string]string{"fromBlock": "0x1", "toBlock": rpc.Hex(logsBlocks)})
	wantRaw := s.direct(n, body)
	again := func(what string) string {
		for _, p := range proxies {
			p.ResetCounts()
		}
		r := b.Post("ethereum", body)
		same := r.Status == http.StatusOK && bytes.Equal(r.Body, wantRaw.Body)
		s.must(same, "%s: %d %s, want the node's %d bytes", what, r.Status, rpc.Trunc(r.Body, 300), len(wantRaw.Body))
		perProxy, total := calls()
		cache := r.Header.Get(cacheHeader)
		s.Logf("MEASURE %s logs-split: %s: %d bytes, x-evmlb-cache %q; upstream eth_getLogs calls %d (%s)",
			s.Host.Name(), what, len(r.Body), cache, total, perProxy)
		s.must((cache == "hit") == (total == 0), "%s: x-evmlb-cache %q with %d upstream calls", what, cache, total)
		return cache
	}
	cache := again("eth_getLogs 1-5000 again, not final")
	s.must(cache == "skip", "a range not final: x-evmlb-cache %q, want skip", cache)
	s.Note("eth_getLogs 1-5000 again, not final", "the node's bytes; x-evmlb-cache skip")
	_, err = n.Mine(s.Ctx, 100)
	s.must(err == nil, "anvil_mine: %v", err)
	b.waitFinalized("ethereum", logsBlocks)
	// /admin/chains shows the chain object's finalized block; a Worker runtime learns it at its next exchange, and
	// each runtime of the wazero host keeps its own memory tier: asked until a hit, each answer the node's bytes.
	for i := 1; cache != "hit"; i++ {
		s.must(i <= 6, "the final range was never answered from the cache (last x-evmlb-cache %q)", cache)
		cache = again(fmt.Sprintf("eth_getLogs 1-5000, final, #%d", i))
		s.must(cache == "hit" || cache == "miss" || cache == "skip", "x-evmlb-cache %q", cache)
	}
	s.Note("eth_getLogs 1-5000, final", "the node's bytes; then a hit with no upstream call")
}

// metricValue sums the samples of a metric (every label set) in a Prometheus text body.
func metricValue(body []byte, name string) float64 {
	var sum float64
	for _, line := range strings.Split(string(body), "\n") {
		rest, ok := strings.CutPrefix(line, name)
		if !ok || rest == "" || (rest[0] != '{' && rest[0] != ' ') {
			continue
		}
		var v float64
		if i := strings.LastIndexByte(rest, ' '); i >= 0 {
			if _, err := fmt.Sscan(rest[i+1:], &v); err == nil {
				sum += v
			}
		}
	}
	return sum
}
