package server

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// appHost serves the real build/app.wasm (EVMLB_APP_WASM names another). It skips the test when app.wasm is
// missing or speaks another host contract (a stale build), unless EVMLB_E2E_REQUIRED=1.
func appHost(t *testing.T, env map[string]string) *testHost {
	t.Helper()
	return appHostAt(t, env, t.TempDir())
}

// appHostAt is appHost with its state in the directory state.
func appHostAt(t *testing.T, env map[string]string, state string) *testHost {
	t.Helper()
	wasm, err := filepath.Abs("../../../build/app.wasm")
	if p := os.Getenv("EVMLB_APP_WASM"); p != "" {
		wasm = p
	}
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(wasm); err != nil {
		if os.Getenv("EVMLB_E2E_REQUIRED") == "1" {
			t.Fatalf("%s missing: run make build", wasm)
		}
		t.Skipf("%s missing: run make build", wasm)
	}
	h := &testHost{t: t, log: &syncBuffer{}}
	s, err := New(Options{WasmPath: wasm, StateDir: state, CacheDir: cacheDir, Log: h.log, Env: env})
	if errors.Is(err, ErrContractVersion) && os.Getenv("EVMLB_E2E_REQUIRED") != "1" {
		t.Skipf("build/app.wasm does not speak this host's contract yet: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	h.Server = s
	t.Cleanup(func() { s.Close() })
	t.Cleanup(func() {
		if got := s.Stats().Violations; got != 0 {
			t.Errorf("%d protocol violations; log:\n%s", got, h.log)
		}
	})
	return h
}

// blockNumber asks the chain eth for eth_blockNumber through the in-process handler.
func (h *testHost) blockNumber() (int, string) {
	req := httptest.NewRequest(http.MethodPost, "/eth", strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber","params":[]}`))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	h.serveHTTP(rec, req)
	return rec.Code, rec.Body.String()
}

// TestAppMemoryFlat serves balancer requests with the real build/app.wasm (each one a worker call, an object
// call to the Chain object, one to an Upstream object and a fetch operation) and checks that memory stops
// growing in every runtime. It caught the bridge of github.com/syumai/workers leaking ~100 KB per request in a
// long-lived runtime (2,000 requests: 12 MB → 204 MB).
func TestAppMemoryFlat(t *testing.T) {
	node := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		_, _ = io.WriteString(w, `{"jsonrpc":"2.0","id":1,"result":"0x10"}`)
	}))
	defer node.Close()
	h := appHost(t, map[string]string{
		"UPSTREAM_CONFIG": `[{"chain":"eth","name":"a","upstream":"` + node.URL + `"}]`,
	})
	n := 3000
	if testing.Short() {
		n = 600
	}
	if v, err := strconv.Atoi(os.Getenv("EVMLB_FLAT_REQUESTS")); err == nil && v > 0 {
		n = v // 100000 for the figure issue 3 asks for
	}
	send := func(count int) {
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				for range count / 4 {
					if code, body := h.blockNumber(); code != http.StatusOK {
						t.Errorf("%d %s", code, body)
						return
					}
				}
			})
		}
		wg.Wait()
	}
	send(n / 3) // warm up: the Go heaps grow to their working size
	base := h.Stats()
	send(n)
	after := h.Stats()
	for i, b := range base.Runtimes {
		a := after.Runtimes[i]
		t.Logf("%s after %d more requests: memory %d → %d bytes, refs %d → %d", a.Name, n, b.MemoryBytes, a.MemoryBytes, b.LiveRefs, a.LiveRefs)
		// Below 16 MiB a runtime may still be growing to its working size (Go's GC starts at a 4 MB heap, and a
		// few hundred requests do not get there); the leak this test exists for took 2,000 requests to 204 MB.
		if a.MemoryBytes > b.MemoryBytes*3/2 && a.MemoryBytes > 16<<20 {
			t.Errorf("%s: memory grew: %d → %d bytes", a.Name, b.MemoryBytes, a.MemoryBytes)
		}
	}
	if after.Starts != len(after.Runtimes) {
		t.Fatalf("a runtime restarted: %+v", after.Runtimes)
	}
}

// TestAppJSValuesPerRequest: a worker request answered by the real app.wasm gives Go 4 JS values, those of the
// two events (begin, complete) syscall/js reads its arguments from; everything else crosses as bytes through
// linear memory (CONTRACT.md, contract 4). Each value is a finalizer and several crossings in Go: a request
// made 15 before.
func TestAppJSValuesPerRequest(t *testing.T) {
	node := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		if strings.Contains(string(body), "eth_chainId") {
			io.WriteString(w, `{"jsonrpc":"2.0","id":1,"result":"0x1"}`)
			return
		}
		io.WriteString(w, `{"jsonrpc":"2.0","id":1,"result":"0x10"}`)
	}))
	defer node.Close()
	h := appHost(t, map[string]string{"UPSTREAM_CONFIG": `[{"chain":"eth","name":"a","upstream":"` + node.URL + `"}]`})
	ask := func() {
		if code, body := h.blockNumber(); code != http.StatusOK {
			t.Fatalf("%d %s", code, body)
		}
	}
	for range 50 { // the first requests fetch the snapshot and start the runtime's goroutines
		ask()
	}
	made := func() (n uint64) {
		for _, rs := range h.Stats().Runtimes[:len(h.Stats().Runtimes)-1] { // the Worker's runtimes
			n += rs.RefsMade
		}
		return n
	}
	const requests = 200
	before := made()
	for range requests {
		ask()
	}
	perRequest := float64(made()-before) / requests
	t.Logf("%.2f JS values per request", perRequest)
	if perRequest > 4.5 { // 4, and now and then a timer's
		t.Fatalf("%.2f JS values per request, want 4", perRequest)
	}
}
