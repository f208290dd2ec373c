// Package serve is the `serve` command: the wazero host serving build/app.wasm over HTTP. Both the operator's
// command (host, build/evmlb) and the serve-only one (host/cmd/evmlb-serve, what `make run` builds, without the
// Cloudflare SDK the operator's commands link) run it.
package serve

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	_ "net/http/pprof" // -pprof: on http.DefaultServeMux, served only on -pprof's own address
	"os"
	"os/signal"
	"runtime/debug"
	"strconv"
	"syscall"

	"github.com/evmlb/evmlb/host/internal/server"
)

// Flags is the serve command's usage after its name.
const Flags = "[-wasm FILE] [-addr HOST:PORT] [-state DIR] [-cache DIR] [-env-file FILE] [-workers N] [-memory-mb MB] [-edge-cache-mb MB] [-pprof ADDR]"

// EdgeCacheEnv is the environment variable that sets -edge-cache-mb's default.
const EdgeCacheEnv = "EVMLB_HOST_EDGE_CACHE_MB"

// Run runs `serve` (args[0] must be "serve") until SIGINT or SIGTERM. usageLine is what a usage error says.
// SIGUSR1 evicts the Durable Objects' runtime as Cloudflare evicts a hibernated object (server.EvictObjects: their
// Go memory is gone, their WebSockets stay open), for tests that run the host as a process.
func Run(args []string, usageLine string) error {
	usage := func() error { return errors.New(usageLine) }
	if len(args) == 0 || args[0] != "serve" {
		return usage()
	}
	fl := flag.NewFlagSet("serve", flag.ContinueOnError)
	fl.SetOutput(io.Discard) // errors are one line
	wasm := fl.String("wasm", "build/app.wasm", "the program")
	addr := fl.String("addr", "127.0.0.1:8787", "listen address (PORT overrides the port)")
	state := fl.String("state", ".evmlb/state", "directory of Durable Object storage")
	cache := fl.String("cache", ".evmlb/cache", "directory of the wazero compilation cache (\"\" for none)")
	envFile := fl.String("env-file", ".dev.vars", "KEY=VALUE file of variables and secrets")
	workers := fl.Int("workers", 0, "Go runtimes serving the Worker role (0: one per core)")
	memory := fl.Int("memory-mb", 128, "wasm memory of each runtime, in MB, as workerd allows an isolate (0: wazero's 4 GiB)")
	edgeDefault := server.DefaultEdgeCacheBytes >> 20
	if v := os.Getenv(EdgeCacheEnv); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return fmt.Errorf("%s must be a whole number of MiB, 0 or more", EdgeCacheEnv)
		}
		edgeDefault = n
	}
	edgeMB := fl.Int("edge-cache-mb", edgeDefault, "MiB of answers the Worker runtimes share in the host's answer cache, as caches.default in workerd (0: none; "+EdgeCacheEnv+" sets the default)")
	maxConns := fl.Int("max-conns", server.DefaultMaxConns, "client connections open at once, WebSockets included (further ones wait in the listen backlog)")
	pprofAddr := fl.String("pprof", "", "serve Go's profiles (net/http/pprof) on this address, for profiling the host; no auth, so a loopback address only (off by default)")
	if err := fl.Parse(args[1:]); err != nil {
		return fmt.Errorf("%v; %s", err, usageLine)
	}
	if fl.NArg() > 0 || *workers < 0 || *memory < 0 || *edgeMB < 0 || *maxConns < 1 {
		return usage()
	}
	if port := os.Getenv("PORT"); port != "" {
		host, _, err := net.SplitHostPort(*addr)
		if err != nil {
			return fmt.Errorf("bad -addr %q", *addr)
		}
		*addr = net.JoinHostPort(host, port)
	}
	env, err := server.LoadEnvFile(*envFile)
	if err != nil {
		return err
	}
	server.OverrideFromEnviron(env, os.Environ())
	if _, err := os.Stat(*wasm); err != nil {
		return fmt.Errorf("%s not found: run `make build`", *wasm)
	}
	l, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("cannot listen on %s: %v", *addr, listenCause(err))
	}
	srv, err := server.New(server.Options{WasmPath: *wasm, StateDir: *state, CacheDir: *cache, Env: env, WorkerRuntimes: *workers,
		MemoryLimitMB: *memory, EdgeCacheBytes: edgeCacheBytes(*edgeMB), ConnAffinity: true, MaxConns: *maxConns})
	if err != nil {
		l.Close()
		return err
	}
	defer srv.Close()
	fmt.Fprintf(os.Stderr, "evmlb host: serving %s on http://%s (%d worker runtimes and one for the objects)\n",
		*wasm, l.Addr(), len(srv.Stats().Runtimes)-1)
	if *pprofAddr != "" {
		pl, err := net.Listen("tcp", *pprofAddr)
		if err != nil {
			return fmt.Errorf("cannot listen on %s: %v", *pprofAddr, listenCause(err))
		}
		fmt.Fprintf(os.Stderr, "evmlb host: profiles on http://%s/debug/pprof/\n", pl.Addr())
		go func() { _ = http.Serve(pl, http.DefaultServeMux) }()
	}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, os.Interrupt, syscall.SIGTERM)
	evict := make(chan os.Signal, 1)
	signal.Notify(evict, syscall.SIGUSR1)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	for {
		select {
		case <-evict:
			var mem uint32
			for _, rt := range srv.Stats().Runtimes {
				if rt.Name == "objects" {
					mem = rt.MemoryBytes
				}
			}
			when := "with no call in flight"
			if !srv.EvictObjects() {
				when = fmt.Sprintf("calls in flight cut: none ended within %v", server.EvictWait)
			}
			// What the evicted runtime held goes back to the OS now (an eviction is rare), so that the process's
			// resident memory shows what the open sockets hold (e2e's ws-idle).
			debug.FreeOSMemory()
			fmt.Fprintf(os.Stderr, "evmlb host: SIGUSR1: the objects runtime is evicted (%d WebSockets stay open; its linear memory was %d bytes; %s)\n", srv.Stats().Sockets, mem, when)
		case sig := <-stop:
			fmt.Fprintf(os.Stderr, "evmlb host: %v: shutting down (at most %v)\n", sig, server.ShutdownWait)
			ctx, cancel := context.WithTimeout(context.Background(), server.ShutdownWait)
			defer cancel()
			return srv.Shutdown(ctx)
		case err := <-errc:
			return err
		}
	}
}

// edgeCacheBytes is server.Options.EdgeCacheBytes for -edge-cache-mb: 0 MiB is none (a negative bound).
func edgeCacheBytes(mb int) int64 {
	if mb == 0 {
		return -1
	}
	return int64(mb) << 20
}

// listenCause shortens a listen error to its cause ("address already in use").
func listenCause(err error) error {
	var op *net.OpError
	if errors.As(err, &op) {
		var sys *os.SyscallError
		if errors.As(op.Err, &sys) {
			return sys.Err
		}
		return op.Err
	}
	return err
}
