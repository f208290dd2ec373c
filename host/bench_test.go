package main

import (
	"io"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/evmlb/evmlb/host/internal/server"
	"github.com/evmlb/evmlb/host/internal/testprog"
)

// benchProgram is the wasm measured: EVMLB_BENCH_WASM (e.g. build/app.wasm, asked for "/"), or the host's
// test program built like the balancer (syumai/workers + net/http, asked for "/hello").
func benchProgram(b *testing.B) (path, target string) {
	if p := os.Getenv("EVMLB_BENCH_WASM"); p != "" {
		return p, "/"
	}
	p, err := testprog.Build("workers")
	if err != nil {
		b.Fatal(err)
	}
	return p, "/hello"
}

// BenchmarkColdStart measures server.New (read, compile or load from the cache, instantiate, run Go's main
// until workers.ready) to the first answer, without and with wazero's compilation cache.
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
	s, err := server.New(server.Options{WasmPath: path, StateDir: b.TempDir(), CacheDir: cache, Log: io.Discard})
	if err != nil {
		b.Fatal(err)
	}
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptest.NewRequest("GET", target, nil))
	d := time.Since(start)
	if rec.Code >= 500 {
		b.Fatalf("first answer: %d %s", rec.Code, rec.Body)
	}
	b.StopTimer()
	s.Close()
	b.StartTimer()
	return d
}

// BenchmarkRequests measures requests through the in-process handler on one runtime, and reports the
// reference table and linear memory before and after (they should stay flat).
//
//	go test ./host -run - -bench Requests -benchtime 20000x
func BenchmarkRequests(b *testing.B) {
	path, target := benchProgram(b)
	s, err := server.New(server.Options{WasmPath: path, StateDir: b.TempDir(), CacheDir: os.TempDir() + "/evmlb-bench-cache", Log: io.Discard})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ask := func() {
		rec := httptest.NewRecorder()
		s.Handler().ServeHTTP(rec, httptest.NewRequest("GET", target, nil))
		if rec.Code >= 500 {
			b.Fatalf("%d %s", rec.Code, rec.Body)
		}
	}
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
