package proxy

import (
	"slices"
	"time"
)

// latencies keeps a chain's most recent successful attempt latencies, for the hedging delay.
type latencies struct {
	ring [128]time.Duration
	n    int // how many were added, all time
}

func (l *latencies) add(d time.Duration) {
	l.ring[l.n%len(l.ring)] = d
	l.n++
}

// percentile returns the p-quantile (0 < p < 1) of the window, or 0 when fewer than 8 latencies were seen: with
// so few, any percentile is noise, and the configured minimum delay applies.
func (l *latencies) percentile(p float64) time.Duration {
	k := min(l.n, len(l.ring))
	if k < 8 {
		return 0
	}
	s := slices.Clone(l.ring[:k])
	slices.Sort(s)
	return s[min(k-1, int(p*float64(k)))]
}
