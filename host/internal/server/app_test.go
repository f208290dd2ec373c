package server

import (
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

// TestAppMemoryFlat serves balancer requests with the real build/app.wasm (each one crosses the Worker, a Chain
// and an Upstream object and a fetch, the JS bridge four times) and checks that the program's memory stops
// growing. It caught the bridge of github.com/syumai/workers leaking ~100 KB per request in a long-lived runtime
// (2,000 requests: 12 MB → 204 MB). It needs `make build`; without app.wasm it skips, unless EVMLB_E2E_REQUIRED=1.
func TestAppMemoryFlat(t *testing.T) {
	wasm, err := filepath.Abs("../../../build/app.wasm")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(wasm); err != nil {
		if os.Getenv("EVMLB_E2E_REQUIRED") == "1" {
			t.Fatalf("%s missing: run make build", wasm)
		}
		t.Skipf("%s missing: run make build", wasm)
	}
	node := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		_, _ = io.WriteString(w, `{"jsonrpc":"2.0","id":1,"result":"0x10"}`)
	}))
	defer node.Close()
	s, err := New(Options{WasmPath: wasm, StateDir: t.TempDir(), CacheDir: cacheDir, Log: io.Discard, Env: map[string]string{
		"UPSTREAM_CONFIG": `[{"chain":"eth","name":"a","upstream":"` + node.URL + `"}]`,
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
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
					req := httptest.NewRequest(http.MethodPost, "/eth", strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber","params":[]}`))
					req.Header.Set("Content-Type", "application/json")
					rec := httptest.NewRecorder()
					s.serveHTTP(rec, req)
					if rec.Code != http.StatusOK {
						t.Errorf("%d %s", rec.Code, rec.Body)
						return
					}
				}
			})
		}
		wg.Wait()
	}
	send(n / 3) // warm up: the Go heap grows to its working size
	base := s.Stats()
	send(n)
	after := s.Stats()
	t.Logf("after %d more requests: memory %d → %d bytes, refs %d → %d", n, base.MemoryBytes, after.MemoryBytes, base.LiveRefs, after.LiveRefs)
	if after.MemoryBytes > base.MemoryBytes*3/2 {
		t.Fatalf("memory grew: %d → %d bytes", base.MemoryBytes, after.MemoryBytes)
	}
	if after.Starts != 1 {
		t.Fatalf("the runtime restarted: %+v", after)
	}
}
