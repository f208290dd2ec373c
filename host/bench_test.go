package main

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/evmlb/evmlb/host/internal/server"
	"github.com/evmlb/evmlb/host/internal/testprog"
	"github.com/evmlb/evmlb/host/internal/wasmprof"
)

// benchBody is what each request sends: a JSON-RPC call's size.
const benchBody = `{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber","params":[]}`

// benchProgram is the wasm measured: EVMLB_BENCH_WASM (e.g. build/app.wasm, asked for eth_blockNumber on
// /eth: a worker call answered from the isolate's snapshot with one fetch to a local fake node, the chain object
// exchanged with in the background), or the host's probe program, whose /echo answers the request's body (one
// worker call, no operation).
func benchProgram(b *testing.B) (path, target string) {
	if p := os.Getenv("EVMLB_BENCH_WASM"); p != "" {
		return p, "/eth"
	}
	p, err := testprog.Build("probe")
	if err != nil {
		b.Fatal(err)
	}
	return p, "/echo"
}

// benchEnv is the program's environment: for app.wasm, one chain with one fake node that answers at once.
func benchEnv(b *testing.B, target string) map[string]string {
	if target != "/eth" {
		return nil
	}
	node := httptest.NewServer(fakeNode)
	b.Cleanup(node.Close)
	return map[string]string{"UPSTREAM_CONFIG": `[{"chain":"eth","name":"a","upstream":"` + node.URL + `"}]`}
}

// fakeNode answers every JSON-RPC call at once: chain id 1, block 0x10.
var fakeNode = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	w.Header().Set("Content-Type", "application/json")
	if bytes.Contains(body, []byte("eth_chainId")) {
		io.WriteString(w, `{"jsonrpc":"2.0","id":1,"result":"0x1"}`)
		return
	}
	io.WriteString(w, `{"jsonrpc":"2.0","id":1,"result":"0x10"}`)
})

func newBenchServer(b *testing.B, path, cache, target string) *server.Server {
	s, err := server.New(server.Options{WasmPath: path, StateDir: b.TempDir(), CacheDir: cache, Log: io.Discard, Env: benchEnv(b, target)})
	if err != nil {
		b.Fatal(err)
	}
	return s
}

// BenchmarkColdStart measures server.New (read, compile or load from the cache, instantiate and run every
// runtime of the pool and the objects runtime until workers.ready) to the first answer, without and with
// wazero's compilation cache.
//
//	go test ./host -run - -bench ColdStart -benchtime 5x
func BenchmarkColdStart(b *testing.B) {
	path, target := benchProgram(b)
	info, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("program %s (%.1f MB)", path, float64(info.Size())/1e6)
	for _, tc := range []struct {
		name   string
		cached bool
	}{{"nocache", false}, {"cache", true}} {
		b.Run(tc.name, func(b *testing.B) {
			cache := ""
			if tc.cached {
				cache = b.TempDir()
				coldStart(b, path, cache, target) // fill the cache
			}
			b.ResetTimer()
			var total time.Duration
			for range b.N {
				total += coldStart(b, path, cache, target)
			}
			b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "ms/start")
		})
	}
}

// coldStart starts a host, asks it once and returns how long that took.
func coldStart(b *testing.B, path, cache, target string) time.Duration {
	start := time.Now()
	s := newBenchServer(b, path, cache, target)
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("POST", target, strings.NewReader(benchBody))
	req.Header.Set("Content-Type", "application/json")
	s.Handler().ServeHTTP(rec, req)
	d := time.Since(start)
	if rec.Code >= 500 {
		b.Fatalf("first answer: %d %s", rec.Code, rec.Body)
	}
	b.StopTimer()
	s.Close()
	b.StartTimer()
	return d
}

// asker returns a function that sends benchBody to target through s's in-process handler and fails b unless the
// answer is 200.
func asker(b *testing.B, s *server.Server, target string) func() {
	return func() {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("POST", target, strings.NewReader(benchBody))
		req.Header.Set("Content-Type", "application/json")
		s.Handler().ServeHTTP(rec, req)
		if rec.Code != 200 {
			b.Fatalf("%d %s", rec.Code, rec.Body)
		}
	}
}

// BenchmarkRequests measures requests through the in-process handler, one at a time, and reports the
// reference table and linear memory before and after (they should stay flat).
//
//	go test ./host -run - -bench Requests -benchtime 20000x
func BenchmarkRequests(b *testing.B) {
	path, target := benchProgram(b)
	s := newBenchServer(b, path, os.TempDir()+"/evmlb-bench-cache", target)
	defer s.Close()
	ask := asker(b, s, target)
	for range 1000 {
		ask()
	}
	before := s.Stats()
	b.ResetTimer()
	for range b.N {
		ask()
	}
	b.StopTimer()
	after := s.Stats()
	b.ReportMetric(float64(after.MemoryBytes)/1e6, "wasm-MB")
	// Refs include garbage Go has not finalized yet (no forced GC here); the tests check flatness after a GC.
	b.Logf("refs %d → %d, memory %d → %d", before.LiveRefs, after.LiveRefs, before.MemoryBytes, after.MemoryBytes)
}

// BenchmarkHTTP measures requests over TCP through the wazero host (a pool of one runtime per core) and, for
// comparison, straight to what the program stands for ("direct": a Go echo server for the probe, the fake node
// for app.wasm), at 1 and 16 concurrent clients: requests per second and the latency percentiles.
//
//	go test ./host -run - -bench HTTP -benchtime 20000x
func BenchmarkHTTP(b *testing.B) {
	path, target := benchProgram(b)
	s := newBenchServer(b, path, os.TempDir()+"/evmlb-bench-cache", target)
	defer s.Close()
	var direct http.Handler = fakeNode
	if target != "/eth" {
		direct = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			w.Header().Set("Content-Type", "application/octet-stream")
			w.Write(body)
		})
	}
	hosts := []struct {
		name    string
		handler http.Handler
	}{
		{"direct", direct},
		{"wazero", s.Handler()},
	}
	for _, h := range hosts {
		ts := httptest.NewServer(h.handler)
		for _, c := range []int{1, 16} {
			b.Run(h.name+"/c="+itoa(c), func(b *testing.B) { loadHTTP(b, ts.URL+target, c) })
		}
		ts.Close()
	}
}

func loadHTTP(b *testing.B, url string, clients int) {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients, MaxConnsPerHost: clients}}
	defer client.CloseIdleConnections()
	ask := func() time.Duration {
		start := time.Now()
		res, err := client.Post(url, "application/json", strings.NewReader(benchBody))
		if err != nil {
			b.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 200 || !bytes.Equal(body, []byte(benchBody)) && !strings.HasSuffix(url, "/eth") {
			b.Fatalf("%d %s", res.StatusCode, body)
		}
		return time.Since(start)
	}
	for range 200 * clients { // warm up: connections, heaps
		ask()
	}
	lat := make([][]time.Duration, clients)
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for i := range clients {
		n := b.N / clients
		if i < b.N%clients {
			n++
		}
		wg.Go(func() {
			for range n {
				lat[i] = append(lat[i], ask())
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	all := slices.Concat(lat...)
	slices.Sort(all)
	pct := func(p float64) float64 { return float64(all[int(p*float64(len(all)-1))].Microseconds()) / 1000 }
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "req/s")
	b.ReportMetric(pct(0.5), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
}

func itoa(n int) string {
	if n < 10 {
		return string(rune('0' + n))
	}
	return itoa(n/10) + string(rune('0'+n%10))
}

// BenchmarkWasmProfile profiles the Go code inside the program, which pprof sees only as
// runtime._ExternalCode: every function of one Worker runtime, through wazero's function listeners
// (host/internal/wasmprof), over b.N in-process requests after a warm-up. It reports wasm calls per request and
// logs the top functions by inclusive and by own time. A listener on every function inflates small functions'
// times; EVMLB_WASMPROF_ONLY (a regular expression of function names, e.g. 'wasm_export_resume$|Plane_.Serve$')
// watches only those, for accurate times.
//
//	EVMLB_BENCH_WASM=$(mktemp) && GOOS=js GOARCH=wasm go build -trimpath -o $EVMLB_BENCH_WASM ./worker && \
//	  go test ./host -run - -bench WasmProfile -benchtime 2000x -v
//
// (app.wasm needs its name section: build it without -ldflags=-s.)
func BenchmarkWasmProfile(b *testing.B) {
	path, target := benchProgram(b)
	var only *regexp.Regexp
	if v := os.Getenv("EVMLB_WASMPROF_ONLY"); v != "" {
		only = regexp.MustCompile(v)
	}
	prof := wasmprof.New(only)
	s, err := server.New(server.Options{WasmPath: path, StateDir: b.TempDir(), Log: io.Discard, Env: benchEnv(b, target),
		WorkerRuntimes: 1, Listener: prof})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ask := asker(b, s, target)
	for range 300 {
		ask()
	}
	prof.Start()
	b.ResetTimer()
	for range b.N {
		ask()
	}
	b.StopTimer()
	prof.Stop()
	stats := prof.Busiest()
	if len(stats) == 0 {
		b.Fatal("no wasm function was seen: is the program built with its name section?")
	}
	var calls int64
	for _, st := range stats {
		calls += st.Calls
		if st.Name == "wasm_export_resume" && only != nil { // every entry into Go: its time in wasm, when accurate
			b.ReportMetric(float64(st.Incl.Microseconds())/float64(b.N), "wasm-µs/req")
		}
	}
	b.ReportMetric(float64(calls)/float64(b.N), "wasm-calls/req")
	b.Logf("%s", wasmprof.Report(stats, b.N, 40))
}
