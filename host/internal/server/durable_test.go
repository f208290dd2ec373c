package server

import (
	"fmt"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/evmlb/evmlb/host/internal/clock"
	"github.com/evmlb/evmlb/internal/contract"
)

func TestStoragePersistsAcrossRestarts(t *testing.T) {
	dir := t.TempDir()
	h := newHost(t, Options{StateDir: dir})
	h.ok("/do?name=a&op=put&k=key1&v=one")
	h.ok("/do?name=a&op=put&k=key2&v=two")
	h.ok("/do?name=b&op=put&k=key1&v=other")
	who1 := h.ok("/do?name=a&op=whoami")
	if got := h.ok("/do?name=a&op=whoami"); got != who1 {
		t.Fatalf("instance changed without a restart: %s, %s", who1, got)
	}
	h.Close()

	h2 := newHost(t, Options{StateDir: dir})
	if got := h2.ok("/do?name=a&op=get&k=key1"); got != "one" {
		t.Fatalf("after restart: %q", got)
	}
	if got := h2.ok("/do?name=a&op=list&prefix=key"); got != "key1=one,key2=two" {
		t.Fatalf("list: %q", got)
	}
	who2 := h2.ok("/do?name=a&op=whoami")
	f1, f2 := strings.Fields(who1), strings.Fields(who2)
	if f1[0] != f2[0] || len(f1[0]) != 64 || f1[1] == f2[1] || f1[0] != IDFromName(contract.ClassChain, "a") {
		t.Fatalf("ids must be stable and tokens new: %s / %s", who1, who2)
	}
	h2.ok("/do?name=a&op=delete&k=key1")
	if got := h2.ok("/do?name=a&op=get&k=key1"); got != "<none>" {
		t.Fatalf("after delete: %q", got)
	}
	h2.ok("/do?name=a&op=deleteAll")
	if got := h2.ok("/do?name=a&op=list&prefix="); got != "" {
		t.Fatalf("after deleteAll: %q", got)
	}
	if got := h2.ok("/do?name=b&op=get&k=key1"); got != "other" {
		t.Fatalf("objects share storage: %q", got)
	}
	if got := h2.ok("/do?name=b&op=too-many"); got != "error=invalid" {
		t.Fatalf("129 keys in one put: %q", got)
	}
}

// TestObjectCall checks what an object receives: its role, id and instance token from the host, the path as
// the url, headers (lower-case) and body; and a call from one object to another.
func TestObjectCall(t *testing.T) {
	h := newHost(t, Options{})
	got := h.ok("/do?name=x&op=whoami")
	f := strings.Fields(got)
	if len(f) != 7 || f[0] != IDFromName(contract.ClassChain, "x") || len(f[1]) != 32 ||
		f[3] != "role=chain" || f[4] != "url=https://object/?name=x&op=whoami" || f[6] != "from=worker" {
		t.Fatal(got)
	}
	if !strings.Contains(got, " body=from-worker from=worker") {
		t.Fatal(got)
	}
	worker := strings.TrimPrefix(strings.Fields(h.ok("/whoami"))[3], "runtime=")
	if f[2] == worker {
		t.Fatal("the objects share the worker's runtime")
	}
	up := strings.Fields(h.ok("/do?name=x&op=call-upstream"))
	if up[0] != IDFromName(contract.ClassUpstream, "x") || up[3] != "role=upstream" || up[2] != f[2] || up[6] != "from=chain" {
		t.Fatal(up)
	}
	if st := h.Stats(); st.Instances != 2 {
		t.Fatalf("%+v", st)
	}
}

// TestBudgetObjects: contract 7's fourth class. An object call to BUDGET reaches an instance of
// BudgetDurableObject with role budget, whose storage is its own (not the chain object's of the same name) and
// outlives a restart, as every object's does.
func TestBudgetObjects(t *testing.T) {
	dir := t.TempDir()
	h := newHost(t, Options{StateDir: dir})
	budget := func(h *testHost, path string) string {
		return h.ok("/do?name=b&op=call-object&ns=" + contract.BindingBudget + "&path=" + url.QueryEscape(path))
	}
	f := strings.Fields(budget(h, "/?op=whoami"))
	if len(f) != 7 || f[0] != IDFromName(contract.ClassBudget, "b") || f[3] != "role="+contract.RoleBudget || f[6] != "from=chain" {
		t.Fatal(f)
	}
	h.ok("/do?name=b&op=put&k=day&v=chain")
	if got := budget(h, "/?op=put&k=day&v=2026-12-07%205"); got != "put" {
		t.Fatal(got)
	}
	if got := budget(h, "/?op=get&k=day"); got != "2026-12-07 5" {
		t.Fatalf("the budget object's storage: %q", got)
	}
	if st := h.Stats(); st.Instances != 2 {
		t.Fatalf("%+v", st)
	}
	h.Close()

	h2 := newHost(t, Options{StateDir: dir})
	if got := budget(h2, "/?op=get&k=day"); got != "2026-12-07 5" {
		t.Fatalf("after a restart: %q", got)
	}
	if got := h2.ok("/do?name=b&op=get&k=day"); got != "chain" {
		t.Fatalf("the chain object's storage: %q", got)
	}
}

// TestObjectCallsInOrder sends calls to one instance before any is answered: the instance sees them in order.
func TestObjectCallsInOrder(t *testing.T) {
	h := newHost(t, Options{})
	want := make([]string, 30)
	for i := range want {
		want[i] = fmt.Sprint(i)
	}
	if got := h.ok("/do-order?name=ord&n=30"); got != strings.Join(want, ",") {
		t.Fatal(got)
	}
}

func TestObjectTimeoutAndCrash(t *testing.T) {
	h := newHost(t, Options{})
	if code, got := h.do("GET", "/do?name=slow&op=slow&ms=2000&timeout=100", nil); code != 502 || got != "error=timeout" {
		t.Fatalf("%d %s", code, got)
	}
	who1 := strings.Fields(h.ok("/do?name=c&op=whoami"))
	code, body := h.do("GET", "/do?name=c&op=panic", nil)
	if code != 500 || body != contract.InternalErrorBody {
		t.Fatalf("a crashed object answers 500: %d %s", code, body)
	}
	who2 := strings.Fields(h.ok("/do?name=c&op=whoami"))
	if who1[0] != who2[0] || who1[1] == who2[1] || who1[2] == who2[2] {
		t.Fatalf("after the crash: same id, new instance and runtime: %v / %v", who1, who2)
	}
	st := h.Stats()
	if objects := st.Runtimes[len(st.Runtimes)-1]; objects.Name != "objects" || objects.Starts != 2 {
		t.Fatalf("%+v", st.Runtimes)
	}
	for _, rs := range st.Runtimes[:len(st.Runtimes)-1] {
		if rs.Starts != 1 {
			t.Fatalf("a worker runtime restarted: %+v", st.Runtimes)
		}
	}
}

// waitFor polls the probe's alarm log of instance name until it equals want.
func waitFor(t *testing.T, h *testHost, name, want string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	got := ""
	for time.Now().Before(deadline) {
		got = h.ok("/do?name=" + name + "&op=get&k=alarms")
		if got == want {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("alarm log %q, want %q", got, want)
}

// objectCalls is the number of calls begun in the objects runtime so far (requests to objects and alarms).
func objectCalls(h *testHost) int64 {
	st := h.Stats()
	return st.Runtimes[len(st.Runtimes)-1].Served
}

// waitAlarms polls until n alarms are armed (at most 10 s): an alarm call's failure arms its retry after the
// call has ended.
func waitAlarms(t *testing.T, h *testHost, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for h.Stats().Alarms != n {
		if time.Now().After(deadline) {
			t.Fatalf("%d alarms armed, want %d", h.Stats().Alarms, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// The alarm and its retries run on the host's clock (Options.Clock): the test advances it by the contract's
// back-off, 2 s then 4 s, instead of waiting for it.
func TestAlarmFiresAndRetries(t *testing.T) {
	c := clock.NewFake(time.Now())
	h := newHost(t, Options{Clock: c})
	h.ok("/do?name=al&op=put&k=fail&v=yes")
	h.ok("/do?name=al&op=setAlarm&in=20")
	if got := h.ok("/do?name=al&op=getAlarm"); got != "set" {
		t.Fatal(got)
	}
	c.Advance(20 * time.Millisecond)
	waitFor(t, h, "al", "chain:0", 5*time.Second)
	waitAlarms(t, h, 1) // the first retry, due after contract.AlarmBackoff(0)
	c.Advance(contract.AlarmBackoff(0) - time.Millisecond)
	if got := h.ok("/do?name=al&op=get&k=alarms"); got != "chain:0" {
		t.Fatalf("the retry ran before its back-off: %s", got)
	}
	c.Advance(time.Millisecond)
	waitFor(t, h, "al", "chain:0,chain:1", 5*time.Second)
	h.ok("/do?name=al&op=put&k=fail&v=no")
	waitAlarms(t, h, 1)
	c.Advance(contract.AlarmBackoff(1)) // the second retry, 4 s later; it succeeds
	waitFor(t, h, "al", "chain:0,chain:1,chain:2", 5*time.Second)
	deadline := time.Now().Add(10 * time.Second)
	for h.Stats().Calls != 0 && time.Now().Before(deadline) { // the alarm call ends after its last write
		time.Sleep(10 * time.Millisecond)
	}
	if got := h.ok("/do?name=al&op=getAlarm"); got != "none" {
		t.Fatalf("alarm after success: %s", got)
	}
	if st := h.Stats(); st.Alarms != 0 {
		t.Fatalf("%+v", st)
	}
}

// A deleted alarm does not fire when its time comes: the clock is advanced past it, and the objects runtime
// begins no call but the test's own.
func TestAlarmDeleted(t *testing.T) {
	c := clock.NewFake(time.Now())
	h := newHost(t, Options{Clock: c})
	h.ok("/do?name=d&op=setAlarm&in=300")
	h.ok("/do?name=d&op=deleteAlarm")
	before := objectCalls(h)
	c.Advance(time.Second)
	// A fired alarm would have begun its call (on the instance's storage queue) before this request's storage
	// operation runs.
	if got := h.ok("/do?name=d&op=get&k=alarms"); got != "<none>" {
		t.Fatalf("a deleted alarm fired: %s", got)
	}
	if n := objectCalls(h) - before; n != 1 {
		t.Fatalf("%d calls in the objects runtime, want 1 (the test's own): a deleted alarm fired", n)
	}
}

func TestAlarmSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	c := clock.NewFake(time.Now())
	h := newHost(t, Options{StateDir: dir, Clock: c})
	h.ok("/do?name=r&op=setAlarm&in=800")
	h.Close()
	h2 := newHost(t, Options{StateDir: dir, Clock: c})
	c.Advance(800 * time.Millisecond)
	waitFor(t, h2, "r", "chain:0", 5*time.Second)
}

// TestStorageOrder writes one key from many concurrent calls of one instance; every write lands, and reads
// see the last.
func TestStorageOrder(t *testing.T) {
	h := newHost(t, Options{})
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() { h.ok(fmt.Sprintf("/do?name=so&op=put&k=k%02d&v=%d", i, i)) })
	}
	wg.Wait()
	if got := strings.Count(h.ok("/do?name=so&op=list&prefix=k"), "="); got != 20 {
		t.Fatalf("%d keys", got)
	}
}
