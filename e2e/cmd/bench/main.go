// Command bench measures the balancer on loopback: it starts an anvil node
// and the balancer in each available host (workerd through wrangler dev, the
// wazero host), sends eth_blockNumber at each concurrency for a bounded count
// or time, and prints p50, p99 and requests/s per target, directly to anvil
// too, with the hosts' start times and the size of build/app.wasm; then issue 22's cost of a client key (keys.go)
// and issue 19's cache figures (cache.go).
//
//	go run ./e2e/cmd/bench [-n 2000] [-d 20s] [-c 1,16] [-hosts wazero,workerd]
//	go run ./e2e/cmd/bench -memory [-memory-sizes 1024,5120] [-hosts wazero,workerd]
//	go run ./e2e/cmd/bench -faults
//	go run ./e2e/cmd/bench -cache [-hosts wazero,workerd]
//	go run ./e2e/cmd/bench -keys [-n 2000] [-d 20s] [-c 1,16] [-hosts wazero,workerd]
package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/evmlb/evmlb/e2e/internal/anvil"
	"github.com/evmlb/evmlb/e2e/internal/repo"
	"github.com/evmlb/evmlb/e2e/internal/rpc"
	"github.com/evmlb/evmlb/e2e/internal/target"
)

func main() {
	if up := os.Getenv(goProxyEnv); up != "" {
		os.Exit(serveGoProxy(up))
	}
	n := flag.Int("n", 2000, "requests per target and concurrency (upper bound)")
	d := flag.Duration("d", 20*time.Second, "time per target and concurrency (upper bound)")
	conc := flag.String("c", "1,16", "comma-separated concurrencies")
	hosts := flag.String("hosts", "wazero,workerd", "hosts to measure, when available")
	faults := flag.Bool("faults", false, "measure issue 4's fault table instead: fault × faulty upstreams of 3 → read success rate, p50, p99")
	cache := flag.Bool("cache", false, "measure only issue 19's cache figures: hits and misses with the upstream 50 ms away, the no-fetch floor, 16 identical eth_calls → upstream attempts (the default run ends with them)")
	keys := flag.Bool("keys", false, "measure only issue 22's cost of a client key: p50 of the same request with no CLIENT_KEYS and with a key (the default run includes it)")
	memory := flag.Bool("memory", false, "measure the runtime's memory growth for large requests instead (one, then ten at once)")
	memSizes := flag.String("memory-sizes", "1024,5120", "with -memory: comma-separated request sizes in KiB")
	memURL := flag.String("memory-url", "", "with -memory: measure the balancer running at this URL (chain ethereum, in front of anvil) at the first size")
	memPassword := flag.String("memory-password", "", "with -memory-url: its ADMIN_PASSWORD")
	flag.Parse()
	var err error
	defer target.Cleanup()
	switch {
	case *memory:
		err = runMemory(*hosts, *memSizes, *memURL, *memPassword)
	case *faults:
		err = runFaults(min(*n, 200), *hosts)
	case *cache:
		err = runCache(*n, *d, *hosts)
	case *keys:
		var levels []int
		if levels, err = parseLevels(*conc); err == nil {
			err = runKeys(*n, *d, levels, *hosts)
		}
	default:
		var levels []int
		if levels, err = parseLevels(*conc); err == nil {
			err = run(*n, *d, levels, *hosts)
		}
		if err == nil {
			err = runKeys(*n, *d, levels, *hosts)
		}
		if err == nil {
			err = runCache(*n, *d, *hosts)
		}
	}
	if err != nil {
		target.Cleanup()
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// result is one row of the table.
type result struct {
	target      string
	concurrency int
	requests    int
	errors      int
	p50, p99    time.Duration
	rps         float64
}

// parseLevels reads -c: comma-separated concurrencies.
func parseLevels(conc string) ([]int, error) {
	var levels []int
	for _, f := range strings.Split(conc, ",") {
		c, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || c < 1 {
			return nil, fmt.Errorf("bad concurrency %q", f)
		}
		levels = append(levels, c)
	}
	return levels, nil
}

func run(n int, d time.Duration, levels []int, hostList string) error {
	ctx := context.Background()
	node, err := anvil.Start(ctx, anvil.Options{ChainID: 31337})
	if err != nil {
		return err
	}
	defer node.Stop()
	if _, err := node.Mine(ctx, 10); err != nil {
		return err
	}

	var rows []result
	var notes []string
	// Targets are measured interleaved, in rounds (a share of each target's requests per round), so that a change
	// in the machine's load during the run falls on every target alike: the comparison is the point.
	type named struct {
		name, url string
		small     bool // measured with eth_blockNumber only (it answers without the node)
	}
	var targets []named
	measureAll := func(name, url string) { targets = append(targets, named{name: name, url: url}) }
	var stops []func()
	defer func() {
		for _, stop := range stops {
			stop()
		}
	}()
	// floor adds a floor's target once it started and answers; a note says why not otherwise.
	floor := func(what, name, url string, stop func(), err error) bool {
		if err != nil {
			notes = append(notes, fmt.Sprintf("%s: failed to start: %v", what, firstLine(err)))
			return false
		}
		if err := warm(url); err != nil {
			notes = append(notes, fmt.Sprintf("%s: not answering: %v", what, err))
			stop()
			return false
		}
		measureAll(name, url)
		stops = append(stops, stop)
		return true
	}
	instance := func(inst *target.Instance, err error) (string, func(), error) {
		if err != nil {
			return "", nil, err
		}
		return inst.URL, inst.Stop, nil
	}
	measureAll("anvil direct", node.URL)
	if slices.Contains(strings.Split(hostList, ","), "workerd") && (target.Workerd{}).Available() == nil {
		sctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
		url, stop, err := instance(target.StartFloor(sctx, node.URL))
		cancel()
		floor("plain-JS floor", "plain-JS floor in workerd", url, stop, err)
	}

	tmp, err := os.MkdirTemp("", "evmlb-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if slices.Contains(strings.Split(hostList, ","), "wazero") && (&target.Wazero{}).Available() == nil {
		sctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
		url, stop, err := startGoProxy(sctx, node.URL)
		floor("native Go proxy", "native Go reverse proxy", url, stop, err)
		url, stop, err = instance(startGoWasmFloor(sctx, tmp, filepath.Join(tmp, "floorgo-cache"), node.URL))
		if floor("Go-wasm floor", "Go-wasm floor in wazero", url, stop, err) {
			targets = append(targets, named{name: "Go-wasm floor, answering itself", url: url + floorgoAnswerPath, small: true})
		}
		cancel()
	}
	cfg := target.Config{
		Upstreams:     []target.Upstream{{Chain: "ethereum", Name: "anvil", URL: node.URL}},
		AdminPassword: "bench",
		Env:           map[string]string{"EVMLB_HEALTH_INTERVAL": "5s"},
	}
	wanted := strings.Split(hostList, ",")
	for _, h := range []target.Host{&target.Wazero{CacheDir: filepath.Join(tmp, "cache")}, target.Workerd{}} {
		if !slices.Contains(wanted, h.Name()) {
			continue
		}
		if err := h.Available(); err != nil {
			notes = append(notes, fmt.Sprintf("%s: skipped: %v", h.Name(), err))
			continue
		}
		runs := 1
		if h.Name() == "wazero" {
			runs = 2 // the second start finds a warm compilation cache
		}
		var inst *target.Instance
		for i := range runs {
			cfg.StateDir = filepath.Join(tmp, h.Name()+strconv.Itoa(i))
			sctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
			start := time.Now()
			inst, err = h.Start(sctx, cfg)
			cancel()
			if err != nil {
				break
			}
			what := "start to first answer"
			if h.Name() == "wazero" {
				what += map[int]string{0: " (empty compilation cache)", 1: " (warm compilation cache)"}[i]
			}
			notes = append(notes, fmt.Sprintf("%s: %s: %v", h.Name(), what, time.Since(start).Round(time.Millisecond)))
			if i < runs-1 {
				inst.Stop()
			}
		}
		if err != nil {
			notes = append(notes, fmt.Sprintf("%s: failed to start: %v", h.Name(), firstLine(err)))
			continue
		}
		url := inst.URL + "/ethereum"
		if err := warm(url); err != nil {
			notes = append(notes, fmt.Sprintf("%s: not answering eth_blockNumber: %v", h.Name(), err))
			inst.Stop()
			continue
		}
		measureAll("balancer in "+h.Name(), url)
		stops = append(stops, inst.Stop)
	}
	const rounds = 5
	for _, c := range levels {
		acc := make([]acc, len(targets))
		for round := range rounds {
			for i, t := range targets {
				acc[i].add(loadRaw(t.url, c, n/rounds, d/rounds))
				fmt.Fprintf(os.Stderr, "bench: %s c=%d round %d done\n", t.name, c, round+1)
			}
		}
		for i, t := range targets {
			rows = append(rows, acc[i].result(t.name, c))
		}
	}

	// Large requests (issue 11): an eth_call whose calldata is 256 KiB and 1 MiB, at c=1, interleaved as above.
	for _, size := range []int{256 << 10, 1 << 20} {
		body := largeCall(size)
		ok := func(r *rpc.Response) bool {
			return r.Status == http.StatusOK && bytes.Contains(r.Body, []byte(`"result"`))
		}
		acc := make([]acc, len(targets))
		for range rounds {
			for i, t := range targets {
				if t.small {
					continue
				}
				lat, errs, elapsed := run1(t.url, 1, max(n/50, 20)/rounds, d/rounds, func(int) ([]byte, func(*rpc.Response) bool) { return body, ok })
				acc[i].add(raw{lat, errs, elapsed})
			}
		}
		for i, t := range targets {
			if !t.small {
				rows = append(rows, acc[i].result(fmt.Sprintf("%s, eth_call %d KiB", t.name, size>>10), 1))
			}
		}
		fmt.Fprintf(os.Stderr, "bench: eth_call of %d KiB done\n", size>>10)
	}

	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "target\tconcurrency\trequests\terrors\tp50\tp99\treq/s\t")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%s\t%s\t%.0f\t\n", r.target, r.concurrency, r.requests, r.errors, ms(r.p50), ms(r.p99), r.rps)
	}
	tw.Flush()
	fmt.Println()
	if s, err := wasmSizes(); err == nil {
		fmt.Println(s)
	} else {
		fmt.Println("app.wasm:", err)
	}
	for _, note := range notes {
		fmt.Println(note)
	}
	return nil
}

// largeCall is an eth_call to the dev account whose calldata makes the body about size bytes.
func largeCall(size int) []byte {
	data := strings.Repeat("ab", size/2)
	return []byte(`{"jsonrpc":"2.0","id":1,"method":"eth_call","params":[{"to":"` + anvil.DevAddress + `","data":"0x` + data + `"},"latest"]}`)
}

// warm waits until url answers eth_blockNumber, then sends a few more.
func warm(url string) error {
	deadline := time.Now().Add(30 * time.Second)
	ok := 0
	var last error
	for ok < 50 && time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, last = rpc.Call(ctx, nil, url, "eth_blockNumber")
		cancel()
		if last == nil {
			ok++
		} else {
			time.Sleep(100 * time.Millisecond)
		}
	}
	if ok < 50 {
		return last
	}
	return nil
}

// acc accumulates the rounds of one target at one concurrency.
type acc struct {
	lat     []time.Duration
	errs    int
	elapsed time.Duration
}

func (a *acc) add(r raw) {
	a.lat = append(a.lat, r.lat...)
	a.errs += r.errs
	a.elapsed += r.elapsed
}

func (a *acc) result(name string, c int) result {
	slices.Sort(a.lat)
	r := result{target: name, concurrency: c, requests: len(a.lat) + a.errs, errors: a.errs}
	if len(a.lat) > 0 {
		r.p50 = a.lat[len(a.lat)*50/100]
		r.p99 = a.lat[min(len(a.lat)-1, len(a.lat)*99/100)]
		r.rps = float64(len(a.lat)) / a.elapsed.Seconds()
	}
	return r
}

// raw is one round's latencies.
type raw struct {
	lat     []time.Duration
	errs    int
	elapsed time.Duration
}

// loadRaw sends up to n eth_blockNumber requests from c workers, for at most d, and returns the raw figures.
func loadRaw(url string, c, n int, d time.Duration) raw {
	body := rpc.Request(1, "eth_blockNumber")
	lat, errs, elapsed := run1(url, c, n, d, func(int) ([]byte, func(*rpc.Response) bool) {
		return body, func(r *rpc.Response) bool {
			return r.Status == http.StatusOK && bytes.Contains(r.Body, []byte(`"result"`))
		}
	})
	return raw{lat, errs, elapsed}
}

// load sends up to n requests to url from c workers, for at most d; next(i) gives the i-th request's body and the
// check of its answer. Failed requests count as errors and not in the latencies.
func load(name, url string, c, n int, d time.Duration, next func(i int) ([]byte, func(*rpc.Response) bool)) result {
	lat, errs, elapsed := run1(url, c, n, d, next)
	a := acc{lat: lat, errs: errs, elapsed: elapsed}
	return a.result(name, c)
}

// run1 sends up to n requests from c workers for at most d and returns their latencies, errors and the time taken.
func run1(url string, c, n int, d time.Duration, next func(i int) ([]byte, func(*rpc.Response) bool)) ([]time.Duration, int, time.Duration) {
	client := &http.Client{
		Timeout:   30 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: c, MaxConnsPerHost: c, IdleConnTimeout: 2 * time.Second}, // under workerd's 5 s keep-alive
	}
	defer client.CloseIdleConnections()
	var seq, errs atomic.Int64
	lat := make([][]time.Duration, c)
	deadline := time.Now().Add(d)
	start := time.Now()
	var wg sync.WaitGroup
	for w := range c {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := seq.Add(1); i <= int64(n) && time.Now().Before(deadline); i = seq.Add(1) {
				body, ok := next(int(i))
				t0 := time.Now()
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				resp, err := rpc.Post(ctx, client, url, body)
				cancel()
				if err != nil || !ok(resp) {
					errs.Add(1)
					continue
				}
				lat[w] = append(lat[w], time.Since(t0))
			}
		}()
	}
	wg.Wait()
	return slices.Concat(lat...), int(errs.Load()), time.Since(start)
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2fms", float64(d.Microseconds())/1000) }

// wasmSizes reports build/app.wasm's size raw and gzipped.
func wasmSizes() (string, error) {
	p, err := repo.Path("build", "app.wasm")
	if err != nil {
		return "", err
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return "", err
	}
	var gz bytes.Buffer
	w, _ := gzip.NewWriterLevel(&gz, gzip.BestCompression)
	_, _ = io.Copy(w, bytes.NewReader(b))
	_ = w.Close()
	return fmt.Sprintf("app.wasm: %.2f MB raw, %.2f MB gzipped (%d / %d bytes)",
		float64(len(b))/1e6, float64(gz.Len())/1e6, len(b), gz.Len()), nil
}

func firstLine(err error) string {
	s, _, _ := strings.Cut(err.Error(), "\n")
	return s
}
