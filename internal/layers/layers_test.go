package layers

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// The module's layers, lowest first, in the style of go/build's deps_test: each names its packages and the
// in-module packages they may import (directly, in non-test files, in the native and the js/wasm build). A
// package belongs to the first layer one of whose patterns it matches. "x/..." is x and everything under it.
// An import not allowed here fails the test with the arrow named: move the code to where it belongs, or, if the
// new arrow does not run back up, add it here.
var layers = []struct {
	name     string
	packages []string
	mayUse   []string
}{
	// Test support: fake EVM nodes and the in-memory host. Only tests use them.
	{"test support", []string{"internal/evmtest", "internal/platform/memplatform"}, []string{"internal/..."}},
	// Subscriptions' pure core (issue 21): no I/O of its own, so of the module only the JSON-RPC parser; the
	// wiring (durable, worker/app) does the fetching and the persisting.
	{"core (subs)", []string{"internal/subs"}, []string{"internal/jsonrpc"}},
	// Limits that hold across isolates (issue 22): the allocator and the isolate's limiter, pure, clock given.
	{"core (budget)", []string{"internal/budget"}, []string{}},
	// The pure core: nothing above it (no durable, worker, host or e2e; no syscall/js, see below). It includes
	// internal/clients (CLIENT_KEYS: parsing, the constant-time lookup, a request's key), which the host's
	// commands also use (validate, secrets push, keys new).
	{"core", []string{"internal/..."}, []string{"internal/..."}},
	// The Durable Objects' logic: the core only.
	{"durable", []string{"durable"}, []string{"internal/..."}},
	// The http.Handler every role is served by: it wires the objects and the data plane together.
	{"worker/app", []string{"worker/app"}, []string{"internal/...", "durable"}},
	// The wasm program and its syscall/js binding.
	{"worker", []string{"worker/..."}, []string{"worker/...", "internal/..."}},
	// The evmlb command: the wazero host and the operator's commands. It runs app.wasm; it does not link the
	// balancer: of the core only the contract it shares with the shim, the admin API's types, the
	// configuration (validate), admin auth's names (status), the health check's reading of answers (probe) and the
	// client keys (validate, secrets push, keys new; the path redaction of the host's logs).
	{"host", []string{"host/..."}, []string{"host/...", "internal/contract", "internal/adminapi", "internal/config",
		"internal/auth", "internal/healthcheck", "internal/clients"}},
	// End-to-end tests and the bench: they drive the built programs from outside.
	{"e2e", []string{"e2e/..."}, []string{"e2e/..."}},
}

// Packages that may import syscall/js (DEVELOPMENT.md: no syscall/js outside worker/ and host/; worker/app is
// pure Go, tested natively).
var mayUseJS = []string{"worker", "worker/jsbind", "host/..."}

// Packages nothing else in the module may depend on, even indirectly, from the listed layers: the CLI and the
// host stay free of the balancer's data and control planes.
var neverBelow = map[string][]string{
	"host": {"durable", "worker/...", "internal/proxy", "internal/hostcall", "internal/balance", "internal/forward",
		"internal/cache"},
}

const module = "github.com/evmlb/evmlb"

// hostOnly are outside modules only the given packages of the module may depend on, even indirectly (prefixes
// of import paths): the wazero host's WebSocket server must never reach app.wasm (it would grow it, and Go's side
// never touches a socket: CONTRACT.md §7).
var hostOnly = map[string][]string{
	"github.com/coder/websocket": {"host/..."},
}

func match(pattern, pkg string) bool {
	if p, ok := strings.CutSuffix(pattern, "/..."); ok {
		return pkg == p || strings.HasPrefix(pkg, p+"/")
	}
	return pkg == pattern
}

func matchAny(patterns []string, pkg string) bool {
	return slices.ContainsFunc(patterns, func(p string) bool { return match(p, pkg) })
}

type pkg struct {
	ImportPath string
	Imports    []string
	Deps       []string
	GoFiles    []string
}

// list is `go list -json ./...` of the module for the build env adds to the environment.
func list(t *testing.T, env ...string) []pkg {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	sources(t, root)
	cmd := exec.Command("go", "list", "-e", "-json=ImportPath,Imports,Deps,GoFiles", "./...")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list %v: %v\n%s", env, err, stderr.Bytes())
	}
	var pkgs []pkg
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p pkg
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		if len(p.GoFiles) > 0 { // none: every file is a test or for another build
			pkgs = append(pkgs, p)
		}
	}
	return pkgs
}

// sources reads every Go file of the module and go.mod: go test caches a test's result keyed by the files the test
// opened, and go list's reading them in another process would not count, so a new import would find a cached pass.
func sources(t *testing.T, root string) {
	t.Helper()
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		switch {
		case err != nil:
			return err
		case d.IsDir() && path != root && (strings.HasPrefix(d.Name(), ".") || d.Name() == "node_modules" || d.Name() == "build"):
			return filepath.SkipDir
		case d.IsDir() || (!strings.HasSuffix(path, ".go") && d.Name() != "go.mod"):
			return nil
		}
		_, err = os.ReadFile(path)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// violations checks pkgs against the tables and returns one line per forbidden arrow.
func violations(pkgs []pkg) []string {
	var bad []string
	for _, p := range pkgs {
		name, ok := strings.CutPrefix(p.ImportPath, module+"/")
		if !ok {
			continue // the module's root package, if it had one, would be above everything
		}
		layer := -1
		for i, l := range layers {
			if matchAny(l.packages, name) {
				layer = i
				break
			}
		}
		if layer < 0 {
			bad = append(bad, fmt.Sprintf("%s is in no layer: add it to the table in internal/layers", name))
			continue
		}
		l := layers[layer]
		for _, imp := range p.Imports {
			if imp == "syscall/js" && !matchAny(mayUseJS, name) {
				bad = append(bad, fmt.Sprintf("%s (%s) imports syscall/js: only worker/ and host/ may", name, l.name))
			}
			to, ok := strings.CutPrefix(imp, module+"/")
			if !ok {
				continue
			}
			if !matchAny(l.mayUse, to) {
				bad = append(bad, fmt.Sprintf("forbidden import: %s -> %s (layer %s may import only %s)", name, to, l.name, strings.Join(l.mayUse, ", ")))
			}
			for _, tl := range layers[:1] { // test support is for tests only
				if matchAny(tl.packages, to) && l.name != tl.name {
					bad = append(bad, fmt.Sprintf("forbidden import: %s -> %s (%s is for tests only)", name, to, tl.name))
				}
			}
		}
		for _, dep := range p.Deps {
			for ext, may := range hostOnly {
				if (dep == ext || strings.HasPrefix(dep, ext+"/")) && !matchAny(may, name) {
					bad = append(bad, fmt.Sprintf("forbidden dependency: %s depends on %s (only %s may)", name, ext, strings.Join(may, ", ")))
				}
			}
			to, ok := strings.CutPrefix(dep, module+"/")
			if ok && matchAny(neverBelow[l.name], to) {
				bad = append(bad, fmt.Sprintf("forbidden dependency: %s depends on %s (layer %s must not, even indirectly)", name, to, l.name))
			}
		}
	}
	slices.Sort(bad)
	return slices.Compact(bad)
}

// TestLayers checks every package's imports, in the native and the js/wasm build (files with build tags).
func TestLayers(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	for build, env := range map[string][]string{"native": nil, "js/wasm": {"GOOS=js", "GOARCH=wasm"}} {
		pkgs := list(t, env...)
		if len(pkgs) < 10 {
			t.Fatalf("go list (%s) found %d packages", build, len(pkgs))
		}
		for _, v := range violations(pkgs) {
			t.Errorf("%s build: %s", build, v)
		}
	}
}

// The check itself: an arrow back up, a syscall/js outside worker/ and host/, a test-support import and a host
// that reaches the data plane through another package are each caught.
func TestViolations(t *testing.T) {
	got := violations([]pkg{
		{ImportPath: module + "/internal/balance", Imports: []string{module + "/durable", "time"}},
		{ImportPath: module + "/worker/app", Imports: []string{"syscall/js", module + "/durable"}},
		{ImportPath: module + "/internal/proxy", Imports: []string{module + "/internal/evmtest"}},
		{ImportPath: module + "/host/internal/cli", Imports: []string{module + "/internal/config"}, Deps: []string{module + "/internal/proxy"}},
		{ImportPath: module + "/newdir", Imports: nil},
		{ImportPath: module + "/durable", Imports: []string{module + "/internal/balance"}},
		{ImportPath: module + "/worker", Deps: []string{"github.com/coder/websocket/internal/util"}},
		{ImportPath: module + "/host/internal/server", Deps: []string{"github.com/coder/websocket"}},
	})
	for _, w := range []string{
		"forbidden import: internal/balance -> durable (layer core may import only internal/...)",
		"worker/app (worker/app) imports syscall/js: only worker/ and host/ may",
		"forbidden import: internal/proxy -> internal/evmtest (test support is for tests only)",
		"forbidden dependency: host/internal/cli depends on internal/proxy (layer host must not, even indirectly)",
		"newdir is in no layer: add it to the table in internal/layers",
		"forbidden dependency: worker depends on github.com/coder/websocket (only host/... may)",
	} {
		if !slices.Contains(got, w) {
			t.Errorf("not caught: %s", w)
		}
	}
	if len(got) != 6 {
		t.Errorf("%d violations, want 6 (durable -> internal/balance and host -> coder/websocket are allowed): %q", len(got), got)
	}
}

// serveAlone is the host command `make run` builds; it must not link the operator's commands, whose Cloudflare SDK
// is most of the compile time on a fresh machine (host/cmd/evmlb-serve).
const serveAlone = "host/cmd/evmlb-serve"

// serveMustNotLink are what serveAlone may not depend on, even indirectly (prefixes of import paths).
var serveMustNotLink = []string{module + "/host/internal/cli", "github.com/cloudflare/"}

// TestServeAlone: `make run` builds only what serving needs.
func TestServeAlone(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	for _, p := range list(t) {
		if p.ImportPath != module+"/"+serveAlone {
			continue
		}
		for _, no := range serveMustNotLink {
			if i := slices.IndexFunc(p.Deps, func(d string) bool { return strings.HasPrefix(d, no) }); i >= 0 {
				t.Errorf("%s depends on %s: make run would compile the operator's commands", serveAlone, p.Deps[i])
			}
		}
		return
	}
	t.Fatalf("%s not found", serveAlone)
}
