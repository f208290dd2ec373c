// Package budget keeps limits that hold for the whole deployment, not per isolate: a client key's requests per
// second, burst and per day, and a provider's max_rps and per day (issue 22). Each budget has one Durable Object
// (namespace BUDGET, named by the budget's Name) whose Allocator leases each isolate a share of the rate for a
// short while; the isolate's Limiter spends its share locally, so that the hot path never waits on the object
// except for an isolate's first request of a budget (or after its lease lapsed). RATIONALE.md says why.
//
// The package is pure: no I/O, no clock of its own (every call takes now).
package budget

import (
	"time"
)

// Lease timing. An isolate asks again once half its lease has gone by (and only if it took or was refused
// something since), so an active isolate makes about one object call per budget per LeaseRenew, an idle one none.
const (
	// LeaseTTL is how long a grant holds: past it the isolate's share goes back to the others.
	LeaseTTL = 2 * time.Second
	// LeaseRenew is when an isolate asks again, counted from its last grant.
	LeaseRenew = LeaseTTL / 2
	// FirstRenew is when an isolate asks again after its first grant, which the object made knowing nothing of
	// its traffic. A whole LeaseRenew: a shorter first window measured the demand too roughly (a 10/s isolate
	// counted 5 ± 2 in half a second, and a key under its limit looked over it).
	FirstRenew = LeaseRenew
	// firstFill is how much of its rate a first grant's bucket starts with (seconds' worth), not the whole
	// burst: isolates starting together would otherwise each begin with their burst.
	firstFill = FirstRenew
)

// Limit is a budget's promise for the whole deployment. The zero value limits nothing.
type Limit struct {
	// RPS is requests per second (0: no rate limit).
	RPS float64 `json:"rps,omitempty"`
	// Burst is how many requests may come at once above the rate (0 with RPS set: RPS, at least 1).
	Burst float64 `json:"burst,omitempty"`
	// PerDay is requests per UTC day (0: none).
	PerDay uint64 `json:"per_day,omitempty"`
}

// None reports whether l limits nothing.
func (l Limit) None() bool { return l.RPS <= 0 && l.PerDay == 0 }

// Names of budgets: the object of a budget is idFromName(Name) in the BUDGET namespace.
func ClientName(client string) string            { return "client:" + client }
func UpstreamName(chain, upstream string) string { return "upstream:" + chain + "/" + upstream }

// Ask is what an isolate sends to a budget's object (POST /lease).
type Ask struct {
	// Name is the budget's (ClientName, UpstreamName): the object looks its Limit up in its own configuration.
	Name string `json:"name"`
	// Isolate names the asking Go runtime (random, made once per runtime).
	Isolate string `json:"isolate"`
	// Demand is the requests per second this isolate was offered lately, taken or refused (its estimate).
	Demand float64 `json:"demand"`
	// Used is how many the isolate took since its last ask (the day's count).
	Used uint64 `json:"used,omitempty"`
}

// Grant is the object's answer to an Ask: the isolate's share until Until.
type Grant struct {
	// Rate is the requests per second this isolate may take.
	Rate float64 `json:"rate"`
	// Burst is its bucket's capacity.
	Burst float64 `json:"burst"`
	// Until is when the lease ends (Unix ms): past it the isolate asks again before it takes more.
	Until int64 `json:"until"`
	// Left is how many more it may take before its next ask, for the day's limit (-1: no day limit).
	Left int64 `json:"left"`
	// RetryAt, when set, is when something may be granted again (Unix ms): the day's budget is spent.
	RetryAt int64 `json:"retry_at,omitempty"`
}

// Status is a budget object's view for /admin/clients.
type Status struct {
	Name     string  `json:"name"`
	Isolates int     `json:"isolates"`
	Demand   float64 `json:"demand"`
	Granted  float64 `json:"granted"`
	Day      string  `json:"day,omitempty"`
	DayUsed  uint64  `json:"day_used"`
}
