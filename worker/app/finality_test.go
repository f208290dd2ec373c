package app

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

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

// Issue 19: a block an upstream had called final that the chain replaced (a reorg past finality, at the same
// height) is found at that upstream's next check, which asks the finalized block it found before again in its
// batch: the chain's cache epoch moves, on one upstream's word, once, and the log names the upstream and the
// block, never its URL. The same block asked again with the same hash moves nothing.
func TestReorgPastFinalityMovesEpoch(t *testing.T) {
	a := evmtest.NewNode(t, "a", 1, 100)
	b := evmtest.NewNode(t, "b", 1, 100)
	for _, n := range []*evmtest.Node{a, b} {
		n.SetFinality(2)
		n.SetFork(1)
	}
	h := started(t, nil, upstream{"eth", "a", a.URL}, upstream{"eth", "b", b.URL})
	h.checks(5 * time.Second) // every object now knows a finalized block with its hash, and has asked it again
	e0 := h.chainSummaries()["eth"]
	if e0.Finalized != 98 || e0.CacheEpoch == 0 {
		t.Fatalf("before: finalized %d, epoch %d", e0.Finalized, e0.CacheEpoch)
	}
	h.checks(5 * time.Second)
	if e := h.chainSummaries()["eth"].CacheEpoch; e != e0.CacheEpoch {
		t.Fatalf("the same finalized block asked again moved the epoch: %d, was %d", e, e0.CacheEpoch)
	}

	a.SetFork(2) // a's chain replaced every block, 98 too; b has not seen it yet
	h.checks(5 * time.Second)
	e1 := h.chainSummaries()["eth"].CacheEpoch
	if e1 <= e0.CacheEpoch {
		t.Fatalf("a's finalized block 98 replaced: epoch %d, was %d", e1, e0.CacheEpoch)
	}
	moved := 0
	for _, l := range h.host.Logs() {
		if strings.Contains(l, "upstream a answers another block at 98") {
			moved++
		}
	}
	if moved != 1 {
		t.Errorf("%d log lines of the replaced block, want 1: %q", moved, h.host.Logs())
	}
	h.checks(5 * time.Second)
	h.checks(5 * time.Second)
	if e := h.chainSummaries()["eth"]; e.CacheEpoch != e1 || e.Finalized != 98 {
		t.Errorf("after the move: epoch %d (moved at %d), finalized %d", e.CacheEpoch, e1, e.Finalized)
	}
	h.checkNoSecrets()
}
