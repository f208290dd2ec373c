package main

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/evmlb/evmlb/e2e/internal/anvil"
	"github.com/evmlb/evmlb/e2e/internal/faultproxy"
	"github.com/evmlb/evmlb/e2e/internal/rpc"
	"github.com/evmlb/evmlb/e2e/internal/target"
)

// Issue 19's figures: the balancer's upstream 50 ms away (a fault proxy's delay in front of anvil), and in each
// host, side by side in the same run, a hit (the same finalized block read again and again) and a miss (an
// eth_call at a finalized block with calldata never sent before); beside them, in workerd, the plain-JS Worker
// that answers without a fetch (the floor of an answer from the edge) and the one-fetch floor through the same
// delay; then 16 concurrent identical eth_calls and the upstream attempts the proxy saw. The wazero host runs one
// Worker runtime here, so that the 16 share an isolate as in workerd (it spreads connections over its runtimes).

// upstreamDelay is how far the balancer's upstream is.
const upstreamDelay = 50 * time.Millisecond

// cacheHitBlock is the finalized block the hit rows read (anvil's finalized block is 64 below its head).
const cacheHitBlock = "0x14"

// cacheRow is one row of the cache table: latencies and the x-evmlb-cache values answered.
type cacheRow struct {
	result
	headers map[string]int
}

func runCache(n int, d time.Duration, hostList string) error {
	ctx := context.Background()
	node, err := anvil.Start(ctx, anvil.Options{ChainID: 31337})
	if err != nil {
		return err
	}
	defer node.Stop()
	if _, err := node.Mine(ctx, 100); err != nil {
		return err
	}
	proxy, err := faultproxy.New(node.URL, faultproxy.Options{})
	if err != nil {
		return err
	}
	defer proxy.Close()
	proxy.SetDelay(upstreamDelay)
	tmp, err := os.MkdirTemp("", "evmlb-bench-cache-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	hitBody := rpc.Request(1, "eth_getBlockByNumber", cacheHitBlock, false)
	var missSeq atomic.Int64
	missBody := func() []byte {
		data := fmt.Sprintf("0x%032x%032x", uint64(time.Now().UnixNano()), uint64(missSeq.Add(1)))
		return rpc.Request(1, "eth_call", map[string]string{"to": "0x0000000000000000000000000000000000000004", "data": data}, cacheHitBlock)
	}
	type tgt struct {
		name, url string
		body      func() []byte
		count     int
	}
	var targets []tgt
	var notes []string
	var stops []func()
	defer func() {
		for _, stop := range stops {
			stop()
		}
	}()
	misses := max(n/10, 20)
	targets = append(targets, tgt{"anvil through the 50 ms proxy", proxy.URL(), func() []byte { return hitBody }, misses})
	wanted := strings.Split(hostList, ",")
	type balancer struct {
		host string
		url  string
		base string
	}
	var balancers []balancer
	if slices.Contains(wanted, "workerd") && (target.Workerd{}).Available() == nil {
		sctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
		if inst, err := target.StartNoFetchFloor(sctx); err != nil {
			notes = append(notes, "plain-JS no-fetch floor: failed to start: "+firstLine(err))
		} else {
			stops = append(stops, inst.Stop)
			targets = append(targets, tgt{"plain-JS floor in workerd, no fetch", inst.URL, func() []byte { return hitBody }, n})
		}
		if inst, err := target.StartFloor(sctx, proxy.URL()); err != nil {
			notes = append(notes, "plain-JS one-fetch floor: failed to start: "+firstLine(err))
		} else {
			stops = append(stops, inst.Stop)
			targets = append(targets, tgt{"plain-JS floor in workerd, one fetch 50 ms away", inst.URL, func() []byte { return hitBody }, misses})
		}
		cancel()
	}
	for _, h := range []target.Host{&target.Wazero{CacheDir: filepath.Join(tmp, "cache"), Workers: 1}, target.Workerd{}} {
		if !slices.Contains(wanted, h.Name()) {
			continue
		}
		if err := h.Available(); err != nil {
			notes = append(notes, fmt.Sprintf("%s: skipped: %v", h.Name(), err))
			continue
		}
		// Two chains on the same upstream: ethereum with the cache, off with it off (the chain setting cache:
		// false), so that a miss is measured with and without the cache in the same runtime and run. A build that
		// does not know the setting refuses the configuration: then ethereum alone.
		offCfg, _ := json.Marshal(map[string]any{
			"chains": map[string]any{"off": map[string]any{"cache": false}},
			"upstreams": []target.Upstream{
				{Chain: "ethereum", Name: "far", URL: proxy.URL()},
				{Chain: "off", Name: "far-off", URL: proxy.URL()},
			},
		})
		cfg := target.Config{
			RawUpstreamConfig: string(offCfg),
			AdminPassword:     "bench",
			Env:               map[string]string{"EVMLB_HEALTH_INTERVAL": "2s", "EVMLB_ATTEMPT_TIMEOUT": "5s"},
			StateDir:          filepath.Join(tmp, "state-"+h.Name()),
		}
		var inst *target.Instance
		withOff := true
		for _, try := range []bool{true, false} {
			if !try {
				withOff = false
				cfg.RawUpstreamConfig = ""
				cfg.Upstreams = []target.Upstream{{Chain: "ethereum", Name: "far", URL: proxy.URL()}}
				cfg.StateDir += "-plain"
			}
			sctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
			inst, err = h.Start(sctx, cfg)
			cancel()
			if err == nil && (!try || warmOnce(inst.URL+"/off") == nil) {
				break
			}
			if err == nil {
				inst.Stop()
				notes = append(notes, fmt.Sprintf("%s: the chain setting cache: false is refused (a build without the cache?): no miss with the cache off", h.Name()))
			}
		}
		if err != nil {
			notes = append(notes, fmt.Sprintf("%s: failed to start: %v", h.Name(), firstLine(err)))
			continue
		}
		stops = append(stops, inst.Stop)
		url := inst.URL + "/ethereum"
		if err := warm(url); err != nil {
			notes = append(notes, fmt.Sprintf("%s: not answering: %v", h.Name(), err))
			continue
		}
		if f, ok := waitFinalized(inst.URL, 20*time.Second); ok {
			notes = append(notes, fmt.Sprintf("%s: /admin/chains shows finalized %d", h.Name(), f))
		} else {
			notes = append(notes, fmt.Sprintf("%s: /admin/chains shows no finalized block after 20 s: nothing is cached as finalized (a build without issue 19's cache?)", h.Name()))
		}
		balancers = append(balancers, balancer{h.Name(), url, inst.URL})
		targets = append(targets,
			tgt{"balancer in " + h.Name() + ", hit (finalized block again)", url, func() []byte { return hitBody }, n},
			tgt{"balancer in " + h.Name() + ", miss (eth_call never sent before)", url, missBody, misses})
		if withOff {
			targets = append(targets, tgt{"balancer in " + h.Name() + ", the same with the chain's cache off", inst.URL + "/off", missBody, misses})
		}
	}

	const rounds = 5
	rows := make([]cacheRow, len(targets))
	accs := make([]acc, len(targets))
	var hmu sync.Mutex
	for i := range rows {
		rows[i].headers = map[string]int{}
	}
	for round := range rounds {
		for i, t := range targets {
			lat, errs, elapsed := run1(t.url, 1, max(t.count/rounds, 1), d/rounds, func(int) ([]byte, func(*rpc.Response) bool) {
				return t.body(), func(r *rpc.Response) bool {
					hmu.Lock()
					rows[i].headers[cmp.Or(r.Header.Get("X-Evmlb-Cache"), "(none)")]++
					hmu.Unlock()
					return r.Status == http.StatusOK && strings.Contains(string(r.Body), `"result"`)
				}
			})
			accs[i].add(raw{lat, errs, elapsed})
			fmt.Fprintf(os.Stderr, "bench: cache: %s round %d done\n", t.name, round+1)
		}
	}
	for i, t := range targets {
		rows[i].result = accs[i].result(t.name, 1)
	}

	// 16 concurrent identical eth_calls per balancer, three times with other calldata: the upstream attempts.
	var coalesce []string
	for _, b := range balancers {
		var counts []string
		for round := range 3 {
			body := rpc.Request(7, "eth_call", map[string]string{"to": "0x0000000000000000000000000000000000000004", "data": fmt.Sprintf("0x%032x%032x", uint64(time.Now().UnixNano()), uint64(round))}, cacheHitBlock)
			before := proxy.Count("eth_call")
			start := make(chan struct{})
			var wg sync.WaitGroup
			var failed atomic.Int64
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16, IdleConnTimeout: 2 * time.Second}} // under workerd's 5 s keep-alive
			for range 16 {
				wg.Go(func() {
					<-start
					c, cancel := context.WithTimeout(ctx, 30*time.Second)
					defer cancel()
					r, err := rpc.Post(c, client, b.url, body)
					if err != nil || r.Status != http.StatusOK {
						failed.Add(1)
					}
				})
			}
			close(start)
			wg.Wait()
			client.CloseIdleConnections()
			s := fmt.Sprint(proxy.Count("eth_call") - before)
			if f := failed.Load(); f > 0 {
				s += fmt.Sprintf(" (%d failed)", f)
			}
			counts = append(counts, s)
		}
		coalesce = append(coalesce, fmt.Sprintf("%s: 16 concurrent identical eth_calls → upstream attempts %s (three rounds; issue 19: 1)", b.host, strings.Join(counts, ", ")))
	}

	fmt.Println()
	fmt.Printf("Issue 19: the upstream %v away (fault proxy delay), concurrency 1\n", upstreamDelay)
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "target\trequests\terrors\tp50\tp99\tx-evmlb-cache\t")
	p50 := map[string]time.Duration{}
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\t%s\t\n", r.target, r.requests, r.errors, ms(r.p50), ms(r.p99), fmtHeaders(r.headers))
		p50[r.target] = r.p50
	}
	tw.Flush()
	if floor, ok := p50["plain-JS floor in workerd, no fetch"]; ok && floor > 0 {
		if hit, ok := p50["balancer in workerd, hit (finalized block again)"]; ok {
			fmt.Printf("workerd: hit p50 %s = %.2f× the no-fetch floor's p50 %s (issue 19: within 1.2×)\n", ms(hit), float64(hit)/float64(floor), ms(floor))
		}
	}
	if hit, ok := p50["balancer in wazero, hit (finalized block again)"]; ok {
		fmt.Printf("wazero: hit p50 %s (issue 19: under 1 ms)\n", ms(hit))
	}
	for _, h := range []string{"wazero", "workerd"} {
		hit, ok1 := p50["balancer in "+h+", hit (finalized block again)"]
		miss, ok2 := p50["balancer in "+h+", miss (eth_call never sent before)"]
		if ok1 && ok2 && hit > 0 {
			fmt.Printf("%s: miss p50 %s, hit p50 %s: a hit saves %s\n", h, ms(miss), ms(hit), ms(miss-hit))
		}
		if off, ok := p50["balancer in "+h+", the same with the chain's cache off"]; ok && ok2 && off > 0 {
			fmt.Printf("%s: miss p50 %s with the cache, %s with it off: %+.1f%% (issue 19: at most +5%%)\n", h, ms(miss), ms(off), 100*(float64(miss)/float64(off)-1))
		}
	}
	for _, c := range coalesce {
		fmt.Println(c)
	}
	for _, note := range notes {
		fmt.Println(note)
	}
	return nil
}

func fmtHeaders(m map[string]int) string {
	total := 0
	keys := make([]string, 0, len(m))
	for k, v := range m {
		keys = append(keys, k)
		total += v
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %.1f%%", k, 100*float64(m[k])/float64(max(total, 1)))
	}
	return strings.Join(parts, ", ")
}

// waitFinalized polls /admin/chains (admin "bench") until the chain ethereum shows a finalized block, at most for
// limit; false when it never does.
func waitFinalized(base string, limit time.Duration) (uint64, bool) {
	for deadline := time.Now().Add(limit); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		req, _ := http.NewRequest(http.MethodGet, base+"/admin/chains", nil)
		req.SetBasicAuth("admin", "bench")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			continue
		}
		var doc struct {
			Chains []struct {
				Chain     string          `json:"chain"`
				Finalized json.RawMessage `json:"finalized"`
			} `json:"chains"`
		}
		err = json.NewDecoder(resp.Body).Decode(&doc)
		resp.Body.Close()
		if err != nil {
			continue
		}
		for _, c := range doc.Chains {
			var f uint64
			if c.Chain != "ethereum" || len(c.Finalized) == 0 {
				continue
			}
			if json.Unmarshal(c.Finalized, &f) != nil {
				f, _ = rpc.Quantity(c.Finalized)
			}
			if f > 0 {
				return f, true
			}
		}
	}
	return 0, false
}

// warmOnce sends eth_blockNumber to url until it is answered with a result, for at most 15 s.
func warmOnce(url string) error {
	var err error
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err = rpc.Call(ctx, nil, url, "eth_blockNumber")
		cancel()
		if err == nil {
			return nil
		}
	}
	return err
}
