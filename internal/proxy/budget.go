package proxy

import (
	"context"
	"time"

	"github.com/evmlb/evmlb/internal/budget"
	"github.com/evmlb/evmlb/internal/config"
	"github.com/evmlb/evmlb/internal/retry"
)

// Budgets are the providers' request budgets (issue 22): each upstream's limit, spent through the isolate's pool
// of leases (internal/budget). The zero value limits nothing.
type Budgets struct {
	// Pool is the isolate's leases (nil: no budgets).
	Pool *budget.Pool
	// Limit is an upstream's budget (max_rps, max_burst, max_per_day); the zero Limit: none.
	Limit func(u config.Upstream) budget.Limit
}

// SetBudgets sets the providers' request budgets. Call it before the plane serves.
func (pl *Plane) SetBudgets(b Budgets) { pl.budgets = b }

// overBudget spends one attempt of u's budget: a request of n calls costs n, as providers count them. spent: the
// budget has no room now, and wait says when it will.
func (pl *Plane) overBudget(ctx context.Context, u config.Upstream, want retry.Expect) (wait time.Duration, spent bool) {
	if pl.budgets.Pool == nil || pl.budgets.Limit == nil {
		return 0, false
	}
	lim := pl.budgets.Limit(u)
	if lim.None() {
		return 0, false
	}
	n := 1
	if want.Batch {
		n = max(len(want.IDs), 1)
	}
	ok, wait, _ := pl.budgets.Pool.Take(ctx, budget.UpstreamName(u.Chain, u.Name), lim, n)
	if ok {
		return 0, false
	}
	if wait == budget.Never { // a batch larger than the burst: never sent to this upstream whole
		wait = budget.LeaseRenew
	}
	return wait, true
}
