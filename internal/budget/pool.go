package budget

import (
	"context"
	"sync"
	"time"
)

// Hooks are what a Pool needs from its host: the object call, background work and the clock.
type Hooks struct {
	// Fetch asks the budget's object (POST /lease of idFromName(ask.Name) in BUDGET).
	Fetch func(ctx context.Context, ask Ask) (Grant, error)
	// Background runs fn after the request's answer, in its context (workerd: waitUntil).
	Background func(ctx context.Context, fn func(context.Context))
	// After returns a channel closed once d has passed.
	After func(ctx context.Context, d time.Duration) <-chan struct{}
	// Now is the clock.
	Now func() time.Time
	// Failed, when set, is told each failed ask (to count and log it; never with a name that holds a secret).
	Failed func(name string, err error)
}

// Never is a Take's retryAfter for a request that can never pass: a batch larger than the limit's burst.
const Never = time.Duration(-1)

// Pool is an isolate's limiters, one per budget name. It is safe for concurrent use.
type Pool struct {
	isolate string
	h       Hooks
	mu      sync.Mutex
	byName  map[string]*entry
}

// entry is one budget's limiter and its asks.
type entry struct {
	l         Limiter
	asking    chan struct{} // closed when the ask in flight ends (nil: none)
	scheduled bool          // a renewal waits for its time
	due       time.Time     // when it should run
}

// NewPool makes the pool of the isolate (a random name made once per Go runtime).
func NewPool(isolate string, h Hooks) *Pool {
	return &Pool{isolate: isolate, h: h, byName: map[string]*entry{}}
}

// Take spends n requests (a batch of n calls: n) of the budget name, whose limit is lim; n above the burst is
// always refused (retryAfter Never). It waits on the budget's object only when the isolate holds no lease of it
// (its first request, after a long lapse, or when its
// traffic outgrew the lease's part of the day's limit); otherwise it decides locally and renews the
// lease in the background, LeaseRenew after the last grant, when something was offered since. false: refused,
// retryAfter says when to try again, and day whether the day's limit refused it (else the rate's).
func (p *Pool) Take(ctx context.Context, name string, lim Limit, n int) (ok bool, retryAfter time.Duration, day bool) {
	if lim.None() {
		return true, 0, false
	}
	if lim.RPS > 0 && float64(n) > lim.Capacity() {
		return false, Never, false
	}
	p.mu.Lock()
	e := p.byName[name]
	if e == nil {
		e = &entry{}
		p.byName[name] = e
	}
	for asked := false; ; asked = true {
		now := p.h.Now()                 // one clock reading per decision: in wasm each is a call into the host
		v, d := e.l.take(now, n, !asked) // offered once, when it came (not again after its wait)
		switch {
		case v == taken || v == refused || v == refusedDay:
			p.schedule(ctx, name, lim, e, now)
			if e.asking == nil && e.l.early(now) {
				e.startAsk()
				p.h.Background(ctx, func(ctx context.Context) { p.ask(ctx, name, lim, e) })
			}
			p.mu.Unlock()
			return v == taken, d, v == refusedDay
		case asked:
			p.mu.Unlock()
			return false, LeaseRenew, false // asked and still nothing to decide by: the object is slow or failing
		}
		wait := e.asking
		if wait == nil {
			wait = e.startAsk()
			p.mu.Unlock()
			p.ask(ctx, name, lim, e)
		} else {
			p.mu.Unlock()
		}
		select {
		case <-wait:
		case <-ctx.Done():
			return false, LeaseRenew, false
		}
		p.mu.Lock()
	}
}

// startAsk marks e asking. The caller holds p.mu and must call p.ask.
func (e *entry) startAsk() chan struct{} {
	e.asking = make(chan struct{})
	return e.asking
}

// ask asks the object for e's next grant and applies it (or fails open), then wakes who waits.
func (p *Pool) ask(ctx context.Context, name string, lim Limit, e *entry) {
	p.mu.Lock()
	a := e.l.next(p.h.Now(), name, p.isolate)
	p.mu.Unlock()
	g, err := p.h.Fetch(ctx, a)
	p.mu.Lock()
	now := p.h.Now()
	if err != nil {
		e.l.failOpen(now, lim, a)
	} else {
		e.l.apply(now, g)
	}
	close(e.asking)
	e.asking = nil
	p.mu.Unlock()
	if err != nil && p.h.Failed != nil {
		p.h.Failed(name, err)
	}
}

// schedule arranges e's renewal (Limiter.renewAt), in the background of ctx's call, unless
// one is arranged or running. The caller holds p.mu.
func (p *Pool) schedule(ctx context.Context, name string, lim Limit, e *entry, now time.Time) {
	if e.asking != nil || e.scheduled && now.Sub(e.due) < LeaseTTL { // one arranged and not lost
		return
	}
	e.scheduled, e.due = true, e.l.renewAt()
	wait := max(e.due.Sub(now), 0)
	p.h.Background(ctx, func(ctx context.Context) {
		select {
		case <-p.h.After(ctx, wait):
		case <-ctx.Done(): // the call ended first: the next take arranges another
			p.mu.Lock()
			e.scheduled = false
			p.mu.Unlock()
			return
		}
		p.mu.Lock()
		e.scheduled = false
		run := e.asking == nil && e.l.active()
		if run {
			e.startAsk()
		}
		p.mu.Unlock()
		if run {
			p.ask(ctx, name, lim, e)
		}
	})
}
