package app

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/evmlb/evmlb/internal/adminapi"
	"github.com/evmlb/evmlb/internal/evmtest"
	"github.com/evmlb/evmlb/internal/jsonrpc"
)

// chainSummaries is /admin/chains by chain.
func (h *harness) chainSummaries() map[string]adminapi.ChainSummary {
	h.t.Helper()
	var chains struct{ Chains []adminapi.ChainSummary }
	h.admin(http.MethodGet, "/admin/chains", &chains)
	out := map[string]adminapi.ChainSummary{}
	for _, c := range chains.Chains {
		out[c.Chain] = c
	}
	return out
}

// Issue 19: the health checks learn each upstream's finalized block; /admin/chains shows the chain's and each
// upstream's, and the cache epoch. A node without the tag passes its checks, with no finality.
func TestFinalityShownByAdmin(t *testing.T) {
	a := evmtest.NewNode(t, "a", 1, 100)
	b := evmtest.NewNode(t, "b", 1, 100)
	c := evmtest.NewNode(t, "c", 8453, 500)
	a.SetFinality(64)
	b.SetFinality(64)
	c.SetFinality(-1) // no "finalized" tag
	h := started(t, nil, upstream{"eth", "a", a.URL}, upstream{"eth", "b", b.URL}, upstream{"base", "c", c.URL})
	chains := h.chainSummaries()
	eth, base := chains["eth"], chains["base"]
	if eth.Finalized != 36 || eth.CacheEpoch == 0 || eth.Table[0].Finalized != 36 || eth.Table[1].Finalized != 36 {
		t.Errorf("eth: finalized %d, epoch %d, rows %+v", eth.Finalized, eth.CacheEpoch, eth.Table)
	}
	if base.Finalized != 0 || base.Table[0].Finalized != 0 || base.Table[0].State != "healthy" || base.Healthy != 1 {
		t.Errorf("base, without the tag: finalized %d, row %+v", base.Finalized, base.Table[0])
	}
	if e := h.upstreamEntry("c"); !e.OK || e.Finalized != 0 {
		t.Errorf("c's check without the tag: %+v", e.UpstreamHealth)
	}
	if e := h.upstreamEntry("a"); !e.OK || e.Finalized != 36 {
		t.Errorf("a's check: %+v", e.UpstreamHealth)
	}
	var d struct{ Chains []DashboardChain }
	h.admin(http.MethodGet, "/admin/dashboard.json", &d)
	for _, c := range d.Chains {
		if want := map[string]uint64{"eth": 36, "base": 0}[c.Chain]; c.Finalized != want {
			t.Errorf("dashboard: %s finalized %d, want %d", c.Chain, c.Finalized, want)
		}
	}
}

// POST /admin/cache/purge moves the cache epoch of every chain, or of ?chain= only, behind the admin auth and
// the admin write header; the new epoch is stored (a chain object evicted and loaded again keeps it) and is
// above every epoch before it. GET is 405, an unknown chain the unknown-chain error.
func TestCachePurge(t *testing.T) {
	a := evmtest.NewNode(t, "a", 1, 100)
	c := evmtest.NewNode(t, "c", 8453, 500)
	h := started(t, nil, upstream{"eth", "a", a.URL}, upstream{"base", "c", c.URL})
	before := h.chainSummaries()
	if before["eth"].CacheEpoch == 0 || before["base"].CacheEpoch == 0 {
		t.Fatalf("epochs before: %+v", before)
	}

	if status, _, _ := h.do(http.MethodPost, "/admin/cache/purge", "", false); status != http.StatusUnauthorized {
		t.Errorf("without auth: %d", status)
	}
	status, hdr, body := h.do(http.MethodGet, "/admin/cache/purge", "", true)
	if status != http.StatusMethodNotAllowed || hdr.Get("Allow") != http.MethodPost || errorCode(t, body) != jsonrpc.ErrMethodNotAllowed.Code {
		t.Errorf("GET: %d %q %s", status, hdr.Get("Allow"), body)
	}
	status, _, body = h.doWith(http.MethodPost, "/admin/cache/purge", "", func(r *http.Request) {
		r.SetBasicAuth("admin", password)
		r.Header.Set("Content-Type", "text/plain") // what a form of another site can make a browser send
	})
	if status != http.StatusUnsupportedMediaType || errorCode(t, body) != jsonrpc.ErrAdminSimple.Code {
		t.Errorf("a simple POST: %d %s", status, body)
	}
	for _, q := range []string{"?chain=nope", "?chain="} {
		status, _, body = h.do(http.MethodPost, "/admin/cache/purge"+q, "", true)
		if status != http.StatusNotFound || errorCode(t, body) != jsonrpc.ErrUnknownChain.Code {
			t.Errorf("%s: %d %s", q, status, body)
		}
	}
	if after := h.chainSummaries(); after["eth"].CacheEpoch != before["eth"].CacheEpoch || after["base"].CacheEpoch != before["base"].CacheEpoch {
		t.Fatalf("refused purges moved an epoch: %+v", after)
	}

	var one struct{ Chains []adminapi.CachePurge }
	h.admin(http.MethodPost, "/admin/cache/purge?chain=eth", &one)
	if len(one.Chains) != 1 || one.Chains[0].Chain != "eth" || one.Chains[0].Error != "" || one.Chains[0].CacheEpoch <= before["eth"].CacheEpoch {
		t.Fatalf("?chain=eth: %+v", one)
	}
	after := h.chainSummaries()
	if after["eth"].CacheEpoch != one.Chains[0].CacheEpoch || after["base"].CacheEpoch != before["base"].CacheEpoch {
		t.Errorf("after ?chain=eth: eth %d (answered %d), base %d (was %d)", after["eth"].CacheEpoch, one.Chains[0].CacheEpoch,
			after["base"].CacheEpoch, before["base"].CacheEpoch)
	}

	var all struct{ Chains []adminapi.CachePurge }
	h.admin(http.MethodPost, "/admin/cache/purge", &all)
	got := map[string]uint64{}
	for _, p := range all.Chains {
		got[p.Chain] = p.CacheEpoch
	}
	if len(got) != 2 || got["eth"] <= after["eth"].CacheEpoch || got["base"] <= before["base"].CacheEpoch {
		b, _ := json.Marshal(all)
		t.Fatalf("every chain: %s", b)
	}

	// A new runtime: every object's memory is gone, storage stays. The epochs are those the purge answered.
	h.restartApp()
	reloaded := h.chainSummaries()
	if reloaded["eth"].CacheEpoch != got["eth"] || reloaded["base"].CacheEpoch != got["base"] {
		t.Errorf("after a reload: eth %d base %d, want %d %d", reloaded["eth"].CacheEpoch, reloaded["base"].CacheEpoch, got["eth"], got["base"])
	}
}
