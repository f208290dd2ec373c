// Package stats counts an upstream's traffic per JSON-RPC method: calls, errors, latency sum and maximum.
package stats

import (
	"encoding/json"
	"time"
)

// Limits on what a client can make the stats hold (they are stored as one value in Durable Object storage).
const (
	// MaxMethods is the number of distinct methods tracked; calls to further methods count under Other.
	MaxMethods = 200
	// MaxMethodLen is the longest method name kept; longer names count under Other.
	MaxMethodLen = 64
	// Other is the key of the methods beyond the limits.
	Other = "(other)"
)

// Counter is one method's counts. The JSON form is the storage form.
type Counter struct {
	Count  uint64 `json:"count"`
	Errors uint64 `json:"errors"`
	// SumMicros and MaxMicros are latencies in microseconds.
	SumMicros uint64 `json:"sum_us"`
	MaxMicros uint64 `json:"max_us"`
}

// View is a Counter as the admin API shows it.
type View struct {
	Count  uint64  `json:"count"`
	Errors uint64  `json:"errors"`
	MeanMs float64 `json:"mean_ms"`
	MaxMs  float64 `json:"max_ms"`
}

// Stats maps method names to counters. The zero value is not usable; use make(Stats) or Parse.
type Stats map[string]*Counter

// Record counts one call of method that took latency; failed counts it as an error too.
func (s Stats) Record(method string, latency time.Duration, failed bool) {
	c := s[method]
	if c == nil {
		if len(method) > MaxMethodLen || len(s) >= MaxMethods {
			method = Other
		}
		if c = s[method]; c == nil {
			c = &Counter{}
			s[method] = c
		}
	}
	us := uint64(max(latency, 0) / time.Microsecond)
	c.Count++
	c.SumMicros += us
	c.MaxMicros = max(c.MaxMicros, us)
	if failed {
		c.Errors++
	}
}

// Views turns the counters into the admin form.
func (s Stats) Views() map[string]View {
	v := make(map[string]View, len(s))
	for m, c := range s {
		var mean float64
		if c.Count > 0 {
			mean = float64(c.SumMicros) / float64(c.Count) / 1000
		}
		v[m] = View{Count: c.Count, Errors: c.Errors, MeanMs: mean, MaxMs: float64(c.MaxMicros) / 1000}
	}
	return v
}

// Parse reads the storage form; empty text gives empty stats.
func Parse(text string) (Stats, error) {
	s := make(Stats)
	if text == "" {
		return s, nil
	}
	if err := json.Unmarshal([]byte(text), &s); err != nil {
		return make(Stats), err
	}
	for m, c := range s {
		if c == nil {
			delete(s, m)
		}
	}
	return s, nil
}

// Add adds c to method's counter (another isolate's counts of the same method), under the same limits as Record.
func (s Stats) Add(method string, c Counter) {
	cur := s[method]
	if cur == nil {
		if len(method) > MaxMethodLen || len(s) >= MaxMethods {
			method = Other
		}
		if cur = s[method]; cur == nil {
			cur = &Counter{}
			s[method] = cur
		}
	}
	cur.Count += c.Count
	cur.Errors += c.Errors
	cur.SumMicros += c.SumMicros
	cur.MaxMicros = max(cur.MaxMicros, c.MaxMicros)
}

// Counter turns a View back into counts (to add counts to what the admin API read).
func (v View) Counter() Counter {
	return Counter{Count: v.Count, Errors: v.Errors, SumMicros: uint64(v.MeanMs * 1000 * float64(v.Count)), MaxMicros: uint64(v.MaxMs * 1000)}
}
