package app

import (
	"net/http"
	"testing"

	"github.com/evmlb/evmlb/internal/evmtest"
)

// TestCacheSeenFromOutside: through the whole balancer with the cache on, a repeated read at the finalized block is a miss
// and then hits (the x-evmlb-cache header), eth_chainId is a hit, a write is skipped; /admin/metrics counts them in
// evmlb_cache_requests_total and shows the bytes held; the dashboard shows the hit ratio.
func TestCacheSeenFromOutside(t *testing.T) {
	a := evmtest.NewNode(t, "a", 1, 100)
	h := started(t, map[string]string{"METRICS_TOKEN": metricsToken, "UPSTREAM_CONFIG": configCached(upstream{"eth", "a", a.URL})},
		upstream{"eth", "a", a.URL})
	read := `{"jsonrpc":"2.0","id":7,"method":"eth_getBalance","params":["0x0000000000000000000000000000000000000001","0x64"]}` // at the finalized block
	for i, tc := range []struct{ body, want string }{
		{read, "miss"},
		{read, "hit"},
		{read, "hit"},
		{read, "hit"},
		{`{"jsonrpc":"2.0","id":1,"method":"eth_chainId"}`, "hit"},
		{`{"jsonrpc":"2.0","id":1,"method":"eth_sendRawTransaction","params":["0x00"]}`, "skip"},
	} {
		status, hdr, body := h.do(http.MethodPost, "/eth", tc.body, false)
		if status != 200 || hdr.Get("X-Evmlb-Cache") != tc.want {
			t.Errorf("request %d: %d %q %s, want %q", i, status, hdr.Get("X-Evmlb-Cache"), body, tc.want)
		}
	}
	_, hdr, _ := h.doWith(http.MethodPost, "/eth", read, func(r *http.Request) { r.Header.Set("Origin", "https://dapp.example") })
	if hdr.Get("Access-Control-Expose-Headers") != "X-Evmlb-Cache" || hdr.Get("X-Evmlb-Cache") != "hit" {
		t.Errorf("a page cannot read the cache header: %v", hdr)
	}
	fams := h.scrape()
	for _, c := range []struct {
		labels map[string]string
		want   float64
	}{
		{map[string]string{"chain": "eth", "method": "eth_getBalance", "result": "hit"}, 4},
		{map[string]string{"chain": "eth", "method": "eth_getBalance", "result": "miss"}, 1},
		{map[string]string{"chain": "eth", "method": "eth_chainId", "result": "hit"}, 1},
		{map[string]string{"chain": "eth", "result": "skip"}, 1},
	} {
		if got := sum(fams, "evmlb_cache_requests_total", c.labels); got != c.want {
			t.Errorf("evmlb_cache_requests_total%v = %v, want %v", c.labels, got, c.want)
		}
	}
	if got := sum(fams, "evmlb_cache_memory_bytes", map[string]string{"chain": "eth"}); got <= 0 {
		t.Errorf("evmlb_cache_memory_bytes = %v", got)
	}
	var d struct{ Chains []DashboardChain }
	h.admin(http.MethodGet, "/admin/dashboard.json", &d)
	if len(d.Chains) != 1 || d.Chains[0].CacheCalls != 7 || d.Chains[0].CacheHitRatio != 5.0/7 {
		t.Errorf("dashboard: %+v", d.Chains)
	}
}
