package server

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// TestAppShutdownKeepsCounts: the Worker runtimes hold the counts of the requests they answered until their
// background work reports them to the chain object (EVMLB_SNAPSHOT_TTL after their snapshot: a minute here).
// Shutdown has them sent, and stored, before the host stops: a host started again on the same state counts
// every request. Close cuts that work, and the counts are lost.
func TestAppShutdownKeepsCounts(t *testing.T) {
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
	env := map[string]string{
		"UPSTREAM_CONFIG":    `[{"chain":"eth","name":"a","upstream":"` + node.URL + `"}]`,
		"ADMIN_PASSWORD":     "test-password",
		"EVMLB_SNAPSHOT_TTL": "1m",
	}
	state := t.TempDir()
	h := appHostAt(t, env, state)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go h.Serve(l)
	const requests = 40
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range requests / 4 {
				resp, err := http.Post("http://"+l.Addr().String()+"/eth", "application/json",
					strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber","params":[]}`))
				if err != nil {
					t.Error(err)
					return
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					t.Errorf("%d %s", resp.StatusCode, body)
				}
			}
		})
	}
	wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), ShutdownWait) // as `evmlb serve` on SIGTERM
	defer cancel()
	if err := h.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("shutdown log:\n%s", grepLines(h.log.String(), "shutdown:"))
	if strings.Contains(h.log.String(), "Go runtime exited") {
		t.Errorf("work was cut; log:\n%s", h.log)
	}

	h2 := appHostAt(t, env, state)
	req := httptest.NewRequest(http.MethodGet, "/admin/metrics", nil)
	req.SetBasicAuth("admin", "test-password")
	rec := httptest.NewRecorder()
	h2.serveHTTP(rec, req)
	const sample = `evmlb_requests_total{chain="eth",method="eth_blockNumber",outcome="ok"} `
	got := -1
	for _, line := range strings.Split(rec.Body.String(), "\n") {
		if v, ok := strings.CutPrefix(line, sample); ok {
			got, _ = strconv.Atoi(v)
		}
	}
	if got != requests {
		t.Fatalf("after the restart the chain counts %d eth_blockNumber requests, want %d; metrics:\n%s\nfirst host's log:\n%s",
			got, requests, grepLines(rec.Body.String(), "evmlb_requests_total"), h.log)
	}
}

// grepLines is the lines of s that contain sub.
func grepLines(s, sub string) string {
	var out []string
	for _, line := range strings.Split(s, "\n") {
		if strings.Contains(line, sub) {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}
