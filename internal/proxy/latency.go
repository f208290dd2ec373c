package proxy

import (
	"slices"
	"time"
)

// The hedging window: fixed, not settings. hedge_percentile and hedge_min_delay (config.ChainTable) are the
// policy; these only say how much history makes a percentile worth trusting.
const (
	// latencyWindow is how many of a chain's latest successful attempts the percentile is taken over.
	latencyWindow = 128
	// latencyMinSamples is the fewest latencies a percentile is taken of; with fewer, any percentile is noise, and
	// hedge_min_delay applies.
	latencyMinSamples = 8
)

// latencies keeps a chain's most recent successful attempt latencies, for the hedging delay.
type latencies struct {
	ring [latencyWindow]time.Duration
	n    int // how many were added, all time
}

func (l *latencies) add(d time.Duration) {
	l.ring[l.n%len(l.ring)] = d
	l.n++
}

// percentile returns the p-quantile (0 < p < 1) of the window, or 0 when fewer than latencyMinSamples were seen.
func (l *latencies) percentile(p float64) time.Duration {
	k := min(l.n, len(l.ring))
	if k < latencyMinSamples {
		return 0
	}
	s := slices.Clone(l.ring[:k])
	slices.Sort(s)
	return s[min(k-1, int(p*float64(k)))]
}
