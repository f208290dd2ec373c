package server

import (
	"strings"
	"testing"

	"github.com/evmlb/evmlb/host/internal/testprog"
)

// TestBudgetProgram runs testdata/budget (app.wasm's budget object, durable.Budgets, behind Go's side of the
// contract; scripts/budget-workerd-check.sh runs it in workerd): its Worker leases through the BUDGET namespace,
// the object answers from its configured limit, refuses an unknown budget, and its day's count outlives a
// restart of the host; /clear forgets it.
func TestBudgetProgram(t *testing.T) {
	wasm, err := testprog.Build("budget")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	h := newHost(t, Options{WasmPath: wasm, StateDir: dir, WorkerRuntimes: 1})
	for _, used := range []string{"3", "2"} {
		// A part of the day's 100 (the allocator sizes it to the isolate's demand), never none: -1 is no day limit.
		if got := h.ok("/lease/client:smoke?used=" + used); !strings.Contains(got, `"rate":5,`) || !strings.Contains(got, `"left":`) ||
			strings.Contains(got, `"left":-1`) || strings.Contains(got, `"left":0,`) {
			t.Fatalf("lease: %s", got)
		}
	}
	if got := h.ok("/status/client:smoke"); !strings.Contains(got, `"name":"client:smoke"`) || !strings.Contains(got, `"day_used":5`) {
		t.Fatalf("status: %s", got)
	}
	if code, got := h.do("GET", "/lease/client:nobody", nil); code != 502 || !strings.Contains(got, "HTTP 404") || !strings.Contains(got, "-32062") {
		t.Fatalf("an unknown budget: %d %s", code, got)
	}
	h.Close()

	h = newHost(t, Options{WasmPath: wasm, StateDir: dir, WorkerRuntimes: 1})
	if got := h.ok("/status/client:smoke"); !strings.Contains(got, `"day_used":5`) {
		t.Fatalf("status after a restart: %s", got)
	}
	h.ok("/clear/client:smoke")
	if got := h.ok("/status/client:smoke"); !strings.Contains(got, `"day_used":0`) {
		t.Fatalf("status after /clear: %s", got)
	}
}
