package balance

import "time"

// BreakerState is a circuit breaker's state.
type BreakerState string

// The three states of a circuit breaker.
const (
	BreakerClosed   BreakerState = "closed"    // traffic flows
	BreakerOpen     BreakerState = "open"      // no traffic until OpenUntil
	BreakerHalfOpen BreakerState = "half_open" // after OpenUntil: traffic probes it; a success closes it
)

// Breaker is one upstream's circuit breaker, fed by live traffic and health checks alike. The zero value is closed.
type Breaker struct {
	Failures  int
	OpenUntil time.Time
}

// State is the breaker's state at now.
func (b *Breaker) State(now time.Time) BreakerState {
	switch {
	case b.OpenUntil.IsZero():
		return BreakerClosed
	case now.Before(b.OpenUntil):
		return BreakerOpen
	default:
		return BreakerHalfOpen
	}
}

// Failure counts a failure at now; threshold consecutive ones open the breaker for openFor. A failure while
// half-open opens it again at once.
func (b *Breaker) Failure(now time.Time, threshold int, openFor time.Duration) {
	b.Failures++
	if b.Failures >= threshold || b.State(now) == BreakerHalfOpen {
		b.OpenUntil = now.Add(openFor)
	}
}

// Success closes the breaker.
func (b *Breaker) Success() { *b = Breaker{} }
