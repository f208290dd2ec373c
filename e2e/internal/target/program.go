package target

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/evmlb/evmlb/e2e/internal/repo"
)

// StartWorkerdProgram runs another wasm program than the balancer (a test fixture built from e2e/testdata) in
// workerd through wrangler dev, behind the repository's shim (worker/shim/worker.mjs) and Go's wasm_exec.js, as
// `make build` lays out build/: a check of the contract's host side in workerd with a program of its own.
func StartWorkerdProgram(ctx context.Context, wasm string, vars map[string]string) (*Instance, error) {
	if err := (Workerd{}).Available(); err != nil {
		return nil, err
	}
	root, err := repo.Root()
	if err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp("", "evmlb-program-")
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*Instance, error) {
		_ = os.RemoveAll(tmp)
		return nil, err
	}
	goroot, err := exec.CommandContext(ctx, "go", "env", "GOROOT").Output()
	if err != nil {
		return fail(fmt.Errorf("go env GOROOT: %v", err))
	}
	for dst, src := range map[string]string{
		"worker.mjs":   filepath.Join(root, "worker", "shim", "worker.mjs"),
		"wasm_exec.js": filepath.Join(strings.TrimSpace(string(goroot)), "lib", "wasm", "wasm_exec.js"),
		"app.wasm":     wasm,
	} {
		b, err := os.ReadFile(src)
		if err != nil {
			return fail(err)
		}
		if err := os.WriteFile(filepath.Join(tmp, dst), b, 0o644); err != nil {
			return fail(err)
		}
	}
	const toml = `name = "evmlb-program"
main = "worker.mjs"
compatibility_date = "2026-04-26"

[[rules]]
type = "CompiledWasm"
globs = ["**/*.wasm"]
fallthrough = false
`
	if err := os.WriteFile(filepath.Join(tmp, "wrangler.toml"), []byte(toml), 0o644); err != nil {
		return fail(err)
	}
	envFile := filepath.Join(tmp, "program.env")
	if err := writeEnvFile(envFile, vars); err != nil {
		return fail(err)
	}
	inst, err := startWrangler(ctx, root, filepath.Join(tmp, "state"), envFile, tmp,
		[]string{"--config", filepath.Join(tmp, "wrangler.toml")}, nil)
	if err != nil {
		return fail(err)
	}
	inst.cleanup = func() { _ = os.RemoveAll(tmp) }
	return inst, nil
}
