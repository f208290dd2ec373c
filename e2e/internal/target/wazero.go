package target

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/evmlb/evmlb/e2e/internal/procutil"
	"github.com/evmlb/evmlb/e2e/internal/repo"
)

// Wazero runs the balancer in the wazero host (the repository's ./host
// command), as a child process built once per test binary.
type Wazero struct {
	// CacheDir is the wazero compilation cache shared by every instance;
	// empty means one temporary directory per test binary.
	CacheDir string
	// Workers, when not 0, is the size of the host's pool of Worker runtimes (serve -workers); 0 is the
	// host's default, one per core.
	Workers int
	// MaxConns, when not 0, bounds the host's open client connections (serve -max-conns; each WebSocket is one);
	// 0 is the host's default, 1024.
	MaxConns int
	// Wasm, when not empty, is the program the host runs instead of build/app.wasm (the bench's Go-wasm floor).
	Wasm string
}

var _ Host = (*Wazero)(nil)

// Name implements Host.
func (*Wazero) Name() string { return "wazero" }

// Available implements Host: it needs host/ and build/app.wasm.
func (*Wazero) Available() error {
	root, err := repo.Root()
	if err != nil {
		return err
	}
	if !repo.Exists(filepath.Join(root, "build", "app.wasm")) {
		return fmt.Errorf("%w: build/app.wasm missing (make build)", ErrUnavailable)
	}
	files, _ := filepath.Glob(filepath.Join(root, "host", "*.go"))
	for _, f := range files {
		if b, err := os.ReadFile(f); err == nil && (bytes.HasPrefix(b, []byte("package main\n")) || bytes.Contains(b, []byte("\npackage main\n"))) {
			return nil
		}
	}
	return fmt.Errorf("%w: no main package in host/", ErrUnavailable)
}

var hostBin struct {
	once  sync.Once
	dir   string
	path  string
	cache string
	err   error
}

// Cleanup removes the host binary and compilation cache built by this
// process. Call it once no instance runs any more (TestMain, after m.Run).
func Cleanup() {
	if hostBin.dir != "" {
		_ = os.RemoveAll(hostBin.dir)
	}
}

// Binary builds the wazero host (host/cmd/evmlb-serve, with make build's
// -trimpath, so that after make build it comes from Go's build cache in a
// second) once into a temporary directory and returns its path and a shared
// compilation cache directory. The directory lives until the process calls
// Cleanup. TestMain calls it before any test, so that no test's deadline
// includes a build (on a fresh machine it is a minute of both cores).
func Binary() (string, string, error) {
	hostBin.once.Do(func() {
		root, err := repo.Root()
		if err != nil {
			hostBin.err = err
			return
		}
		dir, err := os.MkdirTemp("", "evmlb-host-")
		if err != nil {
			hostBin.err = err
			return
		}
		hostBin.dir = dir
		hostBin.path = filepath.Join(dir, "evmlb-host")
		hostBin.cache = filepath.Join(dir, "cache")
		cmd := exec.Command("go", "build", "-trimpath", "-o", hostBin.path, "./host/cmd/evmlb-serve")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			hostBin.err = fmt.Errorf("go build ./host/cmd/evmlb-serve: %v\n%s", err, out)
		}
	})
	return hostBin.path, hostBin.cache, hostBin.err
}

// Start implements Host.
func (w *Wazero) Start(ctx context.Context, cfg Config) (*Instance, error) {
	root, err := repo.Root()
	if err != nil {
		return nil, err
	}
	bin, cache, err := Binary()
	if err != nil {
		return nil, err
	}
	if w.CacheDir != "" {
		cache = w.CacheDir
	}
	vars, err := cfg.Vars()
	if err != nil {
		return nil, err
	}
	var cleanup func()
	state := cfg.StateDir
	if state == "" {
		if state, err = os.MkdirTemp("", "evmlb-state-"); err != nil {
			return nil, err
		}
		dir := state
		cleanup = func() { _ = os.RemoveAll(dir) }
	}
	// As for workerd: a port picked free can be taken before the host binds it; then try a new one.
	for try := 1; ; try++ {
		wasm := w.Wasm
		if wasm == "" {
			wasm = filepath.Join(root, "build", "app.wasm")
		}
		inst, err := startHost(ctx, root, bin, cache, state, wasm, vars, cfg.Output, w.Workers, w.MaxConns)
		if err == nil {
			inst.cleanup = cleanup
			return inst, nil
		}
		if try == 3 || !strings.Contains(err.Error(), "address already in use") {
			if cleanup != nil {
				cleanup()
			}
			return nil, err
		}
	}
}

// startHost runs the host's serve command on a fresh port and waits until it serves.
func startHost(ctx context.Context, root, bin, cache, state, wasm string, vars map[string]string, output io.Writer, workers, maxConns int) (*Instance, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	args := []string{"serve",
		"-addr", addr,
		"-state", state,
		"-cache", cache,
		"-wasm", wasm,
		// Not the repository's .dev.vars: only what the test sets.
		"-env-file", os.DevNull,
	}
	if workers > 0 {
		args = append(args, "-workers", strconv.Itoa(workers))
	}
	if maxConns > 0 {
		args = append(args, "-max-conns", strconv.Itoa(maxConns))
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = root
	cmd.Env = envList(vars)
	if output != nil {
		cmd.Stdout, cmd.Stderr = output, output
	}
	proc, err := procutil.Start(cmd)
	if err != nil {
		return nil, fmt.Errorf("starting the wazero host: %w", err)
	}
	inst := &Instance{URL: "http://" + addr, Host: "wazero", StateDir: state, proc: proc}
	if err := waitServing(ctx, inst.URL, proc); err != nil {
		inst.Stop()
		return nil, fmt.Errorf("wazero host: %w\n--- output ---\n%s", err, proc.Logs)
	}
	return inst, nil
}
