package target

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/evmlb/evmlb/e2e/internal/procutil"
	"github.com/evmlb/evmlb/e2e/internal/repo"
)

// Workerd runs the balancer in workerd through the repository's `wrangler
// dev`, against wrangler.toml and build/ as `make build` leaves them.
type Workerd struct{}

var _ Host = Workerd{}

// Name implements Host.
func (Workerd) Name() string { return "workerd" }

// Available implements Host: it needs node on the PATH, wrangler under
// node_modules, wrangler.toml and build/app.wasm and build/worker.mjs.
func (Workerd) Available() error {
	if _, err := exec.LookPath("node"); err != nil {
		return fmt.Errorf("%w: node not on PATH", ErrUnavailable)
	}
	root, err := repo.Root()
	if err != nil {
		return err
	}
	for _, p := range []string{"node_modules/.bin/wrangler", "wrangler.toml", "build/app.wasm", "build/worker.mjs"} {
		if !repo.Exists(filepath.Join(root, p)) {
			return fmt.Errorf("%w: %s missing (run npm ci and make build)", ErrUnavailable, p)
		}
	}
	return nil
}

// Start implements Host. Variables go to the worker through an env file, so
// wrangler treats them as secrets (it prints their names, not their values)
// and ignores any .dev.vars or .env in the repository.
func (Workerd) Start(ctx context.Context, cfg Config) (*Instance, error) {
	root, err := repo.Root()
	if err != nil {
		return nil, err
	}
	vars, err := cfg.Vars()
	if err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp("", "evmlb-wrangler-")
	if err != nil {
		return nil, err
	}
	cleanupTmp := func() { _ = os.RemoveAll(tmp) }
	envFile := filepath.Join(tmp, "test.env")
	if err := writeEnvFile(envFile, vars); err != nil {
		cleanupTmp()
		return nil, err
	}
	state := cfg.StateDir
	if state == "" {
		state = filepath.Join(tmp, "state")
	}
	// A port picked free can be taken before wrangler binds it (workerd opens loopback ports of its own, and
	// other tests run beside this one): then wrangler exits with "Address already in use", and a new pair of
	// ports is tried.
	for try := 1; ; try++ {
		inst, err := startWrangler(ctx, root, state, envFile, tmp, nil, cfg.Output)
		if err == nil {
			inst.cleanup = cleanupTmp
			return inst, nil
		}
		if try == 3 || !strings.Contains(err.Error(), "Address already in use") {
			cleanupTmp()
			return nil, err
		}
	}
}

// startWrangler runs wrangler dev on two fresh ports and waits until it serves.
func startWrangler(ctx context.Context, root, state, envFile, tmp string, extra []string, output io.Writer) (*Instance, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	inspector, err := freePort()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(filepath.Join(root, "node_modules", ".bin", "wrangler"), "dev",
		"--ip", "127.0.0.1",
		"--port", strconv.Itoa(port),
		"--inspector-port", strconv.Itoa(inspector),
		"--persist-to", state,
		"--env-file", envFile,
		"--show-interactive-dev-session=false",
		"--live-reload=false",
	)
	cmd.Args = append(cmd.Args, extra...)
	cmd.Dir = root
	cmd.Env = envList(map[string]string{
		"WRANGLER_SEND_METRICS": "false",
		"CI":                    "true",
		"BROWSER":               "none",
		"NO_COLOR":              "1",
		"WRANGLER_LOG_PATH":     filepath.Join(tmp, "logs"),
		// Do not let the test run's own environment leak secrets or
		// settings into the worker.
		"CLOUDFLARE_INCLUDE_PROCESS_ENV": "false",
	})
	if output != nil {
		cmd.Stdout, cmd.Stderr = output, output
	}
	proc, err := procutil.Start(cmd)
	if err != nil {
		return nil, fmt.Errorf("starting wrangler dev: %w", err)
	}
	inst := &Instance{
		URL:      "http://127.0.0.1:" + strconv.Itoa(port),
		Host:     "workerd",
		StateDir: state,
		proc:     proc,
	}
	if err := waitServing(ctx, inst.URL, proc); err != nil {
		inst.Stop()
		return nil, fmt.Errorf("wrangler dev: %w\n--- output ---\n%s", err, proc.Logs)
	}
	return inst, nil
}

// writeEnvFile writes vars in the dotenv format wrangler reads, each value in
// single quotes (taken literally).
func writeEnvFile(path string, vars map[string]string) error {
	keys := make([]string, 0, len(vars))
	for k := range vars {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		v := vars[k]
		if strings.ContainsAny(v, "'\n\r") {
			return fmt.Errorf("variable %s: a value for wrangler's env file cannot hold a single quote or newline", k)
		}
		fmt.Fprintf(&b, "%s='%s'\n", k, v)
	}
	return os.WriteFile(path, []byte(b.String()), 0o600)
}

// StartFloor runs the plain-JS floor Worker (e2e/testdata/floor: one fetch to upstream, nothing else) in workerd
// through wrangler dev, for benchmarks: the runtime's floor for a proxy. It answers at the instance's URL.
func StartFloor(ctx context.Context, upstream string) (*Instance, error) {
	return startFloor(ctx, "floor", upstream)
}

// StartNoFetchFloor runs the plain-JS Worker that answers by itself (e2e/testdata/floor-nofetch: it reads the
// request and answers a JSON-RPC result, no fetch) in workerd through wrangler dev: the floor of an answer from
// the edge, what a cache hit is measured against.
func StartNoFetchFloor(ctx context.Context) (*Instance, error) {
	return startFloor(ctx, "floor-nofetch", "")
}

func startFloor(ctx context.Context, dir, upstream string) (*Instance, error) {
	root, err := repo.Root()
	if err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp("", "evmlb-floor-")
	if err != nil {
		return nil, err
	}
	envFile := filepath.Join(tmp, "floor.env")
	if err := writeEnvFile(envFile, map[string]string{"FLOOR_UPSTREAM": upstream}); err != nil {
		_ = os.RemoveAll(tmp)
		return nil, err
	}
	inst, err := startWrangler(ctx, root, filepath.Join(tmp, "state"), envFile, tmp, []string{"--config", filepath.Join(root, "e2e", "testdata", dir, "wrangler.toml")}, nil)
	if err != nil {
		_ = os.RemoveAll(tmp)
		return nil, err
	}
	inst.cleanup = func() { _ = os.RemoveAll(tmp) }
	return inst, nil
}
