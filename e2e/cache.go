package e2e

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/evmlb/evmlb/e2e/internal/faultproxy"
	"github.com/evmlb/evmlb/e2e/internal/rpc"
	"github.com/evmlb/evmlb/e2e/internal/target"
)

// Issue 19's cache seen from outside: the hit ratio of repeated finalized reads (header and metric), and identical
// concurrent reads sent upstream once. Both fail until the cache is there: nothing answers x-evmlb-cache, nothing
// counts evmlb_cache_requests_total, /admin/chains shows no finalized block.

// cacheHeader is the header every single call's answer carries: hit, miss, shared or skip.
const cacheHeader = "X-Evmlb-Cache"

// chainFinalized reads the chain's finalized block from an /admin/chains body (a number or a hex quantity);
// ok is false while the chain shows none.
func chainFinalized(body []byte, chain string) (uint64, bool) {
	var doc struct {
		Chains []map[string]json.RawMessage `json:"chains"`
	}
	if json.Unmarshal(body, &doc) != nil {
		return 0, false
	}
	for _, c := range doc.Chains {
		var name string
		if json.Unmarshal(c["chain"], &name) != nil || name != chain {
			continue
		}
		raw, ok := c["finalized"]
		if !ok {
			return 0, false
		}
		var n uint64
		if json.Unmarshal(raw, &n) == nil {
			return n, n > 0
		}
		if q, err := rpc.Quantity(raw); err == nil {
			return q, q > 0
		}
	}
	return 0, false
}

// waitFinalized waits until /admin/chains shows the chain's finalized block at or above n.
func (b *Balancer) waitFinalized(chain string, n uint64) uint64 {
	b.s.Helper()
	body := b.waitAdmin("/admin/chains", fmt.Sprintf("the chain's finalized block (at least %d) in /admin/chains", n), func(body []byte) bool {
		f, ok := chainFinalized(body, chain)
		return ok && f >= n
	})
	f, _ := chainFinalized(body, chain)
	return f
}

// cacheCounts sums evmlb_cache_requests_total of chain by result from a Prometheus text body.
func cacheCounts(body []byte, chain string) map[string]float64 {
	out := map[string]float64{}
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		rest, ok := strings.CutPrefix(line, "evmlb_cache_requests_total{")
		if !ok {
			continue
		}
		labels, value, ok := strings.Cut(rest, "} ")
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if err != nil {
			continue
		}
		l := map[string]string{}
		for _, kv := range strings.Split(labels, ",") {
			k, val, _ := strings.Cut(kv, "=")
			l[k] = strings.Trim(val, `"`)
		}
		if l["chain"] == chain {
			out[l["result"]] += v
		}
	}
	return out
}

// cacheRead is one request of the hit-ratio scenario.
type cacheRead struct {
	name   string
	method string
	params []any
}

// Issue 19, done means 2: repeated reads of finalized blocks (by number, with and without transactions, and by
// hash) and eth_chainId-class calls: after the first of each, at least 99% carry x-evmlb-cache: hit, and
// evmlb_cache_requests_total agrees with the headers. Every answer is the node's result with the client's id.
func scCacheHitRatio(s *S) {
	n := s.Node(31337, 100) // anvil's finalized block is 64 below its head: 36
	pa, ua := s.Upstream(n, "ethereum", "a")
	pb, ub := s.Upstream(n, "ethereum", "b")
	b := s.Start([]target.Upstream{ua, ub}, nil)
	b.Post("ethereum", rpc.Request(1, "eth_chainId")) // wakes the chain: its first checks
	fin := b.waitFinalized("ethereum", 30)
	hash10, err := n.Call(s.Ctx, "eth_getBlockByNumber", "0xa", false)
	if err != nil {
		s.Fatal(err)
	}
	var blk struct{ Hash string }
	if err := json.Unmarshal(hash10, &blk); err != nil || blk.Hash == "" {
		s.Fatalf("block 10: %s", hash10)
	}
	reads := []cacheRead{
		{"eth_chainId", "eth_chainId", nil},
		{"net_version", "net_version", nil},
		{"block 1", "eth_getBlockByNumber", []any{"0x1", false}},
		{"block 10", "eth_getBlockByNumber", []any{"0xa", false}},
		{"block 20 full", "eth_getBlockByNumber", []any{"0x14", true}},
		{"block 30", "eth_getBlockByNumber", []any{"0x1e", false}},
		{"block 10 by hash", "eth_getBlockByHash", []any{blk.Hash, false}},
	}
	want := make([]json.RawMessage, len(reads))
	for i, q := range reads {
		res, err := n.Call(s.Ctx, q.method, q.params...)
		if err != nil {
			s.Fatalf("%s from the node: %v", q.name, err)
		}
		want[i] = res
	}
	var mu sync.Mutex
	headers := map[string]int{}
	var bad []string
	ask := func(i, id int) string {
		q := reads[i]
		r := b.Post("ethereum", rpc.Request(id, q.method, q.params...))
		m, err := rpc.Decode(r.Body)
		switch {
		case err != nil || r.Status != http.StatusOK || m.Error != nil:
			return fmt.Sprintf("%s: %d %s", q.name, r.Status, rpc.Trunc(r.Body, 200))
		case string(m.ID) != strconv.Itoa(id):
			return fmt.Sprintf("%s: id %s, sent %d", q.name, m.ID, id)
		case !bytes.Equal(m.Result, want[i]):
			return fmt.Sprintf("%s: result %s, the node's %s", q.name, rpc.Trunc(m.Result, 200), rpc.Trunc(want[i], 200))
		}
		h := cmp.Or(r.Header.Get(cacheHeader), "(none)")
		mu.Lock()
		headers[h]++
		mu.Unlock()
		return ""
	}
	for i := range reads { // the first of each: a miss (or a hit: eth_chainId answers locally)
		if e := ask(i, 1000+i); e != "" {
			s.Fatal(e)
		}
	}
	headers = map[string]int{}
	// The firsts counted (each isolate's counts reach the chain object with its next exchange), so that the
	// repeats' are what the metric grows by from here.
	var before map[string]float64
	b.waitAdmin("/admin/metrics", fmt.Sprintf("evmlb_cache_requests_total to count the first %d reads", len(reads)), func(body []byte) bool {
		before = cacheCounts(body, "ethereum")
		sum := 0.0
		for _, v := range before {
			sum += v
		}
		return sum >= float64(len(reads))
	})
	pa.ResetCounts()
	pb.ResetCounts()
	const repeats = 150
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for k := w; k < repeats*len(reads); k += 4 {
				if e := ask(k%len(reads), 2000+k); e != "" {
					mu.Lock()
					bad = append(bad, e)
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	for _, e := range bad[:min(len(bad), 10)] {
		s.Error(e)
	}
	s.must(len(bad) == 0, "%d wrong answers", len(bad))
	total := repeats * len(reads)
	upstream := map[string]int{}
	for _, p := range []*faultproxy.Proxy{pa, pb} {
		for m, c := range p.Counts() {
			upstream[m] += c
		}
	}
	s.Logf("MEASURE %s cache-hit-ratio: finalized %d; %d repeats of %d reads: x-evmlb-cache %s; upstream requests meanwhile (health checks included) %s",
		s.Host.Name(), fin, total, len(reads), fmtCounts(headers), fmtCounts(upstream))
	hits := headers["hit"]
	s.must(hits*100 >= total*99, "%d of %d repeated reads carry %s: hit (%.1f%%), want at least 99%%: %s", hits, total, cacheHeader, 100*float64(hits)/float64(total), fmtCounts(headers))
	// The metric: every isolate's counts reach the chain object with its next exchange; wait until the repeats
	// are all counted, then they must agree with the headers.
	var after map[string]float64
	b.waitAdmin("/admin/metrics", fmt.Sprintf("evmlb_cache_requests_total to count the %d repeats", total), func(body []byte) bool {
		after = cacheCounts(body, "ethereum")
		sum := 0.0
		for r, v := range after {
			sum += v - before[r]
		}
		return sum >= float64(total)
	})
	for _, r := range []string{"hit", "miss", "shared", "skip"} {
		got := int(after[r] - before[r])
		s.must(got == headers[r], "evmlb_cache_requests_total{result=%q} grew by %d, the answers carried %s: %s %d times (metric %v → %v)", r, got, cacheHeader, r, headers[r], before, after)
	}
	s.Note("repeated finalized and chain id reads that hit", "at least 99%")
	s.Note("evmlb_cache_requests_total", "agrees with the headers")
}

func fmtCounts[V int | float64](m map[string]V) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %v", k, m[k])
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

// startOneRuntime starts the balancer as StartConfig does, with the wazero host's pool of Worker runtimes at one:
// identical requests share an upstream attempt within one isolate, and the wazero host spreads connections over
// its runtimes (workerd through wrangler dev runs one isolate).
func (s *S) startOneRuntime(cfg target.Config) *Balancer {
	s.Helper()
	if w, ok := s.Host.(*target.Wazero); ok {
		one := *w
		one.Workers = 1
		return s.startOn(&one, cfg)
	}
	return s.StartConfig(cfg)
}

// Issue 19, done means 3's last point as a check: 16 concurrent identical eth_calls (each with its own id) in
// front of upstreams 300 ms away make 1 upstream attempt, and every client gets the answer with its own id; three
// rounds, each with other calldata.
func scCacheCoalesce(s *S) {
	n := s.Node(31337, 100)
	pa, ua := s.Upstream(n, "ethereum", "a")
	pb, ub := s.Upstream(n, "ethereum", "b")
	b := s.startOneRuntime(target.Config{Upstreams: []target.Upstream{ua, ub}})
	b.Post("ethereum", rpc.Request(1, "eth_chainId"))
	b.waitFinalized("ethereum", 20)
	pa.SetDelay(300 * time.Millisecond)
	pb.SetDelay(300 * time.Millisecond)
	const clients = 16
	for round := range 3 {
		data := fmt.Sprintf("0x%064x", 0xc0a1e5ce+round)
		pa.ResetCounts()
		pb.ResetCounts()
		start := make(chan struct{})
		answers := make([]*rpc.Response, clients)
		var wg sync.WaitGroup
		for i := range clients {
			wg.Go(func() {
				<-start
				answers[i] = b.Post("ethereum", rpc.Request(100*round+i, "eth_call", map[string]string{"to": "0x0000000000000000000000000000000000000004", "data": data}, "0x14"))
			})
		}
		close(start)
		wg.Wait()
		headers := map[string]int{}
		for i, r := range answers {
			m, err := rpc.Decode(r.Body)
			s.must(err == nil && r.Status == http.StatusOK && m.Error == nil, "round %d client %d: %d %s", round, i, r.Status, rpc.Trunc(r.Body, 200))
			s.must(string(m.ID) == strconv.Itoa(100*round+i), "round %d client %d: id %s", round, i, m.ID)
			s.must(string(m.Result) == `"`+data+`"`, "round %d client %d: result %s, want the calldata back", round, i, rpc.Trunc(m.Result, 200))
			headers[cmp.Or(r.Header.Get(cacheHeader), "(none)")]++
		}
		attempts := pa.Count("eth_call") + pb.Count("eth_call")
		s.Logf("MEASURE %s cache-coalesce: round %d: %d concurrent identical eth_calls, %d upstream attempts, x-evmlb-cache %s", s.Host.Name(), round, clients, attempts, fmtCounts(headers))
		s.must(attempts == 1, "round %d: %d concurrent identical eth_calls made %d upstream attempts, want 1 (x-evmlb-cache %s)", round, clients, attempts, fmtCounts(headers))
	}
	s.Note("upstream attempts for 16 concurrent identical eth_calls", "1")
}

// EnvCacheMemoryAnswers sets how many distinct large answers the cache-memory scenario reads: by default 10,000
// (the figure) in the wazero host, 2,000 in workerd (wrangler dev answers them at about 40 a second: 10,000
// take 4 minutes; 2,000 are still 200 MiB, six times the cap).
const EnvCacheMemoryAnswers = "EVMLB_CACHE_MEMORY_ANSWERS"

// cacheMemoryCap is the isolate tier's cap the cache-memory scenario sets (EVMLB_CACHE_MEMORY_BYTES: 16 MiB, its
// default).
const cacheMemoryCap = 16 << 20

// cacheWorkingSet is the Worker runtime's usual working set when it answers 100 KiB eth_calls four at a time:
// measured before the cache, its linear memory after 10,000 distinct ones was 11.2 MiB in the wazero host (one
// Worker runtime) and 11.5 MiB in workerd (7.0 MiB after the first in both); 16 MiB leaves one more of Go's 4 MiB
// heap arenas. The bound is twice the cap plus this: what the tier keeps is live data of Go's heap, and Go's GC
// (GOGC 100) lets the heap grow to twice its live data before it collects. Measured with the cache (its first
// version, cap 16 MiB): 41.5 MiB after 2,000 answers, 42.0 MiB after 10,000, above the cap plus the working set
// (32 MiB), within twice the cap plus it (48 MiB); with the cap at 32 MiB, 66 MiB.
const cacheWorkingSet = 16 << 20

// bigAnswerContract answers an eth_call with 51,200 bytes (about 100 KiB of JSON as hex): the call's first 32
// bytes of calldata, then zeros, so that each calldata makes another answer.
//
//	PUSH1 0 CALLDATALOAD PUSH1 0 MSTORE PUSH2 0xc800 PUSH1 0 RETURN
const bigAnswerCode = "0x600035600052" + "61c800" + "6000f3"

var bigAnswerContract = "0x00000000000000000000000000000000000b1600"

// Issue 19, done means 4: EVMLB_CACHE_MEMORY_ANSWERS distinct eth_calls (10,000; 2,000 in workerd) at a finalized
// block, each answered with about 100 KiB, through one Worker runtime (the wazero host with one; workerd's one
// isolate): the runtime's linear memory after them stays within the isolate tier's cap (twice: Go's GC) plus the
// usual working set, and does not grow from a fifth of them to all.
// When the answers carry x-evmlb-cache (a build with the cache), the last ones read again must be hits: the large
// answers were cached, so the bound held with the cache full.
func scCacheMemory(s *S) {
	def := 10_000
	if s.Host.Name() == "workerd" {
		def = 2_000
	}
	count := s.envCount(EnvCacheMemoryAnswers, def)
	n := s.Node(31337, 1)
	if _, err := n.Call(s.Ctx, "anvil_setCode", bigAnswerContract, bigAnswerCode); err != nil {
		s.Fatal(err)
	}
	if _, err := n.Mine(s.Ctx, 100); err != nil { // the code is in every block from 2: block 20 is finalized
		s.Fatal(err)
	}
	_, ua := s.Upstream(n, "ethereum", "a")
	b := s.startOneRuntime(target.Config{Upstreams: []target.Upstream{ua}, Env: map[string]string{"EVMLB_CACHE_MEMORY_BYTES": strconv.Itoa(cacheMemoryCap)}})
	b.Post("ethereum", rpc.Request(1, "eth_chainId"))
	call := func(i int) *rpc.Response {
		data := fmt.Sprintf("0x%064x", 0xb16000000+i)
		return b.Post("ethereum", rpc.Request(i, "eth_call", map[string]string{"to": bigAnswerContract, "data": data}, "0x14"))
	}
	check := func(i int, r *rpc.Response) string {
		m, err := rpc.Decode(r.Body)
		if err != nil || r.Status != http.StatusOK || m.Error != nil {
			return fmt.Sprintf("call %d: %d %s", i, r.Status, rpc.Trunc(r.Body, 200))
		}
		want := fmt.Sprintf(`"0x%064x`, 0xb16000000+i)
		if len(m.Result) != 2+2+2*51200 || !bytes.HasPrefix(m.Result, []byte(want)) {
			return fmt.Sprintf("call %d: result of %d bytes %s…", i, len(m.Result), rpc.Trunc(m.Result, 80))
		}
		return ""
	}
	if e := check(0, call(0)); e != "" {
		s.Fatal(e)
	}
	base := maxMemory(runtimes(s, b))
	headers := map[string]int{}
	var mu sync.Mutex
	var bad []string
	send := func(from, to int) {
		var wg sync.WaitGroup
		for w := range 4 {
			wg.Go(func() {
				for i := from + w; i <= to; i += 4 {
					r := call(i)
					e := check(i, r)
					mu.Lock()
					headers[cmp.Or(r.Header.Get(cacheHeader), "(none)")]++
					if e != "" && len(bad) < 10 {
						bad = append(bad, e)
					}
					mu.Unlock()
				}
			})
		}
		wg.Wait()
	}
	start := time.Now()
	// A fifth first (2,000 answers are 200 MiB; 400, 40 MiB: either fills the tier more than twice over), then the
	// rest: the memory must not grow with the number of answers.
	send(1, count/5)
	mid := maxMemory(runtimes(s, b))
	send(count/5+1, count)
	took := time.Since(start)
	for _, e := range bad {
		s.Error(e)
	}
	after := maxMemory(runtimes(s, b))
	again := map[string]int{}
	for i := count - 9; i <= count; i++ {
		r := call(i)
		if e := check(i, r); e != "" {
			s.Error(e)
		}
		again[cmp.Or(r.Header.Get(cacheHeader), "(none)")]++
	}
	mib := func(v uint64) string { return fmt.Sprintf("%.1f MiB", float64(v)/(1<<20)) }
	s.Logf("MEASURE %s cache-memory: %d distinct answers of about 100 KiB in %v: linear memory %s after one, %s after %d, %s after all (bound: twice the cap %s + working set %s); x-evmlb-cache %s; the last 10 again: %s",
		s.Host.Name(), count, took.Round(time.Millisecond), mib(base), mib(mid), count/5, mib(after), mib(cacheMemoryCap), mib(cacheWorkingSet), fmtCounts(headers), fmtCounts(again))
	s.must(after <= mid+4<<20, "the runtime's linear memory grew from %s after %d distinct answers of about 100 KiB to %s after %d: more than one 4 MiB heap arena", mib(mid), count/5, mib(after), count)
	s.must(after <= 2*cacheMemoryCap+cacheWorkingSet, "the runtime's linear memory is %s after %d distinct answers of about 100 KiB, above twice the isolate tier's cap %s plus the working set %s", mib(after), count, mib(cacheMemoryCap), mib(cacheWorkingSet))
	if headers["(none)"] < count {
		s.must(again["hit"] == 10, "the last 10 of the large answers read again: x-evmlb-cache %s, want 10 hits (else the bound held with nothing cached)", fmtCounts(again))
	}
	s.Note("linear memory after the large answers", "within the cap plus the working set")
}
