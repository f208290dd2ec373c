// Package server runs the balancer's wasm program on wazero and serves it over HTTP: the wazero host of
// CONTRACT.md (version 7).
//
// In-process use (the end-to-end tests do this):
//
//	srv, err := server.New(server.Options{
//		WasmPath: "build/app.wasm",
//		StateDir: t.TempDir(),          // Durable Object storage and alarms ("" = a temporary directory)
//		CacheDir: "",                   // wazero compilation cache ("" = none)
//		Env:      map[string]string{"UPSTREAM_CONFIG": cfg},
//	})
//	defer srv.Close()           // at once; srv.Shutdown(ctx) lets the work in flight finish first
//	ts := httptest.NewServer(srv.Handler()) // or srv.Serve(listener)
//
// As in production, the Worker role runs in a pool of Go runtimes (Options.WorkerRuntimes, one per core by
// default; each request goes to the least busy) and every Durable Object in one runtime of its own; nothing is
// shared between runtimes but messages (byte copies). New compiles the module, starts every runtime, waits for
// workers.ready and checks what Go registered on context.binding. A runtime whose program exits or traps fails
// the calls it was running (HTTP 500 with contract.InternalErrorBody) and is started again by the next call
// that needs it (the objects runtime with new instance tokens, the same storage; alarms stay armed).
//
// The host is stricter than workerd, never looser: a protocol violation (an unknown message, an operation of
// a call that ended, storage from a worker call, a cache operation from an object, any use of the I/O globals
// of earlier versions) is logged as one line starting with "evmlb host: protocol violation:", fails the call
// and is counted in Stats().Violations, which tests assert is zero.
package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	goruntime "runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/experimental"

	"github.com/evmlb/evmlb/host/internal/clock"
	"github.com/evmlb/evmlb/host/internal/gojs"
	"github.com/evmlb/evmlb/host/internal/store"
)

// Options configure a Server.
type Options struct {
	// WasmPath is the program (build/app.wasm). Wasm, when set, is used instead.
	WasmPath string
	Wasm     []byte
	// StateDir holds Durable Object storage and alarms; "" uses a temporary directory removed by Close.
	StateDir string
	// CacheDir is wazero's compilation cache; "" compiles without one.
	CacheDir string
	// Env is context.env's variables and secrets.
	Env map[string]string
	// Log receives Go's fd 1 and 2 and the host's own lines; nil is os.Stderr.
	Log io.Writer
	// Client sends the program's fetch operations; nil is a client kept for the host's life. Redirects are
	// never followed whatever the client says.
	Client *http.Client
	// StartTimeout bounds the wait for workers.ready; 0 is 60 s.
	StartTimeout time.Duration
	// MemoryLimitMB caps the linear memory of each runtime (workerd allows an isolate 128 MB); 0 is wazero's
	// 4 GiB.
	MemoryLimitMB int
	// Listener, when set, is told of the calls of the program's functions (wazero's experimental function
	// listeners: host/internal/wasmprof). For profiling only: it slows every call it watches. CacheDir is not
	// used with it (cached code has no listener), and deliver does not yield (a profile times Go's own work in
	// wasm, which a yield would stretch by the handler's turn).
	Listener experimental.FunctionListenerFactory
	// Clock is the host's time (nil: the real clock): the event loops' timers (Go's own, in each runtime), sleep
	// operations, object-call timeouts, alarms and their retries' back-off, and the time Go and JS read (Go's
	// time.Now, Date.now). A test passes a clock.Fake and advances it instead of sleeping. Network deadlines
	// (fetch operations' timeouts, the bounds of Serve's HTTP server) stay on the real clock: they bound real I/O.
	Clock clock.Clock
	// EdgeCacheBytes bounds the answer cache the Worker runtimes share (the cache operation, CONTRACT.md §4): the
	// bytes of its keys and entries, least recently used evicted first; 0 is DefaultEdgeCacheBytes, a negative
	// bound stores nothing (every match misses).
	EdgeCacheBytes int64
	// WorkerRuntimes is the size of the Worker role's pool; 0 is runtime.NumCPU().
	WorkerRuntimes int
	// ConnAffinity keeps each client connection that Serve accepts on one Worker runtime (as a keep-alive
	// connection stays on one isolate at Cloudflare), the runtimes taking new connections in turn; false spreads
	// every request to the least busy runtime.
	ConnAffinity bool
	// Bounds of Serve's HTTP server, each 0 for its default (DEVELOPMENT.md says why these):
	//
	// ReadHeaderTimeout bounds reading a request's headers (DefaultReadHeaderTimeout); ReadTimeout reading the
	// whole request, body included (DefaultReadTimeout). There is no bound on the whole exchange (a chain's
	// request_timeout may be 5 minutes and an answer 100 MiB); WriteStallTimeout drops a client that takes
	// longer than this to accept one more part of the answer (DefaultWriteStallTimeout). IdleTimeout closes a
	// kept-alive connection with no request for that long (DefaultIdleTimeout). MaxHeaderBytes bounds a
	// request's headers (DefaultMaxHeaderBytes; beyond: 431). MaxConns bounds the connections open at once
	// (DefaultMaxConns); further ones wait in the listen backlog until one closes.
	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	WriteStallTimeout time.Duration
	IdleTimeout       time.Duration
	MaxHeaderBytes    int
	MaxConns          int
}

// Defaults of Options' HTTP bounds.
const (
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultReadTimeout       = 60 * time.Second
	DefaultWriteStallTimeout = 60 * time.Second
	DefaultIdleTimeout       = 120 * time.Second
	DefaultMaxHeaderBytes    = 64 << 10
	DefaultMaxConns          = 1024
)

// or is v, or def when v is zero.
func or[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// Server is the wazero host.
type Server struct {
	opts     Options
	log      io.Writer
	wz       wazero.Runtime
	compiled wazero.CompiledModule
	db       *store.DB
	tmpState string
	client   *http.Client
	clock    clock.Clock
	ctx      context.Context // canceled by Close: ends fetch operations
	cancel   context.CancelFunc

	workers []*slot
	objects *slot
	next    atomic.Uint64 // round-robin start of the least-busy scan
	conns   atomic.Uint64 // connections accepted, for ConnAffinity's turns

	violations atomic.Int64
	edge       *edgeCache   // the answer cache of every Worker runtime
	socks      *socketTable // the subs objects' WebSockets (sockets.go)
	bodies     *bodyBudget  // request body bytes held at once (admit.go)

	objMu     sync.Mutex
	queues    map[string]*serialQueue // storage queues by object id
	alarms    map[string]*armedAlarm  // armed alarms by object id
	alarmsOff bool                    // closed

	sleepMu  sync.Mutex
	sleeps   map[*workerSleep]struct{} // the Worker calls' sleep operations waiting for their time (shutdown.go)
	draining bool                      // Shutdown asked the Worker runtimes to flush: their sleeps end at once

	mu       sync.Mutex
	closed   bool
	stopping bool // Shutdown began: Serve accepts no more
	servers  []*http.Server
}

// ErrContractVersion is wrapped by New when the program implements another contract version.
var ErrContractVersion = errors.New("contract version mismatch")

// New loads and compiles the program, opens the state and starts the runtimes.
func New(opts Options) (*Server, error) {
	s := &Server{opts: opts, log: opts.Log, client: newClient(opts.Client), clock: clock.Or(opts.Clock),
		queues: map[string]*serialQueue{}, alarms: map[string]*armedAlarm{}, sleeps: map[*workerSleep]struct{}{}}
	s.edge = newEdgeCache(s.clock, opts.EdgeCacheBytes)
	s.socks = newSocketTable(s)
	s.ctx, s.cancel = context.WithCancel(context.Background())
	if s.log == nil {
		s.log = os.Stderr
	}
	wasm := opts.Wasm
	if wasm == nil {
		b, err := os.ReadFile(opts.WasmPath)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%s not found: run `make build`", opts.WasmPath)
		}
		if err != nil {
			return nil, fmt.Errorf("%s is unreadable: %v", opts.WasmPath, unwrapPathError(err))
		}
		wasm = b
	}
	if err := s.openState(); err != nil {
		return nil, err
	}
	ctx := context.Background()
	cfg := wazero.NewRuntimeConfig()
	if opts.MemoryLimitMB > 0 {
		cfg = cfg.WithMemoryLimitPages(uint32(opts.MemoryLimitMB) * 16) // 64 KiB pages
	}
	if opts.Listener != nil {
		ctx = experimental.WithFunctionListenerFactory(ctx, opts.Listener)
	} else if opts.CacheDir != "" {
		cache, err := wazero.NewCompilationCacheWithDir(opts.CacheDir)
		if err != nil {
			s.closeState()
			return nil, fmt.Errorf("compilation cache %s: %v", opts.CacheDir, err)
		}
		cfg = cfg.WithCompilationCache(cache)
	}
	s.wz = wazero.NewRuntimeWithConfig(ctx, cfg)
	if err := gojs.Install(ctx, s.wz); err != nil {
		s.Close()
		return nil, err
	}
	compiled, err := s.wz.CompileModule(ctx, wasm)
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("compile %s: %v", opts.WasmPath, err)
	}
	s.compiled = compiled

	n := opts.WorkerRuntimes
	if n <= 0 {
		n = goruntime.NumCPU()
	}
	for i := range n {
		s.workers = append(s.workers, &slot{s: s, name: fmt.Sprintf("worker-%d", i)})
	}
	s.bodies = newBodyBudget(opts.Env, n)
	s.objects = &slot{s: s, name: "objects"}
	slots := append(append([]*slot(nil), s.workers...), s.objects)
	errs := make([]error, len(slots))
	var wg sync.WaitGroup
	for i, sl := range slots {
		wg.Go(func() { _, errs[i] = sl.get() })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		s.Close()
		for _, e := range errs { // one line: the first error says it
			if e != nil {
				return nil, e
			}
		}
	}
	if err := s.armPersisted(); err != nil {
		s.logf("re-arming alarms: %v", err)
	}
	return s, nil
}

func (s *Server) openState() error {
	dir := s.opts.StateDir
	if dir == "" {
		tmp, err := os.MkdirTemp("", "evmlb-state-")
		if err != nil {
			return err
		}
		dir, s.tmpState = tmp, tmp
	}
	db, err := store.Open(dir)
	if err != nil {
		return err
	}
	s.db = db
	return nil
}

func (s *Server) closeState() {
	if s.db != nil {
		s.db.Close()
	}
	if s.tmpState != "" {
		os.RemoveAll(s.tmpState)
	}
}

// connSlotKey is the context key of a connection's turn (ConnAffinity).
type connSlotKey struct{}

// pick returns the runtime slot of r's connection (ConnAffinity), else the least busy one of the pool, scanning
// from a round-robin start so that ties spread.
func (s *Server) pick(r *http.Request) *slot {
	n := uint64(len(s.workers))
	if turn, ok := r.Context().Value(connSlotKey{}).(uint64); ok {
		// One client connection stays on one runtime, as a keep-alive connection stays on one isolate at
		// Cloudflare: a client reading eth_blockNumber, then that block, asks the isolate that served the head.
		return s.workers[turn%n]
	}
	start := s.next.Add(1)
	best := s.workers[start%n]
	for i := uint64(1); i < n && best.calls.Load() > 0; i++ {
		if sl := s.workers[(start+i)%n]; sl.calls.Load() < best.calls.Load() {
			best = sl
		}
	}
	return best
}

// Handler is the HTTP handler of the worker entry.
func (s *Server) Handler() http.Handler { return http.HandlerFunc(s.serveHTTP) }

// Serve serves HTTP on l until Close, within the bounds of Options (ReadHeaderTimeout and the rest).
func (s *Server) Serve(l net.Listener) error {
	o := s.opts
	hs := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: or(o.ReadHeaderTimeout, DefaultReadHeaderTimeout),
		ReadTimeout:       or(o.ReadTimeout, DefaultReadTimeout),
		IdleTimeout:       or(o.IdleTimeout, DefaultIdleTimeout),
		MaxHeaderBytes:    or(o.MaxHeaderBytes, DefaultMaxHeaderBytes),
		// No WriteTimeout: it would bound the whole exchange, cutting long answers; see WriteStallTimeout.
	}
	if o.ConnAffinity {
		hs.ConnContext = func(ctx context.Context, _ net.Conn) context.Context {
			return context.WithValue(ctx, connSlotKey{}, s.conns.Add(1)-1)
		}
	}
	l = limitListener(l, or(o.MaxConns, DefaultMaxConns))
	s.mu.Lock()
	if s.closed || s.stopping {
		s.mu.Unlock()
		return http.ErrServerClosed
	}
	s.servers = append(s.servers, hs)
	s.mu.Unlock()
	return hs.Serve(l)
}

func (s *Server) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// Close stops serving, the runtimes, the alarms and the state at once: work still running is cut (Shutdown lets
// it finish first).
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	servers := s.servers
	s.servers = nil
	s.mu.Unlock()
	for _, hs := range servers {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		hs.Shutdown(ctx)
		cancel()
	}
	s.stopAlarms()
	s.socks.closeAll()
	s.cancel()
	for _, sl := range append(append([]*slot(nil), s.workers...), s.objects) {
		if sl == nil {
			continue
		}
		if rt, _ := sl.current(); rt != nil {
			rt.stop()
		}
	}
	if s.wz != nil {
		s.wz.Close(context.Background())
	}
	s.closeState()
	return nil
}

// RuntimeStats describe one runtime of the host.
type RuntimeStats struct {
	Name        string // worker-0, worker-1, …, objects
	Starts      int    // runtimes started in this slot so far
	Served      int64  // calls begun in this slot
	Calls       int    // calls in flight
	LiveRefs    int    // JS values Go holds references to
	RefsMade    uint64 // references to JS values Go was given since the runtime started
	MemoryBytes uint32 // the program's linear memory
	Timers      int    // Go's pending timers on the event loop
}

// Stats describe the host, for tests and benchmarks: per runtime and in total.
type Stats struct {
	Runtimes    []RuntimeStats
	Starts      int    // runtimes started so far, all slots
	LiveRefs    int    // total
	MemoryBytes uint64 // total linear memory
	Timers      int    // total
	Calls       int    // total calls in flight
	Instances   int    // live Durable Object instances
	Alarms      int    // armed alarms
	Violations  int64  // protocol violations so far (each was logged)
	EdgeEntries int    // entries of the Worker runtimes' answer cache
	EdgeBytes   int64  // the bytes of their keys and bodies
	Sockets     int    // open WebSockets of the subs objects (those accepted and not yet closed)
}

// Stats reads every runtime's figures (zero values for a slot with no live runtime).
func (s *Server) Stats() Stats {
	st := Stats{Violations: s.violations.Load(), Sockets: s.socks.count()}
	st.EdgeEntries, st.EdgeBytes = s.edge.stats()
	for _, sl := range append(append([]*slot(nil), s.workers...), s.objects) {
		rt, starts := sl.current()
		rs := RuntimeStats{Name: sl.name, Starts: starts, Served: sl.served.Load()}
		if rt != nil && !rt.isDead() {
			rt.loop.Do(func() {
				if rt.gort != nil {
					rs.LiveRefs, rs.MemoryBytes, rs.RefsMade = rt.gort.LiveRefs(), rt.gort.MemoryBytes(), rt.gort.RefsMade()
				}
				rs.Timers = rt.loop.Timers()
			})
			rt.mu.Lock()
			rs.Calls = len(rt.calls)
			if sl == s.objects {
				st.Instances = len(rt.instances)
			}
			rt.mu.Unlock()
		}
		st.Runtimes = append(st.Runtimes, rs)
		st.Starts += rs.Starts
		st.LiveRefs += rs.LiveRefs
		st.MemoryBytes += uint64(rs.MemoryBytes)
		st.Timers += rs.Timers
		st.Calls += rs.Calls
	}
	s.objMu.Lock()
	st.Alarms = len(s.alarms)
	s.objMu.Unlock()
	return st
}

// violation logs a protocol violation, counts it and fails the call (when there is one: c's handler only).
func (s *Server) violation(c *call, format string, args ...any) {
	s.violations.Add(1)
	what := fmt.Sprintf(format, args...)
	if c != nil {
		what += " (" + c.what + ")"
	}
	fmt.Fprintf(s.log, "evmlb host: protocol violation: %s\n", what)
	if c != nil {
		c.fail("protocol violation: " + what)
	}
}

func (s *Server) logf(format string, args ...any) {
	fmt.Fprintf(s.log, "evmlb host: "+format+"\n", args...)
}
