package app

import (
	"context"
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/evmlb/evmlb/internal/evmtest"
	"github.com/evmlb/evmlb/internal/platform/memplatform"
)

const password = "pw-Adm1n-s3cr3t"

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// harness runs the balancer on an in-memory host.
type harness struct {
	t    *testing.T
	host *memplatform.Host
	app  *App
	// bodies holds every body the balancer answered, checked for secrets at the end of each test.
	bodies []string
	// secrets are more texts no body or log line may hold (client keys and their hashes).
	secrets []string
}

// upstream is one UPSTREAM_CONFIG entry.
type upstream struct{ chain, name, url string }

func configJSON(ups ...upstream) string { return configWith(`"cache": false`, ups...) }

// configWith is UPSTREAM_CONFIG's object form for ups, each chain with the settings chainJSON (the fields of a
// "chains" entry). configJSON turns the answer cache off: the tests of routing send one read again and again on a
// clock that does not move, and each must reach an upstream; the cache's own tests use configCached.
func configWith(chainJSON string, ups ...upstream) string {
	var b strings.Builder
	b.WriteString(`{"chains":{`)
	seen := map[string]bool{}
	for _, u := range ups {
		if seen[u.chain] {
			continue
		}
		if len(seen) > 0 {
			b.WriteString(",")
		}
		seen[u.chain] = true
		c, _ := json.Marshal(u.chain)
		b.Write(c)
		b.WriteString(":{" + chainJSON + "}")
	}
	b.WriteString(`},"upstreams":` + upstreamsJSON(ups...) + "}")
	return b.String()
}

// upstreamsJSON is the array form of UPSTREAM_CONFIG for ups.
func upstreamsJSON(ups ...upstream) string {
	var b strings.Builder
	b.WriteString("[")
	for i, u := range ups {
		if i > 0 {
			b.WriteString(",")
		}
		e, _ := json.Marshal(map[string]string{"chain": u.chain, "name": u.name, "upstream": u.url})
		b.Write(e)
	}
	b.WriteString("]")
	return b.String()
}

// configCached is UPSTREAM_CONFIG for ups with every chain's settings at their defaults (the cache on).
func configCached(ups ...upstream) string { return configWith("", ups...) }

// newHarness starts a balancer with the upstreams and extra environment; the attempt timeout is 300 ms.
func newHarness(t *testing.T, env map[string]string, ups ...upstream) *harness {
	full := map[string]string{
		"UPSTREAM_CONFIG":       configJSON(ups...),
		"ADMIN_PASSWORD":        password,
		"EVMLB_ATTEMPT_TIMEOUT": "300ms",
	}
	maps.Copy(full, env)
	return startHarness(t, full)
}

// startHarness starts a balancer with exactly the environment env.
func startHarness(t *testing.T, env map[string]string) *harness {
	h := &harness{t: t, host: memplatform.New(env, nil, t0)}
	h.restartApp()
	t.Cleanup(h.checkNoSecrets)
	return h
}

// restartApp starts a new Go runtime: a new App with empty memory on the same host (storage kept).
func (h *harness) restartApp() {
	h.app = New(h.host.Platform())
	h.host.Bind(h.app)
}

func (h *harness) do(method, path, body string, withAuth bool) (int, http.Header, string) {
	h.t.Helper()
	return h.doWith(method, path, body, func(r *http.Request) {
		if withAuth {
			r.SetBasicAuth("admin", password)
		}
	})
}

// doWith sends a request that edit may change before it goes.
func (h *harness) doWith(method, path, body string, edit func(*http.Request)) (int, http.Header, string) {
	h.t.Helper()
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	edit(r)
	rec := httptest.NewRecorder()
	h.host.ServeHTTP(rec, r)
	res := rec.Result()
	b, _ := io.ReadAll(res.Body)
	h.bodies = append(h.bodies, string(b))
	return res.StatusCode, res.Header, string(b)
}

// post sends a JSON-RPC body to /{chain}.
func (h *harness) post(chain, body string) (int, string) {
	h.t.Helper()
	status, hdr, b := h.do(http.MethodPost, "/"+chain, body, false)
	if ct := hdr.Get("Content-Type"); ct != "application/json" {
		h.t.Errorf("Content-Type %q", ct)
	}
	return status, b
}

// admin calls an admin endpoint with the right credentials and decodes the JSON answer into out.
func (h *harness) admin(method, path string, out any) {
	h.t.Helper()
	status, _, b := h.do(method, path, "", true)
	if status != http.StatusOK {
		h.t.Fatalf("%s %s: %d %s", method, path, status, b)
	}
	if out != nil {
		if err := json.Unmarshal([]byte(b), out); err != nil {
			h.t.Fatalf("%s %s: %v in %s", method, path, err, b)
		}
	}
}

// checks runs the due health checks, then advances the clock by d, running the checks that come due.
// Time passing is also the Worker's data plane exchanging with the chain objects, as it does every snapshot TTL:
// before (what it saw reaches them) and after (the checks' results reach it).
func (h *harness) checks(d time.Duration) {
	h.app.plane.Flush(context.Background())
	h.host.Clock().Advance(d)
	h.app.plane.Flush(context.Background())
}

// checkNoSecrets fails the test when an answered body or a log line holds the admin password or a secret part of
// an upstream URL.
func (h *harness) checkNoSecrets() {
	lines := append(append([]string(nil), h.bodies...), h.host.Logs()...)
	for _, l := range lines {
		for _, s := range append([]string{password, evmtest.Secret, "/v3/", "user:"}, h.secrets...) {
			if strings.Contains(l, s) {
				h.t.Errorf("%q leaks %q", l, s)
			}
		}
	}
}

const rpcBody = `{"jsonrpc":"2.0","id":1,"method":"eth_call","params":[{"to":"0x0"},"latest"]}`

// directly sends body to the node itself, for comparison.
func directly(t *testing.T, n *evmtest.Node, body string) string {
	t.Helper()
	resp, err := http.Post(n.URL, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// servedBy is the node name in an echo answer.
func servedBy(t *testing.T, body string) string {
	t.Helper()
	var a struct {
		Result struct{ Node string } `json:"result"`
	}
	if err := json.Unmarshal([]byte(body), &a); err != nil {
		t.Fatalf("%v in %s", err, body)
	}
	return a.Result.Node
}

// errorCode is the JSON-RPC error code of a single error answer.
func errorCode(t *testing.T, body string) int {
	t.Helper()
	var a struct {
		Error struct{ Code int } `json:"error"`
	}
	if err := json.Unmarshal([]byte(body), &a); err != nil {
		t.Fatalf("%v in %s", err, body)
	}
	return a.Error.Code
}

// postTimingOut is post for a request that node may hold (a hang) until its attempt times out, on the host's
// fake clock: if node gets the request, the clock is advanced by d (past the attempt timeout). The background
// work the request started is waited for, as the outcomes it reports are.
func (h *harness) postTimingOut(chain, body string, node *evmtest.Node, d time.Duration) (int, string) {
	h.t.Helper()
	before := node.Calls()
	type answer struct {
		status int
		body   string
	}
	done := make(chan answer, 1)
	go func() { // not h.do: the harness records bodies without a lock
		rec := httptest.NewRecorder()
		r := httptest.NewRequest(http.MethodPost, "/"+chain, strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		h.host.ServeHTTP(rec, r)
		done <- answer{rec.Code, rec.Body.String()}
	}()
	deadline := time.Now().Add(10 * time.Second)
	// Once the node got a call, the clock moves by d, and again every 20 ms of real time until the answer: more
	// than the attempt waits on it. The first exchange's health checks reach the node too, and wait on fake
	// timers (the hang's check timeout, the grace after the first report) that may be set only after an advance
	// made for the first call has passed: a single advance left the request waiting for ever, about once in six
	// runs under -race on a loaded machine.
	var last time.Time
	for {
		select {
		case a := <-done:
			h.host.Wait()
			return a.status, a.body
		default:
		}
		if node.Calls() != before && time.Since(last) >= 20*time.Millisecond {
			h.host.Clock().Advance(d)
			last = time.Now()
		}
		if time.Now().After(deadline) {
			h.t.Fatal("no answer after 10 s")
		}
		time.Sleep(time.Millisecond)
	}
}
