package budget

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// sim is a world for Pools and an Allocator inside a synctest bubble (fake clock, goroutines settled by the
// runtime): the Allocator stands for the budget's object, each Pool for an isolate.
type sim struct {
	alloc *Allocator
	lim   Limit
	// latency is how long an ask takes to come back; fail makes asks fail.
	latency time.Duration
	fail    atomic.Bool
	asks    atomic.Int64
	wg      sync.WaitGroup
}

func newSim(lim Limit) *sim { return &sim{alloc: NewAllocator(), lim: lim} }

func after(_ context.Context, d time.Duration) <-chan struct{} {
	ch := make(chan struct{})
	time.AfterFunc(d, func() { close(ch) })
	return ch
}

func (s *sim) pool(name string) *Pool {
	return NewPool(name, Hooks{
		Fetch: func(ctx context.Context, a Ask) (Grant, error) {
			s.asks.Add(1)
			time.Sleep(s.latency)
			if s.fail.Load() {
				return Grant{}, errors.New("object unreachable")
			}
			return s.alloc.Lease(time.Now(), s.lim, a), nil
		},
		Background: func(ctx context.Context, fn func(context.Context)) { go fn(ctx) },
		After:      after,
		Now:        time.Now,
	})
}

// result counts a run's answers.
type result struct {
	mu                 sync.Mutex
	taken, refused     int
	dayRefused         int // refusals named the day's limit's
	badRetry, maxRetry time.Duration
	perSecond          map[int64]int
	firstRefusalAfter  int // taken before the first refusal (-1: none)
}

// offer runs a load: every step, each isolate i is offered rates[i] × step requests (fractions carried), for dur.
func (s *sim) offer(pools []*Pool, rates []float64, dur, step time.Duration) *result {
	r := &result{perSecond: map[int64]int{}, firstRefusalAfter: -1}
	carry := make([]float64, len(pools))
	start := time.Now()
	for t := time.Duration(0); t < dur; t += step {
		for i, p := range pools {
			carry[i] += rates[i] * step.Seconds()
			for ; carry[i] >= 1; carry[i]-- {
				s.wg.Go(func() {
					ok, d, day := p.Take(context.Background(), "client:a", s.lim, 1)
					sec := int64(time.Since(start) / time.Second)
					r.mu.Lock()
					defer r.mu.Unlock()
					if ok {
						r.taken++
						r.perSecond[sec]++
						return
					}
					r.refused++
					if day {
						r.dayRefused++
					}
					if r.firstRefusalAfter < 0 {
						r.firstRefusalAfter = r.taken
					}
					if d <= 0 {
						r.badRetry = d
					}
					r.maxRetry = max(r.maxRetry, d)
				})
			}
		}
		time.Sleep(step)
	}
	s.wg.Wait()
	time.Sleep(2 * LeaseTTL) // the renewals arranged run out (synctest wants every goroutine ended)
	return r
}

func pools(s *sim, n int) []*Pool {
	var ps []*Pool
	for i := range n {
		ps = append(ps, s.pool(fmt.Sprintf("isolate-%d", i)))
	}
	return ps
}

// The figures: a key of 50/s offered 200/s over four isolates for 60 s is accepted at 45–55/s, and one
// offered 40/s is never refused.
func TestLimitHoldsAcrossIsolates(t *testing.T) {
	for _, tc := range []struct {
		name    string
		rates   []float64
		latency time.Duration
	}{
		{"even", []float64{50, 50, 50, 50}, 0},
		{"uneven", []float64{140, 30, 20, 10}, 0},
		{"one hot", []float64{197, 1, 1, 1}, 0},
		{"slow object", []float64{50, 50, 50, 50}, 80 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := newSim(Limit{RPS: 50, Burst: 50})
				s.latency = tc.latency
				const dur = 60 * time.Second
				r := s.offer(pools(s, 4), tc.rates, dur, 5*time.Millisecond)
				rate := float64(r.taken) / dur.Seconds()
				t.Logf("taken %.2f/s, refused %.2f/s, object asks %.2f/s, longest Retry-After %v", rate, float64(r.refused)/dur.Seconds(), float64(s.asks.Load())/dur.Seconds(), r.maxRetry)
				if rate < 45 || rate > 55 {
					t.Errorf("taken %.2f/s, want 45–55", rate)
				}
				if r.badRetry != 0 {
					t.Errorf("a refusal had retryAfter %v", r.badRetry)
				}
				if r.dayRefused != 0 {
					t.Errorf("%d refusals of a limit with no per-day part named the day's", r.dayRefused)
				}
				if asks := float64(s.asks.Load()) / dur.Seconds(); asks > 4*1.5 {
					t.Errorf("%.2f asks/s from 4 isolates: more than about one per isolate per LeaseRenew", asks)
				}
			})
		})
	}
}

func TestUnderLimitNeverRefused(t *testing.T) {
	for _, rates := range [][]float64{{10, 10, 10, 10}, {37, 1, 1, 1}, {0, 0, 40, 0}, {42, 1, 1, 1}} {
		synctest.Test(t, func(t *testing.T) {
			s := newSim(Limit{RPS: 50, Burst: 50})
			s.latency = 30 * time.Millisecond
			r := s.offer(pools(s, 4), rates, 60*time.Second, 5*time.Millisecond)
			if r.refused != 0 {
				t.Errorf("rates %v (under 50/s): %d refused of %d", rates, r.refused, r.taken+r.refused)
			}
		})
	}
}

// A day's limit holds across isolates to within what the leases in flight allow, and a refusal says to come back
// at the next UTC day.
func TestPerDayAcrossIsolates(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newSim(Limit{PerDay: 1000})
		r := s.offer(pools(s, 4), []float64{30, 20, 10, 5}, 60*time.Second, 5*time.Millisecond)
		t.Logf("taken %d, refused %d, day used %v, object asks %d", r.taken, r.refused, dayUsed(s.alloc), s.asks.Load())
		if s.asks.Load() > 4*60*2 {
			t.Errorf("%d asks in 60 s from 4 isolates", s.asks.Load())
		}
		if r.taken < 990 || r.taken > 1000 {
			t.Errorf("taken %d in a day limited to 1000, want 990–1000", r.taken)
		}
		// Near the day's end an isolate whose part ran out may be refused while the others still hold the rest
		// (at most what they would take in two leases); never long before.
		if r.firstRefusalAfter < 850 {
			t.Errorf("first refusal after %d taken: the day was far from spent", r.firstRefusalAfter)
		}
		// Every refusal is the day's: an isolate whose part ran out (refused until its next renewal) as much as
		// one told the day is spent (until 00:00 UTC). The rate limit's refusals say "per second".
		if r.dayRefused != r.refused {
			t.Errorf("%d of %d refusals named the day's limit, want all", r.dayRefused, r.refused)
		}
		if midnight := nextDay(time.Now()).Sub(time.Now()); r.maxRetry < midnight-time.Minute {
			t.Errorf("longest Retry-After %v, want about %v (the next UTC day)", r.maxRetry, midnight)
		}
	})
}

// An isolate that joins takes its part from the others within a renewal or two, and one that leaves gives its
// part back when its lease ends: the key as a whole stays within its limit throughout.
func TestIsolatesJoinAndLeave(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newSim(Limit{RPS: 50, Burst: 50})
		ps := pools(s, 4)
		a := s.offer(ps, []float64{100, 0, 0, 0}, 20*time.Second, 5*time.Millisecond)
		b := s.offer(ps, []float64{50, 50, 50, 50}, 20*time.Second, 5*time.Millisecond)
		c := s.offer(ps, []float64{0, 0, 0, 100}, 20*time.Second, 5*time.Millisecond)
		for i, r := range []*result{a, b, c} {
			rate := float64(r.taken) / 20
			t.Logf("phase %d: taken %.2f/s", i, rate)
			if rate < 45 || rate > 55 {
				t.Errorf("phase %d: taken %.2f/s, want 45–55", i, rate)
			}
		}
	})
}

// When the object cannot be asked, each isolate keeps the whole limit for itself: the limit holds per isolate.
func TestFailOpenPerIsolate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newSim(Limit{RPS: 20, Burst: 20})
		s.fail.Store(true)
		r := s.offer(pools(s, 2), []float64{50, 50}, 30*time.Second, 5*time.Millisecond)
		rate := float64(r.taken) / 30
		if rate < 38 || rate > 42 {
			t.Errorf("object unreachable, two isolates: taken %.2f/s, want about 2 × 20", rate)
		}
	})
}

func TestBatchOverBurstNever(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newSim(Limit{RPS: 10, Burst: 20})
		p := s.pool("i")
		if ok, d, _ := p.Take(context.Background(), "client:a", s.lim, 21); ok || d != Never {
			t.Errorf("a batch of 21 over a burst of 20: %v %v, want refused, Never", ok, d)
		}
		p.Take(context.Background(), "client:a", s.lim, 1) // the first lease
		time.Sleep(3 * time.Second)                        // its bucket fills
		if ok, _, _ := p.Take(context.Background(), "client:a", s.lim, 20); !ok {
			t.Errorf("a batch of 20 within a burst of 20 refused")
		}
		if ok, d, day := p.Take(context.Background(), "client:a", s.lim, 1); ok || day || d <= 0 || d > time.Second {
			t.Errorf("after the burst: %v %v, want refused within a second", ok, d)
		}
		time.Sleep(2 * LeaseTTL)
	})
}

// Over the limit, what the object has granted at once never passes the rate, whatever order the isolates ask in.
func TestAllocatorNeverOvergrantsWhenOver(t *testing.T) {
	a := NewAllocator()
	lim := Limit{RPS: 50}
	now := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	demands := []float64{5, 80, 1, 30, 200, 3, 60, 9}
	for round := range 20 {
		for i, d := range demands {
			now = now.Add(37 * time.Millisecond)
			a.Lease(now, lim, Ask{Isolate: fmt.Sprint("i", i), Demand: d * float64(1+round%3)})
			var sum float64
			for _, h := range a.holders {
				sum += h.rate
			}
			if sum > lim.RPS+1e-9 {
				t.Fatalf("round %d, isolate %d: %.3f/s granted at once, over 50", round, i, sum)
			}
		}
	}
}

func TestAllocatorDay(t *testing.T) {
	a := NewAllocator()
	lim := Limit{PerDay: 100}
	day := time.Date(2026, 12, 7, 23, 59, 0, 0, time.UTC)
	a.Restore("2026-12-07", 99)
	if g := a.Lease(day, lim, Ask{Isolate: "x", Demand: 1, Used: 1}); g.RetryAt != time.Date(2026, 12, 8, 0, 0, 0, 0, time.UTC).UnixMilli() || g.Rate != 0 || g.Left != 0 {
		t.Errorf("day spent: %+v, want nothing until midnight", g)
	}
	if g := a.Lease(day.Add(2*time.Minute), lim, Ask{Isolate: "x", Demand: 1}); g.RetryAt != 0 || g.Left < 1 || g.Left > 100 {
		t.Errorf("next day: %+v, want a part of the new day's 100", g)
	}
	if d, u := a.Day(); d != "2026-12-08" || u != 0 {
		t.Errorf("Day() = %s %d", d, u)
	}
}

func dayUsed(a *Allocator) uint64 { _, u := a.Day(); return u }

// An isolate under a steady high rate asks about once a second, not once every few requests: its demand is
// measured over the real window since its last ask (a floor of 0.1 s on that window once made a 1,000/s isolate
// look like 100/s, so it asked again every 10 requests: 100 object calls a second).
func TestSteadyHighRateAsksRarely(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newSim(Limit{RPS: 100000, Burst: 100000})
		s.latency = 2 * time.Millisecond
		r := s.offer(pools(s, 1), []float64{1000}, 10*time.Second, time.Millisecond)
		if r.refused != 0 || s.asks.Load() > 15 {
			t.Errorf("1,000/s for 10 s under a limit far above: %d refused, %d asks; want none refused, about 10 asks", r.refused, s.asks.Load())
		}
	})
}
