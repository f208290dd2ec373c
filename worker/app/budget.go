package app

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strings"

	"github.com/evmlb/evmlb/internal/budget"
	"github.com/evmlb/evmlb/internal/config"
	"github.com/evmlb/evmlb/internal/platform"
)

// newPool makes the Go runtime's budget.Pool: one per App, named at random (16 hex digits of crypto/rand), its
// leases asked of the budgets' objects through the protocol client.
func (a *App) newPool(p platform.Platform) *budget.Pool {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return budget.NewPool(hex.EncodeToString(b[:]), budget.Hooks{Fetch: a.client.Budget, Background: p.Background, After: p.After, Now: p.Now,
		Failed: func(name string, err error) {
			// A budget's name is a client's or an upstream's name, never a key or a URL.
			p.Logf("budget %s: its object could not be asked (this isolate keeps the whole limit until it can): %v", name, err)
		}})
}

// resolveBudget is the Limit of the budget name (budget.ClientName, budget.UpstreamName) in this App's
// configuration: a client's rps, burst and per_day from CLIENT_KEYS, an upstream's max_rps, max_burst and
// max_per_day from UPSTREAM_CONFIG. false: no such budget (or one that limits nothing). The budget objects find
// their Limit through it (durable.NewBudgets), so that the object and the isolates read the same configuration.
func (a *App) resolveBudget(name string) (budget.Limit, bool) {
	if client, ok := strings.CutPrefix(name, budget.ClientName("")); ok {
		c, found := a.keys.Find(client)
		if !found || c.Limit.None() {
			return budget.Limit{}, false
		}
		return c.Limit, true
	}
	if rest, ok := strings.CutPrefix(name, strings.TrimSuffix(budget.UpstreamName("", ""), "/")); ok {
		chain, up, ok := strings.Cut(rest, "/")
		if !ok || a.env.Config == nil {
			return budget.Limit{}, false
		}
		u, found := a.env.Config.Lookup(chain, up)
		if !found || !u.HasBudget() {
			return budget.Limit{}, false
		}
		return UpstreamLimit(u.MaxRPS, u.MaxBurst, u.MaxPerDay), true
	}
	return budget.Limit{}, false
}

// UpstreamLimit is an upstream's budget.Limit from its max_rps, max_burst (0: max_rps) and max_per_day.
func UpstreamLimit(maxRPS, maxBurst, maxPerDay uint64) budget.Limit {
	l := budget.Limit{RPS: float64(maxRPS), Burst: float64(maxBurst), PerDay: maxPerDay}
	if l.Burst == 0 {
		l.Burst = l.RPS
	}
	return l
}

// budgetStatusOf reads the budget object's /status (budget.Status) for /admin/clients.
func (a *App) budgetStatusOf(ctx context.Context, name string) (budget.Status, error) {
	return a.client.BudgetStatus(ctx, name)
}

// upstreamBudget is the request budget of u the data plane spends (the zero Limit: none).
func upstreamBudget(u config.Upstream) budget.Limit {
	if !u.HasBudget() {
		return budget.Limit{}
	}
	return UpstreamLimit(u.MaxRPS, u.MaxBurst, u.MaxPerDay)
}

// budgetNames are the names of every configured budget: the clients' with a limit, the upstreams' with one.
func (a *App) budgetNames() []string {
	var names []string
	for _, c := range a.keys.Clients() {
		if !c.Limit.None() {
			names = append(names, budget.ClientName(c.Name))
		}
	}
	for _, u := range a.env.Config.Upstreams {
		if u.HasBudget() {
			names = append(names, budget.UpstreamName(u.Chain, u.Name))
		}
	}
	return names
}
