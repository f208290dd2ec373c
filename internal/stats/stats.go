// Package stats counts an upstream's traffic per JSON-RPC method: calls, errors, latency sum and maximum.
//
// Methods are counted under their name only when it is on internal/methods' list; every other call counts under
// methods.Other. So the stats (stored as one value in Durable Object storage) hold at most the list and that, whatever
// method names clients make up, and made-up names never take the place of real ones.
package stats

import (
	"encoding/json"
	"time"

	"github.com/evmlb/evmlb/internal/methods"
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

// Record counts one call of method that took latency, under methods.Other when the method is not on the list; failed
// counts it as an error too.
func (s Stats) Record(method string, latency time.Duration, failed bool) {
	method = methods.Label(method)
	c := s[method]
	if c == nil {
		c = &Counter{}
		s[method] = c
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

// add adds o's counts to c.
func (c *Counter) add(o *Counter) {
	c.Count += o.Count
	c.Errors += o.Errors
	c.SumMicros += o.SumMicros
	c.MaxMicros = max(c.MaxMicros, o.MaxMicros)
}

// Parse reads the storage form; empty text gives empty stats. Counters stored under a name that is not on the
// list (stats written before it existed, when the first 200 names seen were kept, junk included) are folded
// into methods.Other.
func Parse(text string) (Stats, error) {
	if text == "" {
		return make(Stats), nil
	}
	var stored map[string]*Counter
	if err := json.Unmarshal([]byte(text), &stored); err != nil {
		return make(Stats), err
	}
	s := make(Stats, len(stored))
	for m, c := range stored {
		if c == nil {
			continue
		}
		m = methods.Label(m)
		if s[m] == nil {
			s[m] = &Counter{}
		}
		s[m].add(c)
	}
	return s, nil
}

// Add adds c to method's counter (another isolate's counts of the same method), under methods.Other when the method is
// not on the list, as Record does: a report cannot bring junk names in either.
func (s Stats) Add(method string, c Counter) {
	method = methods.Label(method)
	cur := s[method]
	if cur == nil {
		cur = &Counter{}
		s[method] = cur
	}
	cur.add(&c)
}

// Counter turns a View back into counts (to add counts to what the admin API read).
func (v View) Counter() Counter {
	return Counter{Count: v.Count, Errors: v.Errors, SumMicros: uint64(v.MeanMs * 1000 * float64(v.Count)), MaxMicros: uint64(v.MaxMs * 1000)}
}
