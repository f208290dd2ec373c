package app

import (
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/evmlb/evmlb/internal/adminapi"
	"github.com/evmlb/evmlb/internal/evmtest"
)

// capsOf is name's caps in /admin/chains.
func (h *harness) capsOf(chain, name string) adminapi.Caps {
	h.t.Helper()
	var doc struct {
		Chains []struct {
			Chain string
			Table []adminapi.UpstreamRow
		}
	}
	h.admin("GET", "/admin/chains", &doc)
	for _, c := range doc.Chains {
		for _, u := range c.Table {
			if c.Chain == chain && u.Name == name {
				return u.Caps
			}
		}
	}
	h.t.Fatalf("no upstream %s/%s in /admin/chains", chain, name)
	return adminapi.Caps{}
}

// The state probe (issue 20): from the second successful health check on, each upstream's object reads the state at
// block 1 (and, when that is missing, 256 blocks below its head) in requests of their own, and the chain learns how
// far back each one's state reaches before any client read of old state. An archive node by configuration is not
// probed; the probe is sent again after capability_ttl only.
func TestStateProbeBeforeClientReads(t *testing.T) {
	full := evmtest.NewNode(t, "full", 1, 1000)
	deep := evmtest.NewNode(t, "deep", 1, 1000)
	arch := evmtest.NewNode(t, "arch", 1, 1000)
	full.SetMissingData("eth_getBalance") // "header not found" far below its head: it lacks that state
	var deepReads atomic.Int64            // deep has the state: a balance (evmtest's own answer is no quantity)
	deep.SetRawAnswer(func(body []byte) []byte {
		deepReads.Add(1)
		return []byte(`{"jsonrpc":"2.0","id":1,"result":"0x0"}`)
	})
	ups := []upstream{{"eth", "full", full.URL}, {"eth", "deep", deep.URL}, {"eth", "arch", arch.URL}}
	cfg := strings.Replace(configWith(`"cache": false, "capability_ttl": "10m"`, ups...), `"name":"arch",`, `"name":"arch","archive":true,`, 1)
	h := started(t, map[string]string{"UPSTREAM_CONFIG": cfg, "EVMLB_HEALTH_INTERVAL": "5s"})
	if n := count(full, "eth_getBalance") + int(deepReads.Load()); n != 0 {
		t.Fatalf("probed at the first check (height not known yet): %d", n)
	}
	h.checks(5 * time.Second) // the second checks: the probes
	if got := h.capsOf("eth", "full"); got.StateBelow != 1000-256 || got.StateBelowUntil.IsZero() || !got.StateFromUntil.IsZero() {
		t.Errorf("full's caps %+v, want lacks_state_below %d", got, 1000-256)
	}
	if got := h.capsOf("eth", "deep"); got.StateFrom != 1 || got.StateFromUntil.IsZero() || !got.StateBelowUntil.IsZero() {
		t.Errorf("deep's caps %+v, want has_state_from 1", got)
	}
	if got := h.capsOf("eth", "arch"); !got.Archive {
		t.Errorf("arch's caps %+v, want archive", got)
	}
	if f, d, a := count(full, "eth_getBalance"), deepReads.Load(), count(arch, "eth_getBalance"); f != 2 || d != 1 || a != 0 {
		t.Errorf("probes sent: full %d, deep %d, arch %d; want 2 (block 1, then 744), 1 (block 1 served), 0 (archive)", f, d, a)
	}
	// A client's first read of old state never reaches full.
	deepReads.Store(0)
	for range 5 {
		if s, got := h.post("eth", `{"jsonrpc":"2.0","id":1,"method":"eth_getBalance","params":["0x0000000000000000000000000000000000000001","0x10"]}`); s != 200 || strings.Contains(got, "error") {
			t.Fatalf("old read: %d %s", s, got)
		}
	}
	if n := count(full, "eth_getBalance"); n != 2 {
		t.Errorf("full asked %d times for old state after its probe proved it lacks it", n-2)
	}
	// What the chain learned is in its stored rows: a new runtime (the objects evicted, storage kept) still has it.
	h.restartApp()
	if got := h.capsOf("eth", "full"); got.StateBelow != 1000-256 || got.StateBelowUntil.IsZero() {
		t.Errorf("after a restart full's caps are %+v, want lacks_state_below %d", got, 1000-256)
	}
	// Not probed again before capability_ttl; probed again after.
	if d, a := deepReads.Load(), count(arch, "eth_getBalance"); d+int64(a) != 5 {
		t.Errorf("deep and arch, which have the state, answered %d and %d of 5 old reads", d, a)
	}
	deepReads.Store(0)
	h.checks(5 * time.Second)
	h.checks(5 * time.Second)
	if f, d := count(full, "eth_getBalance"), deepReads.Load(); f != 2 || d != 0 {
		t.Errorf("probed again before capability_ttl: full %d, deep %d calls", f, d)
	}
	h.checks(10 * time.Minute)
	if f := count(full, "eth_getBalance"); f != 4 {
		t.Errorf("full's eth_getBalance calls %d after capability_ttl, want 4 (probed again)", f)
	}
}

// The first checks a client's request waits for (a table loaded from storage after a restart) send no state probe,
// even when one is due: a slow read of old state would hold the request up. The next alarm's check sends it.
func TestStateProbeNotInFirstChecks(t *testing.T) {
	full := evmtest.NewNode(t, "full", 1, 1000)
	full.SetMissingData("eth_getBalance")
	h := started(t, map[string]string{"EVMLB_HEALTH_INTERVAL": "5s"}, upstream{"eth", "full", full.URL})
	h.restartApp()
	before := full.Calls()
	if s, got := h.post("eth", `{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber","params":[]}`); s != 200 {
		t.Fatalf("%d %s", s, got)
	}
	if full.Calls() == before {
		t.Fatal("no first check ran after the restart")
	}
	if n := count(full, "eth_getBalance"); n != 0 {
		t.Errorf("the first checks sent %d state probes", n)
	}
	h.checks(5 * time.Second)
	if n := count(full, "eth_getBalance"); n != 2 {
		t.Errorf("the alarm's check sent %d state probe reads, want 2", n)
	}
}
