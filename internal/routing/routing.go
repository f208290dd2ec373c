// Package routing is a chain's routing table: what the chain object knows about each of its upstreams, kept in
// memory, and the order in which a request tries them.
package routing

import (
	"cmp"
	"slices"
	"time"
)

// Health is what the chain knows of an upstream's health.
type Health string

// Health values.
const (
	Unknown   Health = "unknown"   // no report and no failure yet
	Healthy   Health = "healthy"   // the last health check succeeded and no request failed since
	Unhealthy Health = "unhealthy" // the last health check or a request since failed
)

// State is one upstream's row. Its JSON form is what the chain object stores and shows.
type State struct {
	Name   string `json:"name"`
	Health Health `json:"health"`
	// Height is the last block number reported; 0 when none is known.
	Height uint64 `json:"height"`
	// ChainID is the upstream's eth_chainId answer as reported ("0x1"), "" until known.
	ChainID string `json:"chain_id,omitempty"`
	// LastReport is when the last health report was made; zero when none came.
	LastReport time.Time `json:"last_report,omitzero"`
	// LastErrorClass is the class of the last failure, from a health check or a request.
	LastErrorClass string `json:"last_error_class,omitempty"`
	// LastFailure is when a request last failed on this upstream.
	LastFailure time.Time `json:"last_failure,omitzero"`
}

// Report is an upstream's health report.
type Report struct {
	Name       string    `json:"name"`
	OK         bool      `json:"ok"`
	Height     uint64    `json:"height"`
	ChainID    string    `json:"chain_id,omitempty"`
	ErrorClass string    `json:"error_class,omitempty"`
	CheckedAt  time.Time `json:"checked_at"`
}

// Table holds the rows of one chain's upstreams in configuration order. It is not safe for concurrent use.
type Table struct {
	rows []State
}

// NewTable makes the table for the named upstreams, taking each row from saved when there is one.
func NewTable(names []string, saved map[string]State) *Table {
	t := &Table{rows: make([]State, len(names))}
	for i, n := range names {
		s, ok := saved[n]
		if !ok {
			s = State{Health: Unknown}
		}
		s.Name = n
		t.rows[i] = s
	}
	return t
}

func (t *Table) row(name string) *State {
	i := slices.IndexFunc(t.rows, func(s State) bool { return s.Name == name })
	if i < 0 {
		return nil
	}
	return &t.rows[i]
}

// Report applies a health report and returns the updated row; ok is false for a name not in the table.
// A report older than the row's last report or last failure changes nothing.
func (t *Table) Report(r Report) (State, bool) {
	s := t.row(r.Name)
	if s == nil {
		return State{}, false
	}
	if r.CheckedAt.Before(s.LastReport) || r.CheckedAt.Before(s.LastFailure) {
		return *s, true
	}
	s.LastReport = r.CheckedAt
	if r.ChainID != "" {
		s.ChainID = r.ChainID
	}
	if r.OK {
		s.Health, s.Height = Healthy, r.Height
	} else {
		s.Health, s.LastErrorClass = Unhealthy, r.ErrorClass
	}
	return *s, true
}

// Fail marks the upstream unhealthy after a request failed with class at time now, and returns the row.
func (t *Table) Fail(name, class string, now time.Time) (State, bool) {
	s := t.row(name)
	if s == nil {
		return State{}, false
	}
	s.Health, s.LastErrorClass, s.LastFailure = Unhealthy, class, now
	return *s, true
}

// Order lists the names in the order a request tries them: healthy upstreams by height, highest first, then
// those with unknown health, then unhealthy ones; ties keep configuration order.
func (t *Table) Order() []string {
	rows := slices.Clone(t.rows)
	rank := map[Health]int{Healthy: 0, Unknown: 1, Unhealthy: 2}
	slices.SortStableFunc(rows, func(a, b State) int {
		if c := cmp.Compare(rank[a.Health], rank[b.Health]); c != 0 {
			return c
		}
		if a.Health == Healthy {
			return cmp.Compare(b.Height, a.Height)
		}
		return 0
	})
	names := make([]string, len(rows))
	for i, r := range rows {
		names[i] = r.Name
	}
	return names
}

// Rows returns a copy of the rows in configuration order.
func (t *Table) Rows() []State { return slices.Clone(t.rows) }

// Best is the highest height among healthy upstreams, 0 when there is none.
func (t *Table) Best() uint64 {
	var best uint64
	for _, s := range t.rows {
		if s.Health == Healthy {
			best = max(best, s.Height)
		}
	}
	return best
}
