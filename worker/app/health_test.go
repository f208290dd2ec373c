package app

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/evmlb/evmlb/internal/adminapi"
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
			var ups struct{ Upstreams []adminapi.UpstreamEntry }
			h.admin(http.MethodGet, "/admin/upstreams", &ups)
			u := ups.Upstreams[0]
			if u.OK != tc.ok || u.LastErrorClass != tc.class || u.Height != tc.height {
				t.Errorf("got ok=%v class=%q height=%d", u.OK, u.LastErrorClass, u.Height)
			}
			if !u.NextCheck.Equal(t0.Add(5 * time.Second)) {
				t.Errorf("next check %v", u.NextCheck)
			}
			var chains struct{ Chains []adminapi.ChainSummary }
			h.admin(http.MethodGet, "/admin/chains", &chains)
			if row := chains.Chains[0].Table[0]; (row.State == "healthy") != tc.ok || string(row.LastError) != tc.class {
				t.Errorf("chain row %+v", row)
			}
		})
	}
}

// eth_chainId is asked at every check (issue 8), in one batch with the other calls; a node that does not answer
// batches is asked call by call, and only that, for an hour.
func TestChainIDEveryCheck(t *testing.T) {
	for _, batches := range []bool{true, false} {
		var requests, batchRequests, chainIDCalls int
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			requests++
			chainIDCalls += strings.Count(string(b), "eth_chainId")
			if strings.HasPrefix(string(b), "[") {
				batchRequests++
				if batches {
					io.WriteString(w, `[{"jsonrpc":"2.0","id":1,"result":"0x5"},{"jsonrpc":"2.0","id":2,"result":"0x5"},{"jsonrpc":"2.0","id":3,"result":false},{"jsonrpc":"2.0","id":4,"result":"0x0"}]`)
					return
				}
			}
			io.WriteString(w, `{"jsonrpc":"2.0","id":1,"result":"0x5"}`)
		}))
		h := newHarness(t, map[string]string{"EVMLB_HEALTH_INTERVAL": "2s"}, upstream{"eth", "a", srv.URL})
		h.admin(http.MethodPost, "/admin/init_upstreams", nil)
		h.checks(10 * time.Second) // checks at 0, 2, 4, 6, 8, 10 s
		h.restartApp()
		h.checks(2 * time.Second)
		srv.Close()
		if want := map[bool]int{true: 7, false: 8}[batches]; chainIDCalls != want { // without batches: once in the refused batch
			t.Errorf("batches %v: eth_chainId asked %d times in 7 checks, want %d", batches, chainIDCalls, want)
		}
		// The first check also asks for the block of the head it got (a second request).
		wantRequests, wantBatches := 7+1, 7
		if !batches {
			wantRequests, wantBatches = 1+5*7, 1 // one refused batch; then eth_chainId, eth_blockNumber, eth_syncing, the finalized block and the probe
		}
		if requests != wantRequests || batchRequests != wantBatches {
			t.Errorf("batches %v: %d requests, %d of them batches; want %d and %d", batches, requests, batchRequests, wantRequests, wantBatches)
		}
		var ups struct{ Upstreams []adminapi.UpstreamEntry }
		h.admin(http.MethodGet, "/admin/upstreams", &ups)
		if u := ups.Upstreams[0]; !u.LastCheck.Equal(t0.Add(12*time.Second)) || u.ChainID != "0x5" || !u.OK || u.Height != 5 {
			t.Errorf("batches %v: upstream %+v", batches, u)
		}
	}
}
