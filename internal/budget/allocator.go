package budget

import (
	"math"
	"sync"
	"time"
)

// minDemand is the least demand an ask counts with: an isolate that asks has at least one request.
const minDemand = 0.5

// Allocator is a budget object's side: it shares the budget's rate among the isolates that hold a lease of it, in
// proportion to what each was offered lately, and counts the day. The zero value is not usable: NewAllocator.
//
// Shares: with Σ demand ≤ RPS every isolate gets its demand plus an equal part of what is left over (so an
// isolate whose traffic grows has room before its next ask); above it, RPS × its demand / Σ demand. The burst
// is shared like the rate. Under the limit a new isolate's share comes out of the others' at their next ask (within
// LeaseRenew): until then the rate may be over-granted, harmlessly, as every isolate is offered less than it holds.
// Over it, an isolate never gets more than the others leave, so what is granted at once stays within RPS.
type Allocator struct {
	mu      sync.Mutex
	holders map[string]*holder
	day     string
	used    uint64
}

// holder is one isolate's lease.
type holder struct {
	demand float64
	rate   float64
	until  time.Time
	left   int64 // of the day, granted at its last ask (it reports what it used of it at its next)
}

// NewAllocator makes an empty allocator (no lease, nothing used today).
func NewAllocator() *Allocator { return &Allocator{holders: map[string]*holder{}} }

// dayOf is the UTC day of t, as the day count is kept.
func dayOf(t time.Time) string { return t.UTC().Format(time.DateOnly) }

// nextDay is the start of the UTC day after t's.
func nextDay(t time.Time) time.Time {
	y, m, d := t.UTC().Date()
	return time.Date(y, m, d+1, 0, 0, 0, 0, time.UTC)
}

// Restore sets the day's count from storage (a new instance of the object).
func (a *Allocator) Restore(day string, used uint64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.day, a.used = day, used
}

// Day is the day's count, to store.
func (a *Allocator) Day() (day string, used uint64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.day, a.used
}

// roll starts a new day's count when now is on another day. The caller holds a.mu.
func (a *Allocator) roll(now time.Time) {
	if d := dayOf(now); d != a.day {
		a.day, a.used = d, 0
	}
}

// expire forgets the leases that ended. The caller holds a.mu.
func (a *Allocator) expire(now time.Time) {
	for id, h := range a.holders {
		if now.After(h.until) {
			delete(a.holders, id)
		}
	}
}

// Lease answers an isolate's ask under the limit lim.
func (a *Allocator) Lease(now time.Time, lim Limit, ask Ask) Grant {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.roll(now)
	a.used += ask.Used
	a.expire(now)
	until := now.Add(LeaseTTL)
	h := a.holders[ask.Isolate]
	if h == nil {
		h = &holder{}
		a.holders[ask.Isolate] = h
	}
	h.demand, h.until, h.left = max(ask.Demand, minDemand), until, 0
	g := Grant{Rate: -1, Until: until.UnixMilli(), Left: -1}
	if lim.PerDay > 0 && a.used >= lim.PerDay {
		h.rate = 0
		g.Rate, g.Left, g.RetryAt = 0, 0, nextDay(now).UnixMilli()
		return g
	}
	var sum float64
	for _, o := range a.holders {
		sum += o.demand
	}
	share := h.demand / sum // of the rate, and of what is left of the day
	if lim.RPS > 0 {
		if sum <= lim.RPS {
			h.rate = h.demand + (lim.RPS-sum)/float64(len(a.holders))
		} else {
			// Over the limit: its part by demand, but never more than the others leave (they hold leases granted
			// with older demands; each gives back what it holds above its part at its next ask).
			var others float64
			for id, o := range a.holders {
				if id != ask.Isolate {
					others += max(o.rate, 0)
				}
			}
			h.rate = min(lim.RPS*share, max(lim.RPS-others, 0))
		}
		share = h.rate / lim.RPS
		g.Rate, g.Burst = h.rate, max(1, lim.Capacity()*share)
	}
	if lim.PerDay > 0 {
		// What the others may still take of what they hold is theirs; of the rest, this isolate's part, but no
		// more than it would take before its next asks (what it holds beyond that would be lost to the others).
		free := int64(lim.PerDay - a.used)
		for id, o := range a.holders {
			if id != ask.Isolate {
				free -= o.left
			}
		}
		horizon := h.demand * 2 * LeaseTTL.Seconds()
		if lim.RPS > 0 {
			horizon = min(horizon, h.rate*2*LeaseTTL.Seconds()+lim.Capacity())
		}
		h.left = max(min(free, int64(math.Ceil(float64(lim.PerDay-a.used)*share)), int64(horizon)+1), 0) // ceil: the last one is someone's
		g.Left = h.left
	}
	return g
}

// Status is the object's view of its leases now.
func (a *Allocator) Status(now time.Time, name string) Status {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.roll(now)
	a.expire(now)
	s := Status{Name: name, Isolates: len(a.holders), Day: a.day, DayUsed: a.used}
	for _, h := range a.holders {
		s.Demand += h.demand
		s.Granted += max(h.rate, 0)
	}
	return s
}

// Capacity is the most the limit lets through at once: Burst, or RPS when unset, at least 1.
func (l Limit) Capacity() float64 {
	if l.Burst > 0 {
		return max(l.Burst, 1)
	}
	return max(l.RPS, 1)
}
