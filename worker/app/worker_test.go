package app

import (
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/evmlb/evmlb/internal/evmtest"
	"github.com/evmlb/evmlb/internal/jsonrpc"
	"github.com/evmlb/evmlb/internal/platform"
)

func TestDescribe(t *testing.T) {
	n := evmtest.NewNode(t, "a", 1, 100)
	h := newHarness(t, nil, upstream{"eth", "a", n.URL}, upstream{"polygon", "b", n.URL})
	for _, method := range []string{http.MethodGet, http.MethodHead, http.MethodPost} {
		status, _, body := h.do(method, "/", "", false)
		if status != http.StatusOK {
			t.Errorf("%s /: %d", method, status)
		}
		if method == http.MethodHead {
			continue
		}
		var d Description
		if err := json.Unmarshal([]byte(body), &d); err != nil || d.Name != "evmlb" || d.Host != "memory" ||
			strings.Join(d.Chains, ",") != "eth,polygon" || d.Usage == "" || d.ConfigError != "" || d.Version == "" ||
			d.Config != "UPSTREAM_CONFIG" {
			t.Errorf("%s /: %v %s", method, err, body)
		}
	}
}

func TestHostileInput(t *testing.T) {
	n := evmtest.NewNode(t, "a", 1, 100)
	h := newHarness(t, map[string]string{"EVMLB_MAX_BODY_BYTES": "2048", "EVMLB_MAX_BATCH": "2"}, upstream{"eth", "a", n.URL})
	call := `{"jsonrpc":"2.0","id":1,"method":"m"}`
	for _, tc := range []struct {
		name, method, path, body string
		status, code             int
		allow                    string
	}{
		{"malformed JSON", "POST", "/eth", `{"jsonrpc":`, 400, -32700, ""},
		{"not an object", "POST", "/eth", `"hello"`, 400, -32600, ""},
		{"no method", "POST", "/eth", `{"jsonrpc":"2.0","id":1}`, 400, -32600, ""},
		{"wrong jsonrpc", "POST", "/eth", `{"jsonrpc":"1.0","id":1,"method":"m"}`, 400, -32600, ""},
		{"empty batch", "POST", "/eth", `[]`, 400, -32600, ""},
		{"batch over the limit", "POST", "/eth", "[" + call + "," + call + "," + call + "]", 400, -32600, ""},
		{"body over the limit", "POST", "/eth", `{"jsonrpc":"2.0","id":1,"method":"m","params":["` + strings.Repeat("a", 2100) + `"]}`, 413, -32060, ""},
		{"GET on a chain", "GET", "/eth", "", 405, -32063, "POST, OPTIONS"},
		{"unknown chain", "POST", "/bsc", call, 404, -32061, ""},
		{"GET unknown chain", "GET", "/bsc", "", 404, -32061, ""},
		{"deeper path", "POST", "/eth/x", call, 404, -32062, ""},
		{"trailing slash", "POST", "/eth/", call, 404, -32062, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, hdr, body := h.do(tc.method, tc.path, tc.body, false)
			if status != tc.status || hdr.Get("Allow") != tc.allow {
				t.Errorf("status %d Allow %q, want %d %q", status, hdr.Get("Allow"), tc.status, tc.allow)
			}
			if c := errorCode(t, body); c != tc.code {
				t.Errorf("code %d, want %d (%s)", c, tc.code, body)
			}
		})
	}
	if n.Calls() != 0 {
		t.Errorf("invalid requests reached the node %d times", n.Calls())
	}
	// The id of an invalid single request is kept in the error.
	if _, body := h.post("eth", `{"jsonrpc":"1.0","id":"keep","method":"m"}`); !strings.Contains(body, `"id":"keep"`) {
		t.Errorf("id lost: %s", body)
	}
}

func TestMalformedConfig(t *testing.T) {
	for _, tc := range []struct {
		name, config string
		env          map[string]string
		want         string
	}{
		{"not JSON", `[{"chain":"eth","upstream":"https://h/v3/` + evmtest.Secret, nil, "invalid JSON near byte"},
		{"missing field", `[{"chain":"eth","name":"a","upstream":"https://h/v3/` + evmtest.Secret + `"},{"chain":"eth","upstream":"https://h/v3/` + evmtest.Secret + `"}]`, nil, `entry 1: field \"name\" is missing`},
		{"bad URL", `[{"chain":"eth","name":"a","upstream":"ftp://h/v3/` + evmtest.Secret + `"}]`, nil, `entry 0: field \"upstream\" must be an absolute http or https URL`},
		{"bad setting", `[{"chain":"eth","name":"a","upstream":"https://h/v3/` + evmtest.Secret + `"}]`, map[string]string{"EVMLB_HEALTH_INTERVAL": "fast"}, "EVMLB_HEALTH_INTERVAL must be a duration"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := map[string]string{"UPSTREAM_CONFIG": tc.config, "ADMIN_PASSWORD": password}
			maps.Copy(env, tc.env)
			h := startHarness(t, env)
			status, _, body := h.do(http.MethodGet, "/", "", false)
			if status != http.StatusOK || !strings.Contains(body, tc.want) {
				t.Errorf("GET /: %d %s", status, body)
			}
			for _, r := range []struct {
				method, path string
				auth         bool
			}{{"POST", "/eth", false}, {"GET", "/admin/chains", true}, {"POST", "/admin/init_upstreams", true}} {
				status, _, body := h.do(r.method, r.path, rpcBody, r.auth)
				if status != http.StatusServiceUnavailable || errorCode(t, body) != jsonrpc.ErrConfig.Code || !strings.Contains(body, tc.want) {
					t.Errorf("%s %s: %d %s", r.method, r.path, status, body)
				}
			}
			if err := h.app.Alarm(context.Background(), "upstream", "0000", 0); err != nil {
				t.Errorf("alarm with a broken config: %v", err)
			}
		})
	}
}

// An unset or blank UPSTREAM_CONFIG serves the embedded default, says so once in the log and in GET /, and touches
// no network until a request comes.
func TestEmbeddedDefault(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  map[string]string
	}{
		{"unset", map[string]string{"ADMIN_PASSWORD": password}},
		{"blank", map[string]string{"UPSTREAM_CONFIG": " \n\t", "ADMIN_PASSWORD": password}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := startHarness(t, tc.env)
			status, _, body := h.do(http.MethodGet, "/", "", false)
			var d Description
			if err := json.Unmarshal([]byte(body), &d); err != nil || status != http.StatusOK ||
				strings.Join(d.Chains, ",") != "ethereum" || d.Config != "embedded default" || d.ConfigError != "" {
				t.Errorf("GET /: %d %v %s", status, err, body)
			}
			want := "UPSTREAM_CONFIG is not set: serving the embedded default (chain ethereum over public endpoints)"
			if logs := h.host.Logs(); !slices.Contains(logs, want) {
				t.Errorf("logs %q lack %q", logs, want)
			}
			// The admin API lists the default's upstreams by endpoint.
			status, _, body = h.do(http.MethodGet, "/admin/upstreams", "", true)
			if status != http.StatusOK || !strings.Contains(body, "https://ethereum-rpc.publicnode.com") || !strings.Contains(body, "https://eth.llamarpc.com") {
				t.Errorf("/admin/upstreams: %d %s", status, body)
			}
		})
	}
}

// panicky is a namespace that panics, standing in for any bug below the router.
type panicky struct{}

func (panicky) Fetch(context.Context, string, *http.Request) (*http.Response, error) { panic("boom") }

var _ platform.Namespace = panicky{}

func TestPanicRecovered(t *testing.T) {
	n := evmtest.NewNode(t, "a", 1, 100)
	h := newHarness(t, nil, upstream{"eth", "a", n.URL})
	p := h.host.Platform()
	p.Chains = panicky{}
	h.app = New(p)
	h.host.Bind(h.app)
	status, body := h.post("eth", `{"jsonrpc":"2.0","id":42,"method":"m"}`)
	if status != http.StatusInternalServerError || errorCode(t, body) != jsonrpc.ErrInternal.Code {
		t.Errorf("got %d %s", status, body)
	}
	if status, _, _ := h.do(http.MethodGet, "/", "", false); status != http.StatusOK {
		t.Errorf("after the panic GET / answers %d", status)
	}
	if logs := strings.Join(h.host.Logs(), "\n"); !strings.Contains(logs, "panic") {
		t.Errorf("panic not logged: %s", logs)
	}
}

// Dapps call the chain endpoints from pages of other origins: a preflight gets 204 with the CORS headers, and
// every answer of a chain endpoint (errors included) carries Access-Control-Allow-Origin. The admin API never.
func TestCORS(t *testing.T) {
	n := evmtest.NewNode(t, "a", 1, 100)
	cors := func(h *harness, method, path, origin string) (int, http.Header) {
		t.Helper()
		r := httptest.NewRequest(method, path, strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"eth_chainId"}`))
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("Origin", origin)
		if method == http.MethodOptions {
			r.Header.Set("Access-Control-Request-Method", "POST")
			r.Header.Set("Access-Control-Request-Headers", "content-type")
		}
		r.SetBasicAuth("admin", password)
		rec := httptest.NewRecorder()
		h.host.ServeHTTP(rec, r)
		return rec.Code, rec.Result().Header
	}
	h := newHarness(t, nil, upstream{"eth", "a", n.URL})
	if code, hdr := cors(h, http.MethodOptions, "/eth", "https://dapp.example"); code != http.StatusNoContent ||
		hdr.Get("Access-Control-Allow-Origin") != "*" || !strings.Contains(hdr.Get("Access-Control-Allow-Methods"), "POST") ||
		!strings.Contains(strings.ToLower(hdr.Get("Access-Control-Allow-Headers")), "content-type") {
		t.Errorf("preflight: %d %v", code, hdr)
	}
	for _, path := range []string{"/eth", "/nosuchchain"} {
		if _, hdr := cors(h, http.MethodPost, path, "https://dapp.example"); hdr.Get("Access-Control-Allow-Origin") != "*" {
			t.Errorf("POST %s: no Access-Control-Allow-Origin: %v", path, hdr)
		}
	}
	if code, hdr := cors(h, http.MethodGet, "/admin/stats", "https://dapp.example"); code != http.StatusOK || hdr.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("admin: %d %v", code, hdr)
	}
	// A list of origins: only those get the header (and the answer varies by Origin).
	h = newHarness(t, map[string]string{"EVMLB_CORS_ORIGINS": "https://app.example.org"}, upstream{"eth", "a", n.URL})
	if _, hdr := cors(h, http.MethodPost, "/eth", "https://app.example.org"); hdr.Get("Access-Control-Allow-Origin") != "https://app.example.org" || hdr.Get("Vary") != "Origin" {
		t.Errorf("listed origin: %v", hdr)
	}
	if _, hdr := cors(h, http.MethodPost, "/eth", "https://evil.example"); hdr.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("unlisted origin: %v", hdr)
	}
}
