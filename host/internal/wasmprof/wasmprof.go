// Package wasmprof counts and times the calls of a wasm program's functions in the wazero host, through wazero's
// experimental function listeners: the Go code in app.wasm runs as compiled wasm, which Go's pprof sees only as
// runtime._ExternalCode. It is a profiling tool (BenchmarkWasmProfile in host/); a listener slows every call
// it watches by a fraction of a µs, so narrow it with Only to time a few functions accurately.
package wasmprof

import (
	"context"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
)

// Profiler is an experimental.FunctionListenerFactory that keeps, per module instance, each function's calls,
// its own time (less its callees') and its inclusive time.
type Profiler struct {
	// Only, when set, limits the watched functions to those whose name matches: the others run at full speed
	// and count towards their callers' own time.
	Only *regexp.Regexp

	mu     sync.Mutex
	on     bool
	start  time.Time
	names  map[uint32]string
	stacks map[api.Module][]frame
	stats  map[api.Module]map[uint32]*Stat
}

type frame struct {
	fn           uint32
	start, child time.Duration
}

// Stat is one function's figures.
type Stat struct {
	Name       string
	Calls      int64
	Self, Incl time.Duration
}

// New returns a profiler that records nothing until Start.
func New(only *regexp.Regexp) *Profiler {
	return &Profiler{Only: only, start: time.Now(), names: map[uint32]string{},
		stacks: map[api.Module][]frame{}, stats: map[api.Module]map[uint32]*Stat{}}
}

// Start starts recording (after a warm-up, say) and forgets what was recorded before.
func (p *Profiler) Start() {
	p.mu.Lock()
	p.on = true
	p.stats = map[api.Module]map[uint32]*Stat{}
	p.mu.Unlock()
}

// Stop stops recording.
func (p *Profiler) Stop() {
	p.mu.Lock()
	p.on = false
	p.mu.Unlock()
}

func (p *Profiler) now() time.Duration { return time.Since(p.start) }

// NewFunctionListener implements experimental.FunctionListenerFactory.
func (p *Profiler) NewFunctionListener(def api.FunctionDefinition) experimental.FunctionListener {
	if p.Only != nil && !p.Only.MatchString(def.DebugName()) {
		return nil
	}
	p.mu.Lock()
	p.names[def.Index()] = def.DebugName()
	p.mu.Unlock()
	return p
}

// Before implements experimental.FunctionListener. The listener's own time is kept out of the caller's.
func (p *Profiler) Before(_ context.Context, mod api.Module, def api.FunctionDefinition, _ []uint64, _ experimental.StackIterator) {
	t0 := p.now()
	p.mu.Lock()
	st := append(p.stacks[mod], frame{fn: def.Index()})
	p.stacks[mod] = st
	p.mu.Unlock()
	t1 := p.now()
	st[len(st)-1].start = t1
	if len(st) > 1 {
		st[len(st)-2].child += t1 - t0
	}
}

// After implements experimental.FunctionListener.
func (p *Profiler) After(_ context.Context, mod api.Module, _ api.FunctionDefinition, _ []uint64) {
	p.exit(mod)
}

// Abort implements experimental.FunctionListener.
func (p *Profiler) Abort(_ context.Context, mod api.Module, _ api.FunctionDefinition, _ error) {
	p.exit(mod)
}

func (p *Profiler) exit(mod api.Module) {
	t0 := p.now()
	p.mu.Lock()
	st := p.stacks[mod]
	if len(st) == 0 {
		p.mu.Unlock()
		return
	}
	f := st[len(st)-1]
	st = st[:len(st)-1]
	p.stacks[mod] = st
	elapsed := t0 - f.start
	if p.on {
		m := p.stats[mod]
		if m == nil {
			m = map[uint32]*Stat{}
			p.stats[mod] = m
		}
		s := m[f.fn]
		if s == nil {
			s = &Stat{Name: strings.TrimPrefix(p.names[f.fn], ".")}
			m[f.fn] = s
		}
		s.Calls++
		s.Self += elapsed - f.child
		recursive := false
		for _, g := range st {
			recursive = recursive || g.fn == f.fn
		}
		if !recursive {
			s.Incl += elapsed
		}
	}
	p.mu.Unlock()
	if len(st) > 0 {
		st[len(st)-1].child += elapsed + (p.now() - t0)
	}
}

// Busiest returns the figures of the module instance that spent the most time, most inclusive time first.
func (p *Profiler) Busiest() []Stat {
	p.mu.Lock()
	defer p.mu.Unlock()
	var best []Stat
	var bestSelf time.Duration
	for _, m := range p.stats {
		var all []Stat
		var self time.Duration
		for _, s := range m {
			all = append(all, *s)
			self += s.Self
		}
		if self > bestSelf {
			best, bestSelf = all, self
		}
	}
	sort.Slice(best, func(i, j int) bool { return best[i].Incl > best[j].Incl })
	return best
}

// Report writes the top n functions by inclusive and by own time, per unit (a request, say).
func Report(stats []Stat, units int, n int) string {
	var b strings.Builder
	var calls int64
	var self time.Duration
	for _, s := range stats {
		calls += s.Calls
		self += s.Self
	}
	u := float64(units)
	fmt.Fprintf(&b, "%.0f calls and %.1f µs (own time, listener included) per unit\n", float64(calls)/u, float64(self.Microseconds())/u)
	fmt.Fprintf(&b, "by inclusive time (µs per unit, calls per unit):\n")
	for _, s := range stats[:min(n, len(stats))] {
		fmt.Fprintf(&b, "%9.2f %8.1f  %s\n", float64(s.Incl.Nanoseconds())/1e3/u, float64(s.Calls)/u, s.Name)
	}
	sort.Slice(stats, func(i, j int) bool { return stats[i].Self > stats[j].Self })
	fmt.Fprintf(&b, "by own time:\n")
	for _, s := range stats[:min(n, len(stats))] {
		fmt.Fprintf(&b, "%9.2f %8.1f  %s\n", float64(s.Self.Nanoseconds())/1e3/u, float64(s.Calls)/u, s.Name)
	}
	return b.String()
}
