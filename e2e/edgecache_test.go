package e2e

import (
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/evmlb/evmlb/e2e/internal/repo"
	"github.com/evmlb/evmlb/e2e/internal/target"
)

// TestEdgeCacheOp shows the host contract's cache operation (issue 19, the answer cache's second tier) working in
// each host, with e2e/testdata/cachego (the binding and hostcall.EdgeCache alone) rather than the balancer: under
// `wrangler dev` the shim performs it on caches.default (miniflare's local cache), in the wazero host on its
// shared cache. A put then a match in another request returns the entry; another key misses; delete removes it;
// a key on another host is refused. It logs one put's and one match's latency as Go sees them (p50 and mean of 200).
func TestEdgeCacheOp(t *testing.T) {
	root, err := repo.Root()
	if err != nil {
		t.Fatal(err)
	}
	wasm := filepath.Join(t.TempDir(), "cachego.wasm")
	build := exec.Command("go", "build", "-trimpath", "-ldflags=-s", "-o", wasm, "./e2e/testdata/cachego")
	build.Dir = root
	build.Env = append(os.Environ(), "GOOS=js", "GOARCH=wasm")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building cachego: %v\n%s", err, out)
	}
	for _, h := range []struct {
		name  string
		start func(context.Context) (*target.Instance, error)
	}{
		{"wazero", func(ctx context.Context) (*target.Instance, error) {
			return (&target.Wazero{Wasm: wasm}).Start(ctx, target.Config{RawUpstreamConfig: "[]", StateDir: t.TempDir()})
		}},
		{"workerd", func(ctx context.Context) (*target.Instance, error) {
			return target.StartWorkerdProgram(ctx, wasm, map[string]string{})
		}},
	} {
		t.Run(h.name, func(t *testing.T) {
			if h.name == "workerd" {
				need(t, target.Workerd{}.Available())
			}
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			inst, err := h.start(ctx)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(inst.Stop)
			do := func(method, path, body string) (int, string, string) {
				t.Helper()
				req, _ := http.NewRequestWithContext(ctx, method, inst.URL+path, strings.NewReader(body))
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				b, _ := io.ReadAll(resp.Body)
				return resp.StatusCode, resp.Header.Get("x-cache"), string(b)
			}
			if code, _, body := do("GET", "/match?k=a", ""); code != 404 {
				t.Fatalf("before any put: %d %s", code, body)
			}
			const entry = `{"jsonrpc":"2.0","result":{"number":"0x10"}}`
			if code, _, body := do("POST", "/put?k=a&ttl=60", entry); code != 204 {
				t.Fatalf("put: %d %s", code, body)
			}
			if code, hit, body := do("GET", "/match?k=a", ""); code != 200 || hit != "hit" || body != entry {
				t.Fatalf("match after put, in another request: %d %q %s", code, hit, body)
			}
			if code, _, body := do("GET", "/match?k=b", ""); code != 404 {
				t.Fatalf("another key: %d %s", code, body)
			}
			if code, _, body := do("POST", "/delete?k=a", ""); code != 204 {
				t.Fatalf("delete: %d %s", code, body)
			}
			if code, _, body := do("GET", "/match?k=a", ""); code != 404 {
				t.Fatalf("after delete: %d %s", code, body)
			}
			for _, key := range []string{"https://other.example/k", "http://" + strings.TrimPrefix(inst.URL, "http://") + "/k"} {
				if _, _, body := do("GET", "/key?k="+key, ""); !strings.HasPrefix(body, "host: invalid: cache: ") {
					t.Errorf("key %s: %s", key, body)
				}
			}
			if code, _, body := do("GET", "/bench?n=200&bytes=1024", ""); code != 200 {
				t.Fatalf("bench: %d %s", code, body)
			} else {
				t.Logf("%s: cache op of a 1 KiB entry, p50 and mean of 200: %s", h.name, body)
			}
		})
	}
}
