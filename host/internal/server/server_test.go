package server

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/evmlb/evmlb/host/internal/testprog"
	"github.com/evmlb/evmlb/internal/contract"
)

var (
	probe    string // the probe program's wasm
	cacheDir string // a compilation cache shared by the tests, so each start does not recompile
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "evmlb-host-cache-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	cacheDir = dir
	if probe, err = testprog.Build("probe"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// syncBuffer is a log that tests can read while the host writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// testHost is a host serving the probe. When the test ends it must have seen exactly the protocol violations
// the test expected (none unless it said otherwise).
type testHost struct {
	*Server
	t          testing.TB
	log        *syncBuffer
	violations int64
}

// newHost starts a host for the probe; opts' zero fields get test defaults (own state, shared cache).
func newHost(t testing.TB, opts Options) *testHost {
	t.Helper()
	h := &testHost{t: t, log: &syncBuffer{}}
	if opts.WasmPath == "" {
		opts.WasmPath = probe
	}
	if opts.StateDir == "" {
		opts.StateDir = t.TempDir()
	}
	if opts.CacheDir == "" {
		opts.CacheDir = cacheDir
	}
	if opts.Log == nil {
		opts.Log = h.log
	}
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	h.Server = s
	t.Cleanup(func() { s.Close() })
	t.Cleanup(func() { // runs first
		if got := s.Stats().Violations; got != h.violations {
			t.Errorf("%d protocol violations, want %d; log:\n%s", got, h.violations, h.log)
		}
	})
	return h
}

// expectViolation waits until the host has counted one more violation and logged what.
func (h *testHost) expectViolation(what string) {
	h.t.Helper()
	h.violations++
	deadline := time.Now().Add(5 * time.Second)
	for h.Stats().Violations < h.violations && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if got := h.Stats().Violations; got != h.violations {
		h.t.Fatalf("%d violations, want %d; log:\n%s", got, h.violations, h.log)
	}
	if !strings.Contains(h.log.String(), "evmlb host: protocol violation: "+what) {
		h.t.Fatalf("log lacks the violation %q:\n%s", what, h.log)
	}
}

// settled waits until no call is in flight (a call may go on briefly after its answer) and returns the stats.
func (h *testHost) settled() Stats {
	h.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		st := h.Stats()
		if st.Calls == 0 {
			return st
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("calls still in flight: %+v", st)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// do runs one request through the handler in process.
func (h *testHost) do(method, target string, body io.Reader, hdr ...string) (int, string) {
	h.t.Helper()
	req := httptest.NewRequest(method, target, body)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	h.Handler().ServeHTTP(rec, req)
	return rec.Code, rec.Body.String()
}

func (h *testHost) ok(target string) string {
	h.t.Helper()
	code, body := h.do("GET", target, nil)
	if code != 200 {
		h.t.Fatalf("GET %s: %d %s", target, code, body)
	}
	return body
}

func TestValueRoundTrips(t *testing.T) {
	h := newHost(t, Options{})
	if got := h.ok("/roundtrip"); got != "ok" {
		t.Fatal(got)
	}
}

func TestCallbacksReenterGo(t *testing.T) {
	newHost(t, Options{}).ok("/reenter")
}

func TestPromiseOrderInGo(t *testing.T) {
	newHost(t, Options{}).ok("/order")
}

// TestTimers runs Go's own timers and sleep operations, concurrently.
func TestTimers(t *testing.T) {
	h := newHost(t, Options{})
	start := time.Now()
	var wg sync.WaitGroup
	for i := range 20 {
		path := "/sleep?ms=200"
		if i%2 == 1 {
			path = "/sleep-op?ms=200"
		}
		wg.Go(func() {
			code, got := h.do("GET", path, nil)
			if code != 200 || len(got) < 3 || got < "200" {
				t.Errorf("%s: %d %q, want ≥ 200 ms", path, code, got)
			}
		})
	}
	wg.Wait()
	if d := time.Since(start); d < 200*time.Millisecond || d > 5*time.Second {
		t.Fatalf("20 concurrent 200 ms sleeps took %v", d)
	}
	if got := h.ok("/sleep-abort"); got != "error=aborted" {
		t.Fatal(got)
	}
	h.settled()
}

func TestEchoLargeBody(t *testing.T) {
	h := newHost(t, Options{})
	in := strings.Repeat("0123456789abcdef", 1<<16) // 1 MiB, the probe's maxBodyBytes
	code, out := h.do("POST", "/echo", strings.NewReader(in))
	if code != 200 || out != in {
		t.Fatalf("echo: %d, %d bytes back", code, len(out))
	}
}

// TestRequestFields checks the begin call of a client request: method, url, lower-case sorted headers with
// host, the body, and a role that comes from the host, never the client.
func TestRequestFields(t *testing.T) {
	h := newHost(t, Options{})
	_, got := h.do("POST", "/request?x=1", strings.NewReader("hello"), "X-Custom", "a", "X-Evmlb-Role", "chain")
	want := "method=POST url=http://example.com/request?x=1 body=5 null=false tooLarge=false " +
		"headers=x-custom=a;x-evmlb-role=chain" // only binding.requestHeaders
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	if _, got := h.do("GET", "/request", nil); !strings.Contains(got, " body=0 null=true tooLarge=false") {
		t.Fatal(got)
	}
	_, got = h.do("GET", "/whoami", nil, contract.HeaderRole, "chain", contract.HeaderObject, "x", contract.HeaderInstance, "y")
	if !strings.HasPrefix(got, `role=worker object="" instance="" runtime=`) {
		t.Fatal(got)
	}
}

// countingReader counts what the host read of a client body.
type countingReader struct {
	mu sync.Mutex
	n  int
	r  io.Reader
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.mu.Lock()
	c.n += n
	c.mu.Unlock()
	return n, err
}

func TestBodyTooLarge(t *testing.T) {
	h := newHost(t, Options{Env: map[string]string{"PROBE_MAX_BODY": "100"}})
	if _, got := h.do("POST", "/request", strings.NewReader(strings.Repeat("x", 100))); !strings.Contains(got, "body=100 null=false tooLarge=false") {
		t.Fatal(got)
	}
	if _, got := h.do("POST", "/request", strings.NewReader(strings.Repeat("x", 101))); !strings.Contains(got, "body=0 null=true tooLarge=true") {
		t.Fatal(got)
	}
	// Of a body of unknown length the host reads no more than maxBodyBytes+1 bytes.
	cr := &countingReader{r: io.MultiReader(strings.NewReader(strings.Repeat("y", 10<<20)))}
	if _, got := h.do("POST", "/request", cr); !strings.Contains(got, "body=0 null=true tooLarge=true") {
		t.Fatal(got)
	}
	if cr.n > 101+4096 { // at most one read's worth past the limit
		t.Fatalf("the host read %d bytes of a body limited to 100", cr.n)
	}
}

func TestPanicRecoveredKeepsRuntime(t *testing.T) {
	h := newHost(t, Options{WorkerRuntimes: 1})
	code, body := h.do("GET", "/panic-recovered", nil)
	if code != 500 || !strings.Contains(body, "recovered") {
		t.Fatalf("%d %s", code, body)
	}
	h.ok("/roundtrip")
	if st := h.Stats(); st.Starts != 2 { // the worker and the objects runtime
		t.Fatalf("a runtime restarted: %+v", st)
	}
}

func TestPanicKillsRuntimeThenRestarts(t *testing.T) {
	h := newHost(t, Options{WorkerRuntimes: 2})
	before := h.ok("/runtime")
	code, body := h.do("GET", "/panic", nil)
	if code != 500 || body != contract.InternalErrorBody {
		t.Fatalf("%d %s", code, body)
	}
	if !strings.Contains(h.log.String(), "probe: unrecovered panic") {
		t.Fatalf("log lacks Go's panic:\n%s", h.log)
	}
	for range 4 {
		h.ok("/roundtrip")
	}
	st := h.Stats()
	if st.Starts != 4 || st.Runtimes[2].Starts != 1 || st.Runtimes[0].Starts+st.Runtimes[1].Starts != 3 {
		t.Fatalf("only the crashed worker runtime restarts: %+v", st.Runtimes)
	}
	_ = before
}

func TestMissingWasm(t *testing.T) {
	_, err := New(Options{WasmPath: "build/nope.wasm", StateDir: t.TempDir()})
	if err == nil || err.Error() != "build/nope.wasm not found: run `make build`" {
		t.Fatal(err)
	}
}

func TestContractVersionChecked(t *testing.T) {
	_, err := New(Options{WasmPath: probe, StateDir: t.TempDir(), CacheDir: cacheDir, Env: map[string]string{"PROBE_VERSION": "2"}, Log: io.Discard})
	if !errors.Is(err, ErrContractVersion) || !strings.Contains(err.Error(), "implements host contract 2, this host 7") {
		t.Fatal(err)
	}
	if strings.Contains(err.Error(), "\n") {
		t.Fatalf("not one line: %q", err)
	}
}

func TestEnvironment(t *testing.T) {
	dir := t.TempDir()
	path := dir + "/.dev.vars"
	os.WriteFile(path, []byte("# comment\nUPSTREAM_CONFIG='[1]'\nADMIN_PASSWORD=\"p w\"\nOTHER=x\n"), 0o600)
	env, err := LoadEnvFile(path)
	if err != nil {
		t.Fatal(err)
	}
	OverrideFromEnviron(env, []string{"ADMIN_PASSWORD=from-env", "EVMLB_X=1", "HOME=/root", "METRICS_TOKEN=tok", "ADMIN_USER=root"})
	if env["UPSTREAM_CONFIG"] != "[1]" || env["ADMIN_PASSWORD"] != "from-env" || env["EVMLB_X"] != "1" || env["OTHER"] != "x" || env["HOME"] != "" {
		t.Fatalf("%v", env)
	}
	// Every variable of README.md's Configuration table is taken from the environment, METRICS_TOKEN included.
	if env["METRICS_TOKEN"] != "tok" || env["ADMIN_USER"] != "root" {
		t.Fatalf("METRICS_TOKEN %q, ADMIN_USER %q from the environment", env["METRICS_TOKEN"], env["ADMIN_USER"])
	}
	os.WriteFile(path, []byte("NOT A PAIR\n"), 0o600)
	if _, err := LoadEnvFile(path); err == nil || strings.Contains(err.Error(), "NOT") {
		t.Fatalf("bad line: %v", err)
	}
	if env, err := LoadEnvFile(dir + "/missing"); err != nil || len(env) != 0 {
		t.Fatal(env, err)
	}
}

var _ = http.StatusOK
