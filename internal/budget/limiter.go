package budget

import (
	"math"
	"time"
)

// verdict is what a Limiter decides for one take.
type verdict int

const (
	taken      verdict = iota // spend it
	refused                   // over the rate's share: retry after the duration given
	refusedDay                // over the day's limit (the object's or, asked once more, the isolate's part): retry after
	ask                       // no lease to decide by (cold, one long lapsed, or its part of the day used): ask first
)

// Limiter is an isolate's side of one budget: the share its lease grants, spent locally as a token bucket, and
// what it will report at its next ask (what it took, what it was offered). Not safe for concurrent use: the Pool
// holds its lock.
type Limiter struct {
	granted bool      // a grant (or a fail-open one) was applied
	grants  int       // how many
	starved bool      // its part of the day was used and asking for more on a request's path gave none
	at      time.Time // when the last grant came
	until   time.Time // when it ends
	rate    float64   // requests per second; < 0: no rate limit
	burst   float64
	level   float64   // tokens now (may go below zero by a batch's size: a debt the rate pays back first)
	filled  time.Time // when level was last brought up to date
	left    int64     // what the lease allows for the day's limit; -1: none
	retryAt time.Time // the day's budget is spent until then (zero: not)

	used    uint64    // taken since the last ask
	offered float64   // offered (taken or refused) since the last ask
	since   time.Time // the last ask
	demand  float64   // the last estimate of requests per second offered
}

// refill brings the bucket up to now.
func (l *Limiter) refill(now time.Time) {
	if l.rate > 0 && now.After(l.filled) {
		l.level = min(l.burst, l.level+l.rate*now.Sub(l.filled).Seconds())
	}
	l.filled = now
}

// take decides n requests now. A batch may take the bucket below zero when it holds the isolate's whole share of
// the burst (a batch larger than that share could never pass otherwise); the rate pays the debt back first.
func (l *Limiter) take(now time.Time, n int, count bool) (verdict, time.Duration) {
	if count {
		l.offered += float64(n)
	}
	if !l.granted || now.Sub(l.until) > LeaseTTL {
		return ask, 0 // no lease, or one so old that its share may be another's: ask before taking
	}
	if !l.retryAt.IsZero() {
		if now.Before(l.retryAt) {
			return refusedDay, l.retryAt.Sub(now)
		}
		return ask, 0
	}
	if l.left >= 0 && l.left < int64(n) {
		if l.starved {
			return refusedDay, max(l.renewAt().Sub(now), time.Second) // the object had none to give: its next renewal may
		}
		l.starved = true
		return ask, 0 // its part of the day is used: ask once for more
	}
	if l.rate >= 0 {
		l.refill(now)
		need := min(float64(n), max(l.burst, 1))
		if l.level < need {
			// When the bucket will hold enough at this share; but the share is renewed within LeaseRenew, and a
			// small one (this isolate's traffic is new) grows then: never longer.
			if l.rate == 0 {
				return refused, LeaseRenew
			}
			return refused, min(time.Duration((need-l.level)/l.rate*float64(time.Second)), LeaseRenew)
		}
		l.level -= float64(n)
	}
	if l.left >= 0 {
		l.left -= int64(n)
	}
	l.used += uint64(n)
	return taken, 0
}

// active reports whether anything was offered since the last ask: only then is a renewal worth its call.
func (l *Limiter) active() bool { return l.offered > 0 }

// Early renewal: an isolate whose traffic has grown to twice what it reported, over at least earlySample
// requests, asks at once rather than at its renewal (a first grant, made on a guess of 1/s, is put right within a
// fifth of a second at 50/s; a slow isolate's count is too small to judge before its renewal anyway).
const (
	earlySample = 10
	earlyFactor = 2
)

// early reports whether the traffic since the last ask has outgrown what was reported.
func (l *Limiter) early(now time.Time) bool {
	secs := now.Sub(l.since).Seconds()
	return l.granted && l.offered >= earlySample && secs > 0 && l.offered/secs >= earlyFactor*max(l.demand, minDemand)
}

// renewAt is when the next ask is due: FirstRenew after a first grant, else LeaseRenew after the last.
func (l *Limiter) renewAt() time.Time {
	if l.grants <= 1 {
		return l.at.Add(FirstRenew)
	}
	return l.at.Add(LeaseRenew)
}

// next builds the next ask and starts a new reporting period.
func (l *Limiter) next(now time.Time, name, isolate string) Ask {
	if secs := now.Sub(l.since).Seconds(); l.granted && secs > 0 {
		rate := l.offered / max(secs, 0.001) // the real window: an early ask comes after 10 requests, maybe in 10 ms
		if l.grants > 1 && rate > l.demand {
			// Rising: smoothed, as a second's count is noisy and the shares follow it. Falling: at once, so that
			// an isolate whose traffic went gives its share back within a renewal.
			rate = (l.demand + rate) / 2
		}
		l.demand = rate
	} else {
		l.demand = max(l.offered, 1) // cold: what is waiting
	}
	a := Ask{Name: name, Isolate: isolate, Demand: l.demand, Used: l.used}
	l.used, l.offered, l.since = 0, 0, now
	return a
}

// apply installs the object's grant. The bucket keeps what it holds, up to the new burst; a first grant starts it
// with firstFill's worth of the rate (at least one).
func (l *Limiter) apply(now time.Time, g Grant) {
	l.refill(now)
	first := !l.granted
	l.granted, l.at, l.until = true, now, time.UnixMilli(g.Until)
	l.grants++
	if g.Left != 0 {
		l.starved = false
	}
	l.rate, l.burst, l.left = g.Rate, max(g.Burst, 0), g.Left
	if l.left > 0 {
		// What was taken while the ask was out came from the old lease, which the object took back when it
		// answered: it comes out of the new one (and is reported with the next ask).
		l.left = max(l.left-int64(l.used), 0)
	}
	if g.Rate >= 0 {
		if first {
			l.level = min(l.burst, max(1, l.rate*firstFill.Seconds()))
		}
		l.level = min(l.level, l.burst)
	}
	l.retryAt = time.Time{}
	if g.RetryAt > 0 {
		l.retryAt = time.UnixMilli(g.RetryAt)
	}
	l.filled = now
}

// failOpen is what an isolate does when the object could not be asked: it keeps the whole limit for itself
// (the limit then holds per isolate, not for the deployment) until its next ask; what it took is reported then.
func (l *Limiter) failOpen(now time.Time, lim Limit, a Ask) {
	l.used += a.Used // reported with the next ask
	g := Grant{Rate: -1, Left: -1, Until: now.Add(LeaseTTL).UnixMilli()}
	if lim.RPS > 0 {
		g.Rate, g.Burst = lim.RPS, lim.Capacity()
	}
	l.apply(now, g)
}

// retryAfterSeconds is a refusal's Retry-After: whole seconds, at least 1.
func RetryAfterSeconds(d time.Duration) int {
	return max(1, int(math.Ceil(d.Seconds())))
}
