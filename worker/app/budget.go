package app

import "github.com/evmlb/evmlb/internal/budget"

// resolveBudget finds the Limit of the budget name (budget.ClientName, budget.UpstreamName) in the App's own
// configuration, for its budget objects (durable.Budgets): an object trusts no limit an isolate sends.
// TODO(issue 22): client keys (CLIENT_KEYS) and the upstreams' max_rps / max_burst / max_per_day; until then no
// budget is configured and every lease is answered 404.
func (a *App) resolveBudget(name string) (budget.Limit, bool) {
	return budget.Limit{}, false
}
