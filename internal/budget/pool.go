package budget

import (
	"context"
	"time"
)

// Hooks are what a Pool needs from its host: the object call, background work and the clock.
type Hooks struct {
	// Fetch asks the budget's object (POST /lease of idFromName(ask.Name) in BUDGET).
	Fetch func(ctx context.Context, ask Ask) (Grant, error)
	// Background runs fn after the request's answer, in its context (workerd: waitUntil).
	Background func(ctx context.Context, fn func(context.Context))
	// Now is the clock.
	Now func() time.Time
}

// Pool is an isolate's limiters, one per budget name. It is safe for concurrent use.
type Pool struct {
	isolate string
	h       Hooks
}

// NewPool makes the pool of the isolate (a random name made once per Go runtime).
func NewPool(isolate string, h Hooks) *Pool { return &Pool{isolate: isolate, h: h} }

// Take spends n requests (a batch of n calls: n) of the budget name, whose limit is lim; n above the burst is
// always refused. It waits on the budget's object only when the
// isolate holds no lease of it (its first request, or after a lapse); otherwise it decides locally and renews the
// lease in the background. false: refused, and retryAfter says when to try again.
func (p *Pool) Take(ctx context.Context, name string, lim Limit, n int) (ok bool, retryAfter time.Duration) {
	return true, 0 // TODO(issue 22): the limiter
}
