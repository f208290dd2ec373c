// Package server runs the balancer's wasm program on wazero and serves it over HTTP: the wazero host of
// CONTRACT.md.
//
// In-process use (the end-to-end tests do this):
//
//	srv, err := server.New(server.Options{
//		WasmPath: "build/app.wasm",
//		StateDir: t.TempDir(),          // Durable Object storage and alarms ("" = a temporary directory)
//		CacheDir: "",                   // wazero compilation cache ("" = none)
//		Env:      map[string]string{"UPSTREAM_CONFIG": cfg},
//	})
//	defer srv.Close()
//	ts := httptest.NewServer(srv.Handler()) // or srv.Serve(listener)
//
// New compiles the module and starts the Go runtime (one per Server, never one per request), waits for
// workers.ready and checks binding.contractVersion. If the program exits or traps, calls in flight get HTTP 500
// with contract.InternalErrorBody and the next call starts a new runtime (new Durable Object instance tokens,
// same storage; persisted alarms are re-armed).
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
	"sync"
	"time"

	"github.com/tetratelabs/wazero"

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
	// Client sends the program's outbound fetches; nil is a default client.
	Client *http.Client
	// StartTimeout bounds the wait for workers.ready; 0 is 60 s.
	StartTimeout time.Duration
	// MemoryLimitMB caps the program's linear memory (workerd allows an isolate 128 MB); 0 is wazero's 4 GiB.
	MemoryLimitMB int

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

	mu      sync.Mutex
	cur     *instance
	starts  int
	closed  bool
	servers []*http.Server
}

// ErrContractVersion is wrapped by New when the program implements another contract version.
var ErrContractVersion = errors.New("contract version mismatch")

// New loads and compiles the program, opens the state and starts the runtime.
func New(opts Options) (*Server, error) {
	s := &Server{opts: opts, log: opts.Log}
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
	if opts.CacheDir != "" {
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
	if _, err := s.instance(); err != nil {
		s.Close()
		return nil, err
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
		s.db = nil
	}
	if s.tmpState != "" {
		os.RemoveAll(s.tmpState)
	}
}

// instance returns the live runtime, starting one if there is none.
func (s *Server) instance() (*instance, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, errors.New("server closed")
	}
	if s.cur != nil && !s.cur.isDead() {
		return s.cur, nil
	}
	inst, err := s.start()
	if err != nil {
		return nil, err
	}
	s.cur = inst
	s.starts++
	return inst, nil
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
	l = limitListener(l, or(o.MaxConns, DefaultMaxConns))
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return http.ErrServerClosed
	}
	s.servers = append(s.servers, hs)
	s.mu.Unlock()
	return hs.Serve(l)
}

// Close stops serving, the runtime and the state.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	servers, cur := s.servers, s.cur
	s.servers, s.cur = nil, nil
	s.mu.Unlock()
	for _, hs := range servers {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		hs.Shutdown(ctx)
		cancel()
	}
	if cur != nil {
		cur.stop()
	}
	if s.wz != nil {
		s.wz.Close(context.Background())
	}
	s.closeState()
	return nil
}

// Stats describe the live runtime, for tests and benchmarks.
type Stats struct {
	Starts      int    // runtimes started so far
	LiveRefs    int    // JS values Go holds references to
	MemoryBytes uint32 // the program's linear memory
	Instances   int    // live Durable Object instances
	Alarms      int    // armed alarms
	Timers      int    // pending timers on the event loop
}

// Stats reads the live runtime's figures (zero values when none is running).
func (s *Server) Stats() Stats {
	s.mu.Lock()
	cur, st := s.cur, Stats{Starts: s.starts}
	s.mu.Unlock()
	if cur == nil {
		return st
	}
	cur.loop.Do(func() {
		if cur.gort != nil {
			st.LiveRefs, st.MemoryBytes = cur.gort.LiveRefs(), cur.gort.MemoryBytes()
		}
		st.Instances, st.Alarms, st.Timers = cur.world.Instances(), cur.world.PendingAlarms(), cur.loop.Timers()
	})
	return st
}

func (s *Server) logf(format string, args ...any) {
	fmt.Fprintf(s.log, "evmlb host: "+format+"\n", args...)
}
