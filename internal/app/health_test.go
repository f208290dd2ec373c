package app

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestHealthCheckClasses runs an upstream's health check against answers a real node might give.
func TestHealthCheckClasses(t *testing.T) {
	for _, tc := range []struct {
		name, chainID, block string // the answers' "result" or "error" members
		ok                   bool
		class                string
		height               uint64
	}{
		{"ok", `"result":"0x1"`, `"result":"0x10"`, true, "", 16},
		{"chain id error", `"error":{"code":-32601,"message":"no"}`, `"result":"0x10"`, false, "rpc_error", 0},
		{"block error", `"result":"0x1"`, `"error":{"code":-32000,"message":"down"}`, false, "rpc_error", 0},
		{"block not hex", `"result":"0x1"`, `"result":"0xzz"`, false, "bad_result", 0},
		{"block a number", `"result":"0x1"`, `"result":16`, false, "bad_result", 0},
		{"block without 0x", `"result":"0x1"`, `"result":"10"`, false, "bad_result", 0},
		{"block too long", `"result":"0x1"`, `"result":"0x10000000000000000"`, false, "bad_result", 0},
		{"no result", `"result":"0x1"`, `"id":2`, false, "bad_result", 0},
		{"error null is fine", `"result":"0x1","error":null`, `"result":"0x2"`, true, "", 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				b, _ := io.ReadAll(r.Body)
				member := tc.block
				if strings.Contains(string(b), "eth_chainId") {
					member = tc.chainID
				}
				io.WriteString(w, `{"jsonrpc":"2.0","id":1,`+member+`}`)
			}))
			defer srv.Close()
			h := newHarness(t, nil, upstream{"eth", "a", srv.URL})
			h.admin(http.MethodPost, "/admin/init_upstreams", nil)
			h.checks(0)
			var ups struct{ Upstreams []UpstreamEntry }
			h.admin(http.MethodGet, "/admin/upstreams", &ups)
			u := ups.Upstreams[0]
			if u.OK != tc.ok || u.LastErrorClass != tc.class || u.Height != tc.height {
				t.Errorf("got ok=%v class=%q height=%d", u.OK, u.LastErrorClass, u.Height)
			}
			if !u.NextCheck.Equal(t0.Add(5 * time.Second)) {
				t.Errorf("next check %v", u.NextCheck)
			}
			var chains struct{ Chains []ChainSummary }
			h.admin(http.MethodGet, "/admin/chains", &chains)
			if row := chains.Chains[0].Table[0]; (row.State == "healthy") != tc.ok || string(row.LastError) != tc.class {
				t.Errorf("chain row %+v", row)
			}
		})
	}
}

func TestChainIDAskedOnce(t *testing.T) {
	var chainIDCalls int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if strings.Contains(string(b), "eth_chainId") {
			chainIDCalls++
		}
		io.WriteString(w, `{"jsonrpc":"2.0","id":1,"result":"0x5"}`)
	}))
	defer srv.Close()
	h := newHarness(t, map[string]string{"EVMLB_HEALTH_INTERVAL": "2s"}, upstream{"eth", "a", srv.URL})
	h.admin(http.MethodPost, "/admin/init_upstreams", nil)
	h.checks(10 * time.Second) // checks at 0, 2, 4, 6, 8, 10 s
	h.restartApp()
	h.checks(2 * time.Second) // the chain id comes back from storage
	if chainIDCalls != 1 {
		t.Errorf("eth_chainId asked %d times", chainIDCalls)
	}
	var ups struct{ Upstreams []UpstreamEntry }
	h.admin(http.MethodGet, "/admin/upstreams", &ups)
	if u := ups.Upstreams[0]; !u.LastCheck.Equal(t0.Add(12*time.Second)) || u.ChainID != "0x5" {
		t.Errorf("upstream %+v", u)
	}
}
