// Package testprog builds the host's test programs (GOOS=js GOARCH=wasm, from host/internal/server/testdata)
// for tests and benchmarks, caching each build by a hash of its sources so reruns do not relink.
package testprog

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
)

var mu sync.Mutex

// Build returns the path of the wasm built from testdata/name of host/internal/server.
func Build(name string) (string, error) {
	mu.Lock()
	defer mu.Unlock()
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..", "..") // the module root
	src := filepath.Join(root, "host", "internal", "server", "testdata", name)
	h := sha256.New()
	files, err := filepath.Glob(filepath.Join(src, "*.go"))
	if err != nil || len(files) == 0 {
		return "", fmt.Errorf("no test program %s", name)
	}
	sort.Strings(files)
	// The programs import internal/contract (its names and JSON text), and the sockets program Go's side of the
	// contract (internal/hostcall, worker/jsbind), so their sources are part of the key.
	var shared []string
	for _, dir := range []string{"internal/contract", "internal/hostcall", "worker/jsbind"} {
		fs, _ := filepath.Glob(filepath.Join(root, dir, "*.go"))
		shared = append(shared, fs...)
	}
	// The budget program links the budget object itself (durable, and the core under it).
	if name == "budget" {
		for _, dir := range []string{"durable", "internal"} {
			filepath.WalkDir(filepath.Join(root, dir), func(path string, d os.DirEntry, err error) error {
				if err == nil && !d.IsDir() && strings.HasSuffix(path, ".go") && !strings.HasSuffix(path, "_test.go") {
					shared = append(shared, path)
				}
				return nil
			})
		}
	}
	sort.Strings(shared)
	for _, f := range append(append(files, shared...), filepath.Join(root, "go.sum")) {
		b, err := os.ReadFile(f)
		if err != nil {
			return "", err
		}
		h.Write([]byte(f))
		h.Write(b)
	}
	h.Write([]byte(runtime.Version()))
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	dir := filepath.Join(cache, "evmlb-host-testdata")
	out := filepath.Join(dir, name+"-"+hex.EncodeToString(h.Sum(nil))[:16]+".wasm")
	if _, err := os.Stat(out); err == nil {
		return out, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	tmp := out + ".tmp"
	cmd := exec.Command("go", "build", "-o", tmp, "./host/internal/server/testdata/"+name)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "GOOS=js", "GOARCH=wasm")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build %s: %v\n%s", name, err, b)
	}
	return out, os.Rename(tmp, out)
}
