// Package clock is the wazero host's time: what its timers (the event loop's, sleep operations, object-call
// timeouts, alarms and their back-off) wait on and what Go's and JS's clocks read in a runtime. Real is the real
// clock; a test passes a Fake (server.Options.Clock) and advances it instead of sleeping.
package clock

import (
	"sync"
	"time"
)

// Clock tells the time and runs functions later.
type Clock interface {
	Now() time.Time
	// AfterFunc calls f once d has passed (on a goroutine of its own, or the one advancing a Fake).
	AfterFunc(d time.Duration, f func()) Timer
}

// Timer is a pending AfterFunc, as time.Timer.
type Timer interface {
	// Stop cancels the call; false when it has already run or was stopped.
	Stop() bool
	// Reset makes the call due d from now (again, if it ran); false when it had run or was stopped.
	Reset(d time.Duration) bool
}

// Real is the real clock.
var Real Clock = real{}

type real struct{}

func (real) Now() time.Time                            { return time.Now() }
func (real) AfterFunc(d time.Duration, f func()) Timer { return time.AfterFunc(d, f) }

// Or is c, or Real when c is nil.
func Or(c Clock) Clock {
	if c == nil {
		return Real
	}
	return c
}

// Fake is a clock that moves only when Advance is called. Safe for concurrent use.
type Fake struct {
	mu     sync.Mutex
	now    time.Time
	timers map[*fakeTimer]struct{}
	seq    uint64
}

// NewFake is a fake clock at start.
func NewFake(start time.Time) *Fake { return &Fake{now: start, timers: map[*fakeTimer]struct{}{}} }

// Now is the clock's time.
func (c *Fake) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// AfterFunc schedules f at Now()+d; with d of 0 or less, f runs at once on a goroutine of its own (as
// time.AfterFunc's would: the caller may hold a lock f takes).
func (c *Fake) AfterFunc(d time.Duration, f func()) Timer {
	t := &fakeTimer{c: c, f: f}
	t.Reset(d)
	return t
}

// Pending is the number of scheduled calls.
func (c *Fake) Pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.timers)
}

// Advance moves the clock forward by d, running every call that comes due on the way in time order (in the
// caller's goroutine, with the clock at the call's time, no lock held); a call scheduled by one that runs is run
// too if it falls due before the end.
func (c *Fake) Advance(d time.Duration) {
	c.mu.Lock()
	end := c.now.Add(d)
	c.mu.Unlock()
	for {
		c.mu.Lock()
		var next *fakeTimer
		for t := range c.timers {
			if !t.at.After(end) && (next == nil || t.at.Before(next.at) || t.at.Equal(next.at) && t.seq < next.seq) {
				next = t
			}
		}
		if next == nil {
			if end.After(c.now) {
				c.now = end
			}
			c.mu.Unlock()
			return
		}
		delete(c.timers, next)
		if next.at.After(c.now) {
			c.now = next.at
		}
		c.mu.Unlock()
		next.f()
	}
}

type fakeTimer struct {
	c   *Fake
	f   func()
	at  time.Time
	seq uint64
}

// schedule (re)arms t at now+d. With c.mu held.
func (t *fakeTimer) schedule(d time.Duration) {
	t.c.seq++
	t.at, t.seq = t.c.now.Add(d), t.c.seq
	t.c.timers[t] = struct{}{}
}

func (t *fakeTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	_, ok := t.c.timers[t]
	delete(t.c.timers, t)
	return ok
}

func (t *fakeTimer) Reset(d time.Duration) bool {
	t.c.mu.Lock()
	_, ok := t.c.timers[t]
	if d <= 0 {
		delete(t.c.timers, t)
		t.c.mu.Unlock()
		go t.f()
		return ok
	}
	t.schedule(d)
	t.c.mu.Unlock()
	return ok
}
