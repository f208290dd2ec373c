package app

import (
	"context"

	"github.com/evmlb/evmlb/internal/budget"
	"github.com/evmlb/evmlb/internal/metrics"
)

// AdminClients is the GET /admin/clients answer: every client of CLIENT_KEYS, what it may do and what it did.
// It never holds a key or a key's hash.
type AdminClients struct {
	// ClientKeys: CLIENT_KEYS is set (false: the chains are open, Clients is empty).
	ClientKeys bool          `json:"client_keys"`
	Clients    []AdminClient `json:"clients"`
	// Unknown counts, per chain, the requests refused 401 (no key, an unknown one, or two different ones).
	Unknown map[string]uint64 `json:"unknown"`
	// Errors names the chains whose counts could not be read (chain → error).
	Errors map[string]string `json:"errors,omitempty"`
}

// AdminClient is one client's entry of /admin/clients.
type AdminClient struct {
	Name string `json:"name"`
	// Chains it may use; ["*"]: every chain.
	Chains []string `json:"chains"`
	Allow  []string `json:"allow,omitempty"`
	Deny   []string `json:"deny,omitempty"`
	// Limits are its rps, burst and per_day (absent: none).
	Limits budget.Limit `json:"limits"`
	// Requests counts its requests: chain → outcome (ok, limited, day_limited, denied, chain_denied) → count,
	// every isolate's (evmlb_client_requests_total).
	Requests map[string]map[string]uint64 `json:"requests"`
	// Totals sums Requests over the chains, by outcome.
	Totals map[string]uint64 `json:"totals"`
	// Budget is its budget object's view now (isolates holding a lease, their demand and grants, the day's
	// count); absent for a client without limits, BudgetError when the object could not be read.
	Budget      *budget.Status `json:"budget,omitempty"`
	BudgetError string         `json:"budget_error,omitempty"`
}

// adminClients answers GET /admin/clients from the chains' counts and the clients' budget objects.
func (a *App) adminClients(ctx context.Context) any {
	return a.clientsView(ctx, a.allChainMetrics(ctx))
}

// clientsView is /admin/clients's answer from the chains' metrics already read (the dashboard reads them once).
func (a *App) clientsView(ctx context.Context, chains []chainMetrics) AdminClients {
	out := AdminClients{ClientKeys: a.keys.Enabled(), Clients: []AdminClient{}, Unknown: map[string]uint64{}}
	list := a.keys.Clients()
	for _, c := range list {
		e := AdminClient{Name: c.Name, Chains: c.Chains, Allow: c.Allow, Deny: c.Deny, Limits: c.Limit,
			Requests: map[string]map[string]uint64{}, Totals: map[string]uint64{}}
		if e.Chains == nil {
			e.Chains = []string{"*"}
		}
		out.Clients = append(out.Clients, e)
	}
	for _, cm := range chains {
		if cm.err != nil {
			if out.Errors == nil {
				out.Errors = map[string]string{}
			}
			out.Errors[cm.chain] = errText(cm.err)
			continue
		}
		var counts map[string]map[string]uint64
		if cm.m.Metrics != nil {
			counts = cm.m.Metrics.Clients
		}
		if n := counts[metrics.ClientUnknown][metrics.ClientUnauthorized]; n > 0 || out.ClientKeys {
			out.Unknown[cm.chain] = n
		}
		for i := range out.Clients {
			e := &out.Clients[i]
			by := counts[e.Name]
			if len(by) == 0 {
				continue
			}
			m := map[string]uint64{}
			for oc, n := range by {
				m[oc] = n
				e.Totals[oc] += n
			}
			e.Requests[cm.chain] = m
		}
	}
	type read struct {
		st  *budget.Status
		err error
	}
	statuses := each(out.Clients, func(e AdminClient) read {
		if e.Limits.None() {
			return read{}
		}
		st, err := a.budgetStatusOf(ctx, budget.ClientName(e.Name))
		if err != nil {
			return read{err: err}
		}
		return read{st: &st}
	})
	for i, r := range statuses {
		out.Clients[i].Budget = r.st
		if r.err != nil {
			out.Clients[i].BudgetError = errText(r.err)
		}
	}
	return out
}
