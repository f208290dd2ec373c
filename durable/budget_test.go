package durable

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/evmlb/evmlb/internal/budget"
	"github.com/evmlb/evmlb/internal/contract"
	"github.com/evmlb/evmlb/internal/platform/memplatform"
	"github.com/evmlb/evmlb/internal/protocol"
)

// budgetHost serves the budget objects alone on the in-memory host.
type budgetHost struct {
	*Budgets
	h      *memplatform.Host
	client protocol.Client
}

func (budgetHost) Alarm(context.Context, string, string, int) error { return nil }

var budgetStart = time.Date(2026, 12, 7, 8, 0, 0, 0, time.UTC)

func newBudgetHost(t *testing.T) budgetHost {
	t.Helper()
	h := memplatform.New(nil, nil, budgetStart)
	p := h.Platform()
	limits := map[string]budget.Limit{budget.ClientName("app1"): {RPS: 10, Burst: 20, PerDay: 1000}}
	resolve := func(name string) (budget.Limit, bool) { l, ok := limits[name]; return l, ok }
	bh := budgetHost{Budgets: NewBudgets(Env{P: p}, resolve), h: h, client: protocol.Client{P: p}}
	h.Bind(bh)
	return bh
}

// raw sends a request to the budget object name as is, and answers its status and body.
func (bh budgetHost) raw(t *testing.T, name, method, path, body string) (int, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, contract.ObjectURLBase+path, rd)
	req.Header.Set(protocol.HeaderName, name)
	resp, err := bh.h.Platform().Budgets.Fetch(t.Context(), name, req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestBudgetLease: a lease is the allocator's grant under the configured limit; every bad ask gets its JSON-RPC
// error and status, an unknown budget 404.
func TestBudgetLease(t *testing.T) {
	bh := newBudgetHost(t)
	name := budget.ClientName("app1")
	g, err := bh.client.Budget(t.Context(), budget.Ask{Name: name, Isolate: "0123456789abcdef", Demand: 4})
	if err != nil {
		t.Fatal(err)
	}
	if g.Rate != 10 || g.Until != budgetStart.Add(budget.LeaseTTL).UnixMilli() {
		t.Fatalf("grant %+v", g)
	}
	if _, err := bh.client.Budget(t.Context(), budget.Ask{Name: budget.ClientName("nobody"), Isolate: "i"}); err == nil ||
		!strings.Contains(err.Error(), "HTTP 404") || !strings.Contains(err.Error(), "-32062") {
		t.Fatalf("an unknown budget: %v", err)
	}
	long := strings.Repeat("x", maxAskBytes)
	for _, tc := range []struct {
		method, path, body string
		status             int
		want               string
	}{
		{"POST", "/lease", `{"name":"client:app1",`, 400, "-32700"},
		{"POST", "/lease", `[1]`, 400, "-32600"},
		{"POST", "/lease", ``, 400, "-32700"},
		{"POST", "/lease", `{"name":"client:app1"}`, 400, "lease: isolate must be 1 to 64 bytes"},
		{"POST", "/lease", `{"name":"client:app1","isolate":"i","demand":-1}`, 400, "lease: demand must not be negative"},
		{"POST", "/lease", `{"name":"client:other","isolate":"i"}`, 400, "the ask's name is not this object's"},
		{"POST", "/lease", `{"name":"client:app1","isolate":"` + long + `"}`, 413, "-32060"},
		{"GET", "/lease", ``, 405, "-32063"},
		{"POST", "/status", `{}`, 405, "-32063"},
		{"POST", "/nothing", `{}`, 404, "-32062"},
	} {
		status, body := bh.raw(t, name, tc.method, tc.path, tc.body)
		if status != tc.status || !strings.Contains(body, tc.want) || !strings.Contains(body, `"jsonrpc":"2.0"`) {
			t.Errorf("%s %s %.60s: %d %s, want %d and %q", tc.method, tc.path, tc.body, status, body, tc.status, tc.want)
		}
	}
}

// TestBudgetDayCount: a lease that reports requests used stores the day's count before it answers (a storage
// that cannot write fails the lease, one that reports none does not write); a new instance goes on from the stored
// count; a damaged value starts afresh; /clear forgets it all.
func TestBudgetDayCount(t *testing.T) {
	bh := newBudgetHost(t)
	ctx, name := t.Context(), budget.ClientName("app1")
	ask := func(used uint64) error {
		_, err := bh.client.Budget(ctx, budget.Ask{Name: name, Isolate: "i1", Demand: 1, Used: used})
		return err
	}
	if err := ask(3); err != nil {
		t.Fatal(err)
	}
	st := bh.h.Storage(contract.RoleBudget, name)
	if got := st.Keys()[keyDay]; got != "2026-12-07 3" {
		t.Fatalf("stored %q", got)
	}
	st.FailPuts(true)
	if err := ask(0); err != nil {
		t.Fatalf("a lease that used nothing wrote: %v", err)
	}
	if err := ask(1); err == nil || !strings.Contains(err.Error(), "HTTP 500") {
		t.Fatalf("a lease whose count could not be stored: %v", err)
	}
	st.FailPuts(false)

	bh.h.Restart() // new instances: the memory is gone, storage is not
	status := func() budget.Status {
		s, err := bh.client.BudgetStatus(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	if s := status(); s.Name != name || s.Day != "2026-12-07" || s.DayUsed != 3 {
		t.Fatalf("after a restart: %+v", s) // what was stored: the failed put's 1 was in the lost memory only
	}
	bh.h.Restart()
	if err := ask(2); err != nil {
		t.Fatal(err)
	}
	if got := st.Keys()[keyDay]; got != "2026-12-07 5" {
		t.Fatalf("stored %q after a restart", got)
	}

	st.Put(ctx, map[string]string{keyDay: "yesterday 12"})
	bh.h.Restart()
	if s := status(); s.DayUsed != 0 {
		t.Fatalf("a damaged count was read: %+v", s)
	}

	if err := ask(5); err != nil {
		t.Fatal(err)
	}
	if err := bh.client.BudgetClear(ctx, name); err != nil {
		t.Fatal(err)
	}
	if len(st.Keys()) != 0 || status().DayUsed != 0 {
		t.Fatalf("after /clear: %v %+v", st.Keys(), status())
	}
	if err := ask(1); err != nil {
		t.Fatal(err)
	}
	if got := st.Keys()[keyDay]; got != "2026-12-07 1" {
		t.Fatalf("stored %q after /clear", got)
	}
}

func TestParseDay(t *testing.T) {
	for v, want := range map[string]bool{"2026-12-07 0": true, "2026-12-07 18446744073709551615": true,
		"2026-12-07": false, "2026-13-07 1": false, "2026-12-07 -1": false, "2026-12-07 1 2": false, " 1": false} {
		if _, _, ok := parseDay(v); ok != want {
			t.Errorf("parseDay(%q) ok = %v", v, ok)
		}
	}
}
