package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/evmlb/evmlb/e2e/internal/anvil"
	"github.com/evmlb/evmlb/e2e/internal/repo"
	"github.com/evmlb/evmlb/e2e/internal/target"
)

// EnvRequired makes missing tools (anvil, node, wrangler, the host) a failure
// instead of a skip; CI sets it.
const EnvRequired = "EVMLB_E2E_REQUIRED"

func TestMain(m *testing.M) {
	if err := ensureWasm(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.Exit(1)
	}
	if _, _, err := target.Binary(); err != nil { // built before any test starts its clock
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.Exit(1)
	}
	code := m.Run()
	target.Cleanup()
	os.Exit(code)
}

// ensureWasm builds build/app.wasm when it is missing and the sources are
// there, as `make build` would. It never rebuilds an existing file: the
// build takes a minute of both cores.
func ensureWasm() error {
	root, err := repo.Root()
	if err != nil {
		return err
	}
	wasm := filepath.Join(root, "build", "app.wasm")
	if repo.Exists(wasm) || !repo.Exists(filepath.Join(root, "worker")) {
		return nil
	}
	fmt.Fprintln(os.Stderr, "e2e: building build/app.wasm (GOOS=js GOARCH=wasm)")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", wasm, "./worker")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "GOOS=js", "GOARCH=wasm")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("building build/app.wasm: %v\n%s", err, out)
	}
	return nil
}

// need skips (or, with EVMLB_E2E_REQUIRED=1, fails) t when err is not nil.
func need(t testing.TB, err error) {
	t.Helper()
	if err == nil {
		return
	}
	if os.Getenv(EnvRequired) == "1" {
		t.Fatalf("%v (%s=1 makes this a failure)", err, EnvRequired)
	}
	t.Skipf("%v (set %s=1 to fail instead)", err, EnvRequired)
}

// needHost checks that anvil and the host are there.
func needHost(t testing.TB, h target.Host) {
	t.Helper()
	_, err := anvil.Binary()
	need(t, err)
	need(t, h.Available())
}

// hosts are the hosts under test, one value each for the whole test binary.
var (
	wazeroHost  = &target.Wazero{}
	workerdHost = target.Workerd{}
)

// records keeps each host's scenario records, so that the second host run in
// this process can be compared with the first.
var records = struct {
	sync.Mutex
	m map[string]map[string]*Record
}{m: map[string]map[string]*Record{}}

// runTable runs the scenario table on h and keeps its records.
func runTable(t *testing.T, h target.Host) map[string]*Record {
	needHost(t, h)
	recs := Run(t, h)
	records.Lock()
	records.m[h.Name()] = recs
	records.Unlock()
	return recs
}

func recordsOf(host string) map[string]*Record {
	records.Lock()
	defer records.Unlock()
	return records.m[host]
}

// compareHosts fails, per scenario, where two hosts' records differ. Only
// scenarios that passed on both are compared (a failure is reported already).
func compareHosts(t *testing.T, hostA string, a map[string]*Record, hostB string, b map[string]*Record) {
	for _, sc := range Scenarios() {
		ra, rb := a[sc.Name], b[sc.Name]
		if ra == nil || rb == nil {
			continue
		}
		t.Run("agree/"+sc.Name, func(t *testing.T) {
			for _, d := range Compare(hostA, ra, hostB, rb) {
				t.Error(d)
			}
		})
	}
}
