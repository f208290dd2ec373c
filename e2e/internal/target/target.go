// Package target starts the balancer under test in one of its hosts — workerd
// through `wrangler dev`, or the wazero host — with a given configuration, and
// stops it. Both hosts implement Host, so one scenario table runs on each.
package target

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/evmlb/evmlb/e2e/internal/procutil"
)

// Upstream is one element of UPSTREAM_CONFIG.
type Upstream struct {
	Chain string `json:"chain"`
	Name  string `json:"name"`
	URL   string `json:"upstream"`
	// Archive is the entry's "archive" (issue 20): only the object form (Config.Chains set) takes it.
	Archive bool `json:"archive,omitempty"`
	// MaxRPS and MaxBurst are the entry's "max_rps" and "max_burst" (issue 22: the provider's request budget), 0
	// for none; only the object form takes them.
	MaxRPS   int `json:"max_rps,omitempty"`
	MaxBurst int `json:"max_burst,omitempty"`
}

// Config is what one balancer instance is started with.
type Config struct {
	// Upstreams becomes UPSTREAM_CONFIG, unless RawUpstreamConfig is set.
	Upstreams []Upstream
	// RawUpstreamConfig, when not empty, is passed as UPSTREAM_CONFIG verbatim
	// (to test malformed configurations).
	RawUpstreamConfig string
	// Chains, when not empty, is the "chains" member (per-chain settings) of
	// UPSTREAM_CONFIG, which then takes the object form.
	Chains string
	// AdminPassword becomes ADMIN_PASSWORD.
	AdminPassword string
	// Env holds further variables (EVMLB_HEALTH_INTERVAL, ADMIN_USER, …).
	Env map[string]string
	// StateDir is where the host persists Durable Object storage. Two
	// instances started one after the other with the same StateDir share
	// their state. Empty means a fresh temporary directory.
	StateDir string
	// Output, when set, gets every byte the host's processes write to stdout
	// and stderr as they write it (Instance.Logs keeps only the last 4 MiB).
	// It is written from two goroutines at once: it must be safe for
	// concurrent use.
	Output io.Writer
}

// Vars returns every variable the balancer gets, UPSTREAM_CONFIG included.
func (c Config) Vars() (map[string]string, error) {
	vars := map[string]string{}
	for k, v := range c.Env {
		vars[k] = v
	}
	if c.RawUpstreamConfig != "" {
		vars["UPSTREAM_CONFIG"] = c.RawUpstreamConfig
	} else {
		b, err := json.Marshal(c.Upstreams)
		if err != nil {
			return nil, err
		}
		vars["UPSTREAM_CONFIG"] = string(b)
		if c.Chains != "" {
			vars["UPSTREAM_CONFIG"] = `{"chains":` + c.Chains + `,"upstreams":` + string(b) + `}`
		}
	}
	if c.AdminPassword != "" {
		vars["ADMIN_PASSWORD"] = c.AdminPassword
	}
	return vars, nil
}

// Host is one way of running build/app.wasm.
type Host interface {
	// Name is "workerd" or "wazero".
	Name() string
	// Available returns nil when the host can run here, else what is missing.
	Available() error
	// Start runs the balancer with cfg and returns once GET / answers.
	Start(ctx context.Context, cfg Config) (*Instance, error)
}

// Instance is one running balancer.
type Instance struct {
	// URL is the base URL, http://127.0.0.1:PORT, without a trailing slash.
	URL string
	// Host is the Name of the host running it.
	Host string
	// StateDir is the persistence directory in use.
	StateDir string

	proc    *procutil.Proc
	cleanup func()
}

// Logs returns the host's output so far.
func (i *Instance) Logs() string {
	if i.proc == nil {
		return ""
	}
	return i.proc.Logs.String()
}

// Stop stops the balancer and every process it started, and waits for them.
// It is safe to call more than once.
func (i *Instance) Stop() {
	if i.proc != nil {
		i.proc.Stop(10 * time.Second)
	}
	if i.cleanup != nil {
		i.cleanup()
		i.cleanup = nil
	}
}

// Start starts cfg on h and stops it in t.Cleanup; on failure it calls
// t.Fatal with the host's output.
func Start(t testing.TB, h Host, cfg Config) *Instance {
	t.Helper()
	if cfg.StateDir == "" {
		cfg.StateDir = t.TempDir()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	inst, err := h.Start(ctx, cfg)
	if err != nil {
		t.Fatalf("starting the balancer in %s: %v", h.Name(), err)
	}
	t.Cleanup(inst.Stop)
	return inst
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// waitServing polls GET url/ until it answers with a status below 500 (the
// balancer's GET / never answers 5xx), the process exits, or ctx ends. Once
// the server answers at all, it gets 20 s more to answer below 500.
func waitServing(ctx context.Context, url string, proc *procutil.Proc) error {
	client := &http.Client{Timeout: 5 * time.Second}
	var last string
	var firstAnswer time.Time
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url+"/", nil)
		resp, err := client.Do(req)
		if err == nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
			resp.Body.Close()
			if resp.StatusCode < 500 {
				return nil
			}
			last = resp.Status + " " + string(body)
			if firstAnswer.IsZero() {
				firstAnswer = time.Now()
			} else if time.Since(firstAnswer) > 20*time.Second {
				return fmt.Errorf("GET %s/ keeps answering %s", url, last)
			}
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("GET %s/ not answering: %w (last: %s)", url, ctx.Err(), last)
		case <-proc.Exited():
			return fmt.Errorf("exited before serving: %v", proc.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// envList returns os.Environ() without the balancer's own variables
// (UPSTREAM_CONFIG, ADMIN_*, METRICS_TOKEN, EVMLB_*: internal/config's
// Environment, which e2e may not import; a test's configuration must not come
// from the shell that runs it), with vars added.
func envList(vars map[string]string) []string {
	var out []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if _, ok := vars[k]; ok || k == "UPSTREAM_CONFIG" || k == "METRICS_TOKEN" || strings.HasPrefix(k, "ADMIN_") || strings.HasPrefix(k, "EVMLB_") {
			continue
		}
		out = append(out, kv)
	}
	keys := make([]string, 0, len(vars))
	for k := range vars {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		out = append(out, k+"="+vars[k])
	}
	return out
}

// ErrUnavailable wraps the reason a host cannot run here.
var ErrUnavailable = errors.New("host unavailable")

// Pid is the process id of the host's main process (for the wazero host, the
// host itself; for workerd, wrangler), 0 when there is none.
func (i *Instance) Pid() int {
	if i.proc == nil || i.proc.Cmd == nil || i.proc.Cmd.Process == nil {
		return 0
	}
	return i.proc.Cmd.Process.Pid
}
