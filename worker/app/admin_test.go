package app

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/evmlb/evmlb/internal/adminapi"
	"github.com/evmlb/evmlb/internal/evmtest"
	"github.com/evmlb/evmlb/internal/jsonrpc"
	"github.com/evmlb/evmlb/internal/platform/memplatform"
)

func TestAdminAuth(t *testing.T) {
	n := evmtest.NewNode(t, "a", 1, 100)
	h := newHarness(t, map[string]string{"ADMIN_USER": "root"}, upstream{"eth", "a", n.URL})
	for _, tc := range []struct {
		name       string
		user, pass string
		set        bool
		want       int
	}{
		{"none", "", "", false, http.StatusUnauthorized},
		{"wrong password", "root", password + "x", true, http.StatusUnauthorized},
		{"wrong user", "admin", password, true, http.StatusUnauthorized},
		{"empty", "", "", true, http.StatusUnauthorized},
		{"right", "root", password, true, http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, path := range []string{"/admin/chains", "/admin/upstreams", "/admin/stats"} {
				r := httptest.NewRequest(http.MethodGet, path, nil)
				if tc.set {
					r.SetBasicAuth(tc.user, tc.pass)
				}
				rec := httptest.NewRecorder()
				h.host.ServeHTTP(rec, r)
				h.bodies = append(h.bodies, rec.Body.String())
				if rec.Code != tc.want {
					t.Errorf("%s: status %d, want %d", path, rec.Code, tc.want)
				}
				if tc.want == http.StatusUnauthorized {
					if got := rec.Header().Get("WWW-Authenticate"); got != `Basic realm="evmlb"` {
						t.Errorf("%s: WWW-Authenticate %q", path, got)
					}
					if errorCode(t, rec.Body.String()) != jsonrpc.ErrUnauthorized.Code {
						t.Errorf("%s: body %s", path, rec.Body)
					}
				}
			}
		})
	}
}

func TestAdminDisabledWithoutPassword(t *testing.T) {
	n := evmtest.NewNode(t, "a", 1, 100)
	h := newHarness(t, map[string]string{"ADMIN_PASSWORD": ""}, upstream{"eth", "a", n.URL})
	status, _, body := h.do(http.MethodGet, "/admin/chains", "", true)
	if status != http.StatusServiceUnavailable || errorCode(t, body) != jsonrpc.ErrAdminDisabled.Code {
		t.Errorf("got %d %s", status, body)
	}
}

func TestAdminRoutes(t *testing.T) {
	n := evmtest.NewNode(t, "a", 1, 100)
	h := newHarness(t, nil, upstream{"eth", "a", n.URL})
	for _, tc := range []struct {
		method, path string
		want         int
		allow        string
	}{
		{http.MethodGet, "/admin/init_upstreams", http.StatusMethodNotAllowed, "POST"},
		{http.MethodGet, "/admin/clear_storage", http.StatusMethodNotAllowed, "POST, DELETE"},
		{http.MethodPost, "/admin/chains", http.StatusMethodNotAllowed, "GET"},
		{http.MethodGet, "/admin/nope", http.StatusNotFound, ""},
		{http.MethodGet, "/admin", http.StatusOK, ""}, // the dashboard
		{http.MethodPost, "/admin", http.StatusMethodNotAllowed, "GET, HEAD"},
		{http.MethodPost, "/admin/metrics", http.StatusMethodNotAllowed, "GET, HEAD"},
		{http.MethodDelete, "/admin/clear_storage", http.StatusOK, ""},
	} {
		status, hdr, body := h.do(tc.method, tc.path, "", true)
		if status != tc.want || hdr.Get("Allow") != tc.allow {
			t.Errorf("%s %s: %d Allow %q (%s)", tc.method, tc.path, status, hdr.Get("Allow"), body)
		}
	}
}

func TestInitUpstreamsDropsRemoved(t *testing.T) {
	a := evmtest.NewNode(t, "a", 1, 100)
	b := evmtest.NewNode(t, "b", 1, 105) // higher, within max lag: served first
	h := newHarness(t, nil, upstream{"eth", "a", a.URL}, upstream{"eth", "b", b.URL})
	var res struct{ Chains []adminapi.ChainSync }
	h.admin(http.MethodPost, "/admin/init_upstreams", &res)
	if c := res.Chains[0]; strings.Join(c.Upstreams, ",") != "a,b" || len(c.Removed) != 0 || c.Error != "" {
		t.Fatalf("first init %+v", c)
	}
	h.checks(0)
	if _, got := h.post("eth", rpcBody); servedBy(t, got) != "b" {
		t.Fatalf("served by %s", servedBy(t, got))
	}
	bStore := h.host.Storage("upstream", "eth/b")
	if len(bStore.Keys()) == 0 {
		t.Fatal("b stored nothing")
	}

	// Deploy a configuration without b: a new runtime with a new environment, same storage.
	env := map[string]string{"UPSTREAM_CONFIG": configJSON(upstream{"eth", "a", a.URL}), "ADMIN_PASSWORD": password}
	h2 := &harness{t: t, host: h.host}
	restartWith(h2, env)
	h2.admin(http.MethodPost, "/admin/init_upstreams", &res)
	if c := res.Chains[0]; strings.Join(c.Upstreams, ",") != "a" || strings.Join(c.Removed, ",") != "b" {
		t.Fatalf("second init %+v", c)
	}
	if keys := bStore.Keys(); len(keys) != 0 {
		t.Errorf("b's storage kept %v", keys)
	}
	if _, set, _ := bStore.GetAlarm(t.Context()); set {
		t.Error("b's alarm kept")
	}
	if _, got := h2.post("eth", rpcBody); servedBy(t, got) != "a" {
		t.Errorf("served by %s", servedBy(t, got))
	}
	var chains struct{ Chains []adminapi.ChainSummary }
	h2.admin(http.MethodGet, "/admin/chains", &chains)
	if c := chains.Chains[0]; c.Upstreams != 1 {
		t.Errorf("chain %+v", c)
	}
}

// restartWith starts a new runtime (a new App) whose environment is env, on the same host: storage and
// alarms are kept, as after a deployment.
func restartWith(h *harness, env map[string]string) {
	p := h.host.Platform()
	p.Getenv = func(k string) string { return env[k] }
	h.app = New(p)
	h.host.Bind(h.app)
}

func TestUnconfiguredUpstreamClearsItself(t *testing.T) {
	a := evmtest.NewNode(t, "a", 1, 100)
	b := evmtest.NewNode(t, "b", 1, 200)
	h := newHarness(t, nil, upstream{"eth", "a", a.URL}, upstream{"eth", "b", b.URL})
	h.post("eth", rpcBody)
	h.checks(0)
	restartWith(h, map[string]string{"UPSTREAM_CONFIG": configJSON(upstream{"eth", "a", a.URL})})
	before := b.Calls()
	h.checks(5 * time.Second)
	st := h.host.Storage("upstream", "eth/b")
	if _, set, _ := st.GetAlarm(t.Context()); set || len(st.Keys()) != 0 || b.Calls() != before {
		t.Errorf("b still scheduled or stored (%v) or checked", st.Keys())
	}
	if _, set, _ := h.host.Storage("upstream", "eth/a").GetAlarm(t.Context()); !set {
		t.Error("a stopped")
	}
}

func TestClearStorage(t *testing.T) {
	for _, method := range []string{http.MethodPost, http.MethodDelete} {
		t.Run(method, func(t *testing.T) {
			a := evmtest.NewNode(t, "a", 1, 100)
			p := evmtest.NewNode(t, "p", 137, 100)
			h := newHarness(t, nil, upstream{"eth", "a", a.URL}, upstream{"polygon", "p", p.URL})
			h.post("eth", rpcBody)
			h.post("polygon", rpcBody)
			h.checks(0)
			var res map[string]any
			h.admin(method, "/admin/clear_storage", &res)
			if res["cleared_chains"] != 2.0 || res["cleared_upstreams"] != 2.0 || res["errors"] != nil {
				t.Errorf("answer %v", res)
			}
			for _, o := range []struct{ role, name string }{{"chain", "eth"}, {"chain", "polygon"}, {"upstream", "eth/a"}, {"upstream", "polygon/p"}} {
				st := h.host.Storage(o.role, o.name)
				if _, set, _ := st.GetAlarm(t.Context()); set || len(st.Keys()) != 0 {
					t.Errorf("%s %s: alarm %v, keys %v", o.role, o.name, set, st.Keys())
				}
			}
			var stats struct{ Upstreams []adminapi.StatsEntry }
			h.admin(http.MethodGet, "/admin/stats", &stats)
			if m := stats.Upstreams[0].Methods; len(m) != 0 {
				t.Errorf("stats after clear %v", m)
			}
			// Serving goes on: the chain object starts the checks again.
			if status, got := h.post("eth", rpcBody); status != http.StatusOK || servedBy(t, got) != "a" {
				t.Errorf("after clear: %d %s", status, got)
			}
			if _, set, _ := h.host.Storage("upstream", "eth/a").GetAlarm(t.Context()); !set {
				t.Error("checks not restarted")
			}
		})
	}
}

var _ memplatform.Handler = (*App)(nil)

// Admin writes take only requests a browser cannot send cross-origin without a preflight: a form posted from
// another site, with the browser's stored credentials, is refused and changes nothing.
func TestAdminWritesNeedNonSimpleRequest(t *testing.T) {
	n := evmtest.NewNode(t, "a", 1, 100)
	h := newHarness(t, nil, upstream{"eth", "a", n.URL})
	h.post("eth", rpcBody)
	h.checks(0)
	stored := func() int { return len(h.host.Storage("upstream", "eth/a").Keys()) }
	if stored() == 0 {
		t.Fatal("nothing stored")
	}
	send := func(method, path string, hdr map[string]string) (int, string) {
		r := httptest.NewRequest(method, path, strings.NewReader("x=1"))
		r.SetBasicAuth("admin", password)
		for k, v := range hdr {
			r.Header.Set(k, v)
		}
		rec := httptest.NewRecorder()
		h.host.ServeHTTP(rec, r)
		h.bodies = append(h.bodies, rec.Body.String())
		return rec.Code, rec.Body.String()
	}
	for _, ep := range []struct{ method, path string }{
		{http.MethodPost, "/admin/clear_storage"},
		{http.MethodDelete, "/admin/clear_storage"},
		{http.MethodPost, "/admin/init_upstreams"},
	} {
		for _, hdr := range []map[string]string{
			{"Content-Type": "application/x-www-form-urlencoded", "Origin": "https://evil.example"},
			{"Content-Type": "multipart/form-data; boundary=x", "Origin": "https://evil.example"},
			{"Content-Type": "text/plain", "Origin": "https://evil.example"},
			{"Content-Type": "application/jsonx"},
			{},
		} {
			status, body := send(ep.method, ep.path, hdr)
			if status != http.StatusUnsupportedMediaType || errorCode(t, body) != jsonrpc.ErrAdminSimple.Code {
				t.Errorf("%s %s with %v: %d %s", ep.method, ep.path, hdr, status, body)
			}
			if stored() == 0 {
				t.Fatalf("%s %s with %v cleared the storage", ep.method, ep.path, hdr)
			}
		}
	}
	// GETs change nothing and need neither.
	if status, body := send(http.MethodGet, "/admin/chains", nil); status != http.StatusOK {
		t.Errorf("GET /admin/chains: %d %s", status, body)
	}
	// Without credentials it is still 401 first.
	r := httptest.NewRequest(http.MethodPost, "/admin/clear_storage", nil)
	rec := httptest.NewRecorder()
	h.host.ServeHTTP(rec, r)
	if rec.Code != http.StatusUnauthorized {
		t.Errorf("no credentials: %d", rec.Code)
	}
	for _, hdr := range []map[string]string{
		{"Content-Type": "application/json; charset=utf-8"},
		{"X-Evmlb-Admin": "1"},
		{"X-Evmlb-Admin": "1", "Content-Type": "application/x-www-form-urlencoded"},
	} {
		if status, body := send(http.MethodPost, "/admin/clear_storage", hdr); status != http.StatusOK {
			t.Errorf("with %v: %d %s", hdr, status, body)
		}
	}
	if stored() != 0 {
		t.Error("the allowed clear_storage cleared nothing")
	}
}
