package server

import (
	"bytes"
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
	programs = map[string]string{}
	cacheDir string // a compilation cache shared by the tests, so each start does not recompile
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "evmlb-host-cache-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	cacheDir = dir
	for _, name := range []string{"probe", "workers"} {
		p, err := testprog.Build(name)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		programs[name] = p
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

// newServer starts a host for a test program with its own state directory.
func newServer(t testing.TB, program, stateDir string, env map[string]string) (*Server, *syncBuffer) {
	t.Helper()
	log := &syncBuffer{}
	if stateDir == "" {
		stateDir = t.TempDir()
	}
	s, err := New(Options{WasmPath: programs[program], StateDir: stateDir, CacheDir: cacheDir, Env: env, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, log
}

// get runs one request through the handler in process.
func do(t testing.TB, s *Server, method, target string, body io.Reader, hdr ...string) (int, string) {
	t.Helper()
	req := httptest.NewRequest(method, target, body)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, req)
	return rec.Code, rec.Body.String()
}

func expectOK(t testing.TB, s *Server, target string) string {
	t.Helper()
	code, body := do(t, s, "GET", target, nil)
	if code != 200 {
		t.Fatalf("GET %s: %d %s", target, code, body)
	}
	return body
}

func TestValueRoundTrips(t *testing.T) {
	s, _ := newServer(t, "probe", "", nil)
	if got := expectOK(t, s, "/roundtrip"); got != "ok" {
		t.Fatal(got)
	}
}

func TestCallbacksReenterGo(t *testing.T) {
	s, _ := newServer(t, "probe", "", nil)
	expectOK(t, s, "/reenter")
}

func TestPromiseOrderInGo(t *testing.T) {
	s, _ := newServer(t, "probe", "", nil)
	expectOK(t, s, "/order")
}

func TestTimers(t *testing.T) {
	s, _ := newServer(t, "probe", "", nil)
	start := time.Now()
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if got := expectOK(t, s, "/sleep?ms=200"); got < "200" && len(got) <= 3 {
				t.Errorf("slept %s ms, want ≥ 200", got)
			}
		}()
	}
	wg.Wait()
	if d := time.Since(start); d < 200*time.Millisecond || d > 5*time.Second {
		t.Fatalf("20 concurrent 200 ms sleeps took %v", d)
	}
}

func TestEchoLargeBody(t *testing.T) {
	s, _ := newServer(t, "probe", "", nil)
	in := strings.Repeat("0123456789abcdef", 1<<16) // 1 MiB, many chunks
	code, out := do(t, s, "POST", "/echo", strings.NewReader(in))
	if code != 200 || out != in {
		t.Fatalf("echo: %d, %d bytes back", code, len(out))
	}
}

func TestRoleHeadersOverwritten(t *testing.T) {
	s, _ := newServer(t, "probe", "", nil)
	_, got := do(t, s, "GET", "/headers", nil, contract.HeaderRole, "chain", contract.HeaderObject, "x", contract.HeaderInstance, "y")
	if got != "role=worker object=<null> instance=<null>" {
		t.Fatal(got)
	}
}

func TestResponseStreams(t *testing.T) {
	s, _ := newServer(t, "probe", "", nil)
	ts := httptest.NewServer(s.Handler())
	defer ts.Close()
	start := time.Now()
	res, err := http.Get(ts.URL + "/stream?n=5&delay=150")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	buf := make([]byte, 64)
	n, _ := res.Body.Read(buf)
	first := time.Since(start)
	rest, _ := io.ReadAll(res.Body)
	total := time.Since(start)
	if got := string(buf[:n]) + string(rest); got != "chunk-0\nchunk-1\nchunk-2\nchunk-3\nchunk-4\n" {
		t.Fatalf("body %q", got)
	}
	if first > total/2 {
		t.Fatalf("first chunk after %v of %v: the body was buffered, not streamed", first, total)
	}
}

func TestPanicRecoveredKeepsRuntime(t *testing.T) {
	s, _ := newServer(t, "probe", "", nil)
	code, body := do(t, s, "GET", "/panic-recovered", nil)
	if code != 500 || !strings.Contains(body, "recovered") {
		t.Fatalf("%d %s", code, body)
	}
	expectOK(t, s, "/roundtrip")
	if st := s.Stats(); st.Starts != 1 {
		t.Fatalf("runtime restarted: %+v", st)
	}
}

func TestPanicKillsRuntimeThenRestarts(t *testing.T) {
	s, log := newServer(t, "probe", "", nil)
	code, body := do(t, s, "GET", "/panic", nil)
	if code != 500 || body != contract.InternalErrorBody {
		t.Fatalf("%d %s", code, body)
	}
	expectOK(t, s, "/roundtrip")
	if st := s.Stats(); st.Starts != 2 {
		t.Fatalf("starts %d, want 2", st.Starts)
	}
	if !strings.Contains(log.String(), "probe: unrecovered panic") {
		t.Fatalf("log lacks Go's panic:\n%s", log)
	}
}

func TestRejectionIs500(t *testing.T) {
	s, log := newServer(t, "probe", "", nil)
	code, body := do(t, s, "POST", "/reject", strings.NewReader("secret body"))
	if code != 500 || body != contract.InternalErrorBody {
		t.Fatalf("%d %s", code, body)
	}
	if l := log.String(); !strings.Contains(l, "rejected on purpose") || strings.Contains(l, "secret body") {
		t.Fatalf("log: %s", l)
	}
}

func TestFetchStreamsBody(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for i := range 3 {
			fmt.Fprintf(w, "part%d;", i)
			w.(http.Flusher).Flush()
			time.Sleep(50 * time.Millisecond)
		}
	}))
	defer up.Close()
	s, _ := newServer(t, "probe", "", nil)
	got := expectOK(t, s, "/fetch?url="+up.URL)
	if !strings.HasPrefix(got, "status=200 chunks=") || !strings.HasSuffix(got, "body=part0;part1;part2;") || strings.HasPrefix(got, "status=200 chunks=1 ") {
		t.Fatal(got)
	}
}

func TestFetchAbortCancelsRequest(t *testing.T) {
	canceled := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
		close(canceled)
	}))
	defer up.Close()
	s, _ := newServer(t, "probe", "", nil)
	if got := expectOK(t, s, "/fetch-abort?url="+up.URL); !strings.HasPrefix(got, "aborted: ") {
		t.Fatal(got)
	}
	select {
	case <-canceled:
	case <-time.After(5 * time.Second):
		t.Fatal("the upstream request was not canceled")
	}
}

func TestMissingWasm(t *testing.T) {
	_, err := New(Options{WasmPath: "build/nope.wasm", StateDir: t.TempDir()})
	if err == nil || err.Error() != "build/nope.wasm not found: run `make build`" {
		t.Fatal(err)
	}
}

func TestContractVersionChecked(t *testing.T) {
	_, err := New(Options{WasmPath: programs["probe"], StateDir: t.TempDir(), Env: map[string]string{"PROBE_VERSION": "99"}, Log: io.Discard})
	if err == nil || !strings.Contains(err.Error(), "implements host contract 99, this host 2") {
		t.Fatal(err)
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
	OverrideFromEnviron(env, []string{"ADMIN_PASSWORD=from-env", "EVMLB_X=1", "HOME=/root"})
	if env["UPSTREAM_CONFIG"] != "[1]" || env["ADMIN_PASSWORD"] != "from-env" || env["EVMLB_X"] != "1" || env["OTHER"] != "x" || env["HOME"] != "" {
		t.Fatalf("%v", env)
	}
	os.WriteFile(path, []byte("NOT A PAIR\n"), 0o600)
	if _, err := LoadEnvFile(path); err == nil || strings.Contains(err.Error(), "NOT") {
		t.Fatalf("bad line: %v", err)
	}
	if env, err := LoadEnvFile(dir + "/missing"); err != nil || len(env) != 0 {
		t.Fatal(env, err)
	}
}
