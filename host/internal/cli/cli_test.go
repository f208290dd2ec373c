package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/evmlb/evmlb/internal/adminapi"
	"github.com/evmlb/evmlb/internal/evmtest"
)

const (
	adminSecret   = "adm1n-pa55-s3cr3t"
	tokenSecret   = "cf-t0ken-s3cr3t"
	metricsSecret = "m3tr1cs-s3cr3t"
)

// outputs collects everything every command printed in the package's tests, for TestNoSecretInOutput.
var outputs struct {
	sync.Mutex
	all bytes.Buffer
}

// run runs a command in dir with the given environment; it returns stdout, stderr and the exit code.
func run(t *testing.T, dir string, vars map[string]string, cfBase string, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	wd, _ := os.Getwd()
	if err := os.Chdir(dir); err != nil {
		t.Fatal(err)
	}
	defer os.Chdir(wd)
	code := Run(context.Background(), args, Env{
		Stdin: strings.NewReader(vars["STDIN"]), Stdout: &out, Stderr: &errb,
		Getenv:            func(k string) string { return vars[k] },
		CloudflareBaseURL: cfBase,
	})
	outputs.Lock()
	outputs.all.Write(out.Bytes())
	outputs.all.Write(errb.Bytes())
	outputs.Unlock()
	return out.String(), errb.String(), code
}

func write(t *testing.T, dir, name, text string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestValidateEveryProblem(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "cfg.json", `{"chains":{"eth":{"max_lag_blocks":0}},"upstreams":[
		{"chain":"eth","name":"a","upstream":"ftp://h/`+evmtest.Secret+`"},
		{"chain":"eth","name":"b"}]}`)
	out, errs, code := run(t, dir, map[string]string{"EVMLB_MAX_BATCH": "0"}, "", "validate", "cfg.json")
	want := `UPSTREAM_CONFIG (cfg.json): 4 problems
  $.upstreams[0].upstream: must be an absolute http or https URL
  $.upstreams[1].upstream: is missing
  $.chains.eth.max_lag_blocks: must be an integer from 1 to 10000
  EVMLB_MAX_BATCH: must be an integer from 1 to 10000
`
	if code != 1 || out != want || errs != "evmlb: the configuration is not valid (4 problems)\n" {
		t.Errorf("code %d\n%s\nstderr %q", code, out, errs)
	}
	// From stdin, and from .dev.vars.
	out, _, code = run(t, dir, map[string]string{"STDIN": `[{"chain":"eth","name":"a","upstream":"https://h/` + evmtest.Secret + `"}]`}, "", "validate", "-")
	if code != 0 || !strings.Contains(out, "UPSTREAM_CONFIG (stdin): valid, 1 chain, 1 upstream") || !strings.Contains(out, "eth (chain id: majority): a https://h") {
		t.Errorf("stdin: %d %s", code, out)
	}
	write(t, dir, ".dev.vars", `UPSTREAM_CONFIG=[{"chain":"eth","name":"a","upstream":"https://h"},{"chain":"eth","name":"a","upstream":"https://g"}]`)
	out, _, code = run(t, dir, nil, "", "validate")
	if code != 1 || !strings.Contains(out, "$[1].name: duplicate name within its chain") {
		t.Errorf(".dev.vars: %d %s", code, out)
	}
	_, errs, code = run(t, dir, nil, "", "validate", "missing.json")
	if code != 1 || errs != "evmlb: cannot read missing.json: no such file or directory\n" {
		t.Errorf("missing file: %d %q", code, errs)
	}
	_, errs, code = run(t, dir, nil, "", "validate", "--bogus")
	if code != 2 || !strings.HasPrefix(errs, "evmlb: validate: flag provided but not defined") {
		t.Errorf("bad flag: %d %q", code, errs)
	}
}

// noBatchNode answers single calls only, as some providers do.
func noBatchNode(t *testing.T, chainID, height uint64) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var c struct {
			ID     json.RawMessage `json:"id"`
			Method string          `json:"method"`
		}
		if json.Unmarshal(b, &c) != nil {
			http.Error(w, "batch requests are not supported", http.StatusBadRequest)
			return
		}
		res := map[string]string{"eth_chainId": `"0x` + hex(chainID) + `"`, "eth_blockNumber": `"0x` + hex(height) + `"`, "eth_syncing": "false"}[c.Method]
		io.WriteString(w, `{"jsonrpc":"2.0","id":`+string(c.ID)+`,"result":`+res+`}`)
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/" + evmtest.Secret
}

func hex(n uint64) string { return fmt.Sprintf("%x", n) }

func TestValidateProbe(t *testing.T) {
	good := evmtest.NewNode(t, "good", 1, 1000)
	behind := evmtest.NewNode(t, "behind", 1, 900)
	other := evmtest.NewNode(t, "other", 5, 1000)
	syncing := evmtest.NewNode(t, "syncing", 1, 1000)
	syncing.SetSyncing(true)
	hang := evmtest.NewNode(t, "hang", 1, 1000)
	hang.SetFault(evmtest.Hang)
	sick := evmtest.NewNode(t, "sick", 1, 1000)
	sick.SetFault(evmtest.Status500)
	odd := evmtest.NewNode(t, "odd", 1, 1000)
	odd.SetUnsupported("eth_chainId")
	// Two upstreams on two ids and no chain_id: undecided, as the chain's table would be (both fail).
	split1 := evmtest.NewNode(t, "split1", 31337, 5)
	split2 := evmtest.NewNode(t, "split2", 1337, 5)
	cfg := `{"chains":{"eth":{"chain_id":1}},"upstreams":[
		{"chain":"eth","name":"good","upstream":"` + good.URL + `"},
		{"chain":"eth","name":"behind","upstream":"` + behind.URL + `"},
		{"chain":"eth","name":"other","upstream":"` + other.URL + `"},
		{"chain":"eth","name":"syncing","upstream":"` + syncing.URL + `"},
		{"chain":"eth","name":"hang","upstream":"` + hang.URL + `"},
		{"chain":"eth","name":"sick","upstream":"` + sick.URL + `"},
		{"chain":"eth","name":"odd","upstream":"` + odd.URL + `"},
		{"chain":"eth","name":"refused","upstream":"` + evmtest.RefusingURL(t) + `"},
		{"chain":"base","name":"single","upstream":"` + noBatchNode(t, 8453, 77) + `"},
		{"chain":"split","name":"split1","upstream":"` + split1.URL + `"},
		{"chain":"split","name":"split2","upstream":"` + split2.URL + `"}]}`
	dir := t.TempDir()
	write(t, dir, "cfg.json", cfg)
	start := time.Now()
	out, errs, code := run(t, dir, nil, "", "validate", "cfg.json", "--probe", "--timeout", "500ms")
	if time.Since(start) > 5*time.Second {
		t.Errorf("the probe took %v: not in parallel", time.Since(start))
	}
	if code != 1 || errs != "evmlb: 7 upstreams failed the probe\n" {
		t.Errorf("code %d, stderr %q", code, errs)
	}
	rows := map[string]string{}
	for _, l := range strings.Split(out, "\n") {
		if f := strings.Fields(l); len(f) > 1 {
			rows[f[0]] = l
		}
	}
	for name, want := range map[string][]string{
		"eth:":    {"chain id 1 (configured), best head 1000"},
		"good":    {"1000  1000       0 ", "yes", "ok"},
		"behind":  {"900", " 100 ", "lagging: more than max_lag_blocks (10) behind"},
		"other":   {"FAIL: wrong chain (serves 5)"},
		"syncing": {"syncing: out of rotation until synced"},
		"hang":    {"FAIL: eth_chainId: timeout"},
		"sick":    {"FAIL: eth_chainId: HTTP 500"},
		"odd":     {"FAIL: eth_chainId: JSON-RPC error -32601 the method eth_chainId does not exist/is not available"},
		"refused": {"FAIL: eth_chainId: dial tcp", "connection refused"},
		"base:":   {"chain id 8453 (majority), best head 77"},
		"single":  {"8453", "77", " no ", "ok (no batches: checked call by call)"},
		"split:":  {"chain id 0 (undecided: the upstreams disagree and no chain_id is configured"},
		"split1":  {"FAIL: chain id undecided (serves 31337): configure chain_id"},
		"split2":  {"FAIL: chain id undecided (serves 1337): configure chain_id"},
	} {
		for _, w := range want {
			if !strings.Contains(rows[name], w) {
				t.Errorf("row %s lacks %q: %q", name, w, rows[name])
			}
		}
	}
	if strings.Contains(out, evmtest.Secret) || !strings.Contains(out, "http://127.0.0.1:") {
		t.Errorf("endpoints not reduced to scheme and host:\n%s", out)
	}
	t.Log("\n" + out)
}

// cfCall is one call the fake Cloudflare API received.
type cfCall struct{ method, path, body string }

// fakeCloudflare serves the Workers API calls evmlb makes; status, when not 200, is answered to every call.
func fakeCloudflare(t *testing.T, status int) (string, *[]cfCall) {
	var mu sync.Mutex
	calls := &[]cfCall{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		*calls = append(*calls, cfCall{r.Method, r.URL.RequestURI(), string(b)})
		mu.Unlock()
		if r.Header.Get("Authorization") != "Bearer "+tokenSecret {
			t.Errorf("authorization %q", r.Header.Get("Authorization"))
		}
		w.Header().Set("Content-Type", "application/json")
		if status != http.StatusOK {
			w.WriteHeader(status)
			io.WriteString(w, `{"success":false,"errors":[{"code":10000,"message":"Authentication error"}],"messages":[],"result":null}`)
			return
		}
		result := `{}`
		switch {
		case r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/secrets"):
			result = `[{"name":"UPSTREAM_CONFIG","type":"secret_text"},{"name":"ADMIN_PASSWORD","type":"secret_text"}]`
		case r.Method == http.MethodPut:
			result = `{"name":"X","type":"secret_text"}`
		case strings.HasSuffix(r.URL.Path, "/deployments"):
			result = `{"deployments":[{"id":"dep-1","created_on":"2026-04-01T10:00:00Z","source":"wrangler","strategy":"percentage","versions":[{"percentage":100,"version_id":"ver-2"}]}]}`
		case strings.HasSuffix(r.URL.Path, "/versions"):
			io.WriteString(w, `{"success":true,"errors":[],"messages":[],"result":{"items":[{"id":"ver-2","number":2,"metadata":{"created_on":"2026-04-01T09:59:00Z","source":"wrangler"}}]},"result_info":{"page":1,"per_page":5,"count":1,"total_count":1}}`)
			return
		}
		io.WriteString(w, `{"success":true,"errors":[],"messages":[],"result":`+result+`}`)
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/client/v4", calls
}

var cfVars = map[string]string{"CLOUDFLARE_API_TOKEN": tokenSecret, "CLOUDFLARE_ACCOUNT_ID": "acc123"}

func withVars(extra map[string]string) map[string]string {
	m := map[string]string{}
	for _, src := range []map[string]string{cfVars, extra} {
		for k, v := range src {
			m[k] = v
		}
	}
	return m
}

func deployDir(t *testing.T) string {
	dir := t.TempDir()
	write(t, dir, "wrangler.toml", "# evmlb\nname = \"evmlb-test\" # the script\nmain = \"build/worker.mjs\"\n\n[[durable_objects.bindings]]\nname = \"CHAIN\"\nclass_name = \"ChainDurableObject\"\n")
	return dir
}

const upstreamSecret = `[{"chain":"eth","name":"a","upstream":"https://rpc.example/v3/` + evmtest.Secret + `"}]`

func TestSecretsPush(t *testing.T) {
	base, calls := fakeCloudflare(t, http.StatusOK)
	dir := deployDir(t)
	write(t, dir, ".dev.vars", "UPSTREAM_CONFIG="+upstreamSecret+"\nADMIN_PASSWORD="+adminSecret+"\nMETRICS_TOKEN="+metricsSecret+"\n")
	out, errs, code := run(t, dir, cfVars, base, "secrets", "push")
	if code != 0 || errs != "" || out != "set UPSTREAM_CONFIG on evmlb-test\nset ADMIN_PASSWORD on evmlb-test\nset METRICS_TOKEN on evmlb-test\n" {
		t.Fatalf("code %d %q %q", code, out, errs)
	}
	want := []cfCall{
		{"PUT", "/client/v4/accounts/acc123/workers/scripts/evmlb-test/secrets", `{"name":"UPSTREAM_CONFIG","text":` + jsonString(upstreamSecret) + `,"type":"secret_text"}`},
		{"PUT", "/client/v4/accounts/acc123/workers/scripts/evmlb-test/secrets", `{"name":"ADMIN_PASSWORD","text":"` + adminSecret + `","type":"secret_text"}`},
		{"PUT", "/client/v4/accounts/acc123/workers/scripts/evmlb-test/secrets", `{"name":"METRICS_TOKEN","text":"` + metricsSecret + `","type":"secret_text"}`},
	}
	assertCalls(t, *calls, want)

	// The environment gives METRICS_TOKEN as it gives the others (README.md's Configuration table): --dry-run
	// lists it, and the environment's value is the one pushed.
	*calls = nil
	write(t, dir, ".dev.vars", "UPSTREAM_CONFIG="+upstreamSecret+"\n")
	out, errs, code = run(t, dir, map[string]string{"METRICS_TOKEN": metricsSecret, "ADMIN_PASSWORD": adminSecret}, base, "secrets", "push", "--dry-run")
	if code != 0 || errs != "" || out != "would set UPSTREAM_CONFIG on evmlb-test (from the environment or .dev.vars)\nwould set ADMIN_PASSWORD on evmlb-test (from the environment or .dev.vars)\nwould set METRICS_TOKEN on evmlb-test (from the environment or .dev.vars)\n" || len(*calls) != 0 {
		t.Errorf("dry run from the environment: %d %q %q %v", code, out, errs, *calls)
	}
	out, errs, code = run(t, dir, withVars(map[string]string{"METRICS_TOKEN": "env-" + metricsSecret}), base, "secrets", "push")
	if code != 0 || out != "set UPSTREAM_CONFIG on evmlb-test\nset METRICS_TOKEN on evmlb-test\n" {
		t.Fatalf("push from the environment: %d %q %q", code, out, errs)
	}
	assertCalls(t, *calls, []cfCall{
		{"PUT", "/client/v4/accounts/acc123/workers/scripts/evmlb-test/secrets", `{"name":"UPSTREAM_CONFIG","text":` + jsonString(upstreamSecret) + `,"type":"secret_text"}`},
		{"PUT", "/client/v4/accounts/acc123/workers/scripts/evmlb-test/secrets", `{"name":"METRICS_TOKEN","text":"env-` + metricsSecret + `","type":"secret_text"}`},
	})

	// --dry-run calls nothing and needs no token; --script overrides wrangler.toml; a file gives the values.
	*calls = nil
	write(t, dir, "prod.vars", "UPSTREAM_CONFIG="+upstreamSecret+"\n")
	out, errs, code = run(t, dir, nil, base, "secrets", "push", "--dry-run", "--from", "prod.vars", "--script", "other")
	if code != 0 || out != "would set UPSTREAM_CONFIG on other (from prod.vars)\n" || !strings.Contains(errs, "ADMIN_PASSWORD is not set in prod.vars") || len(*calls) != 0 {
		t.Errorf("dry run: %d %q %q %v", code, out, errs, *calls)
	}

	// An invalid configuration is not pushed.
	out, errs, code = run(t, dir, withVars(map[string]string{"UPSTREAM_CONFIG": `[{"chain":"eth","name":"a","upstream":"ftp://x/` + evmtest.Secret + `"}]`}), base, "secrets", "push")
	if code != 1 || !strings.Contains(out, "$[0].upstream: must be an absolute http or https URL") || errs != "evmlb: not pushed: the configuration is not valid (1 problem)\n" || len(*calls) != 0 {
		t.Errorf("invalid: %d %q %q %v", code, out, errs, *calls)
	}
}

func jsonString(s string) string { b, _ := json.Marshal(s); return string(b) }

func assertCalls(t *testing.T, got, want []cfCall) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("calls %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i].method != want[i].method || got[i].path != want[i].path {
			t.Errorf("call %d: %s %s, want %s %s", i, got[i].method, got[i].path, want[i].method, want[i].path)
		}
		if want[i].body != "" || got[i].body != "" {
			var g, w any
			if json.Unmarshal([]byte(got[i].body), &g) != nil || json.Unmarshal([]byte(want[i].body), &w) != nil || !jsonEqual(g, w) {
				t.Errorf("call %d body %s, want %s", i, got[i].body, want[i].body)
			}
		}
	}
}

func jsonEqual(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return bytes.Equal(x, y)
}

func TestSecretsListDelete(t *testing.T) {
	base, calls := fakeCloudflare(t, http.StatusOK)
	dir := deployDir(t)
	out, _, code := run(t, dir, cfVars, base, "secrets", "list")
	if code != 0 || out != "secrets of evmlb-test:\n  UPSTREAM_CONFIG\n  ADMIN_PASSWORD\n" {
		t.Errorf("list: %d %q", code, out)
	}
	out, _, code = run(t, dir, cfVars, base, "secrets", "delete", "ADMIN_PASSWORD", "--script", "s2")
	if code != 0 || out != "deleted ADMIN_PASSWORD from s2\n" {
		t.Errorf("delete: %d %q", code, out)
	}
	assertCalls(t, *calls, []cfCall{
		{"GET", "/client/v4/accounts/acc123/workers/scripts/evmlb-test/secrets", ""},
		{"DELETE", "/client/v4/accounts/acc123/workers/scripts/s2/secrets/ADMIN_PASSWORD", ""},
	})
}

func TestCloudflareErrors(t *testing.T) {
	dir := deployDir(t)
	for _, tc := range []struct {
		status int
		want   string
	}{
		{http.StatusForbidden, "evmlb: Cloudflare refused the API token (HTTP 403): CLOUDFLARE_API_TOKEN needs Workers Scripts: Edit on account acc123\n"},
		{http.StatusNotFound, "evmlb: Cloudflare has no Worker \"evmlb-test\" in account acc123 (HTTP 404): deploy it first (make deploy), or pass --script\n"},
		{http.StatusTooManyRequests, "evmlb: Cloudflare is rate limiting this token (HTTP 429): try again in a minute\n"},
		{http.StatusInternalServerError, "evmlb: Cloudflare API answered HTTP 500: Authentication error\n"},
	} {
		base, calls := fakeCloudflare(t, tc.status)
		for _, args := range [][]string{{"secrets", "list"}, {"secrets", "delete", "X"}, {"secrets", "push"}, {"status", "--url", "http://127.0.0.1:1"}} {
			_, errs, code := run(t, dir, withVars(map[string]string{"UPSTREAM_CONFIG": upstreamSecret, "ADMIN_PASSWORD": adminSecret}), base, args...)
			if code != 1 || errs != tc.want {
				t.Errorf("%d %v: code %d, stderr %q", tc.status, args, code, errs)
			}
		}
		if len(*calls) != 4 {
			t.Errorf("%d: %d calls, want one per command (no retries)", tc.status, len(*calls))
		}
	}
	// No network: a port where nothing listens.
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := l.Addr().String()
	l.Close()
	_, errs, code := run(t, dir, cfVars, "http://"+addr+"/client/v4", "secrets", "list")
	if code != 1 || !strings.HasPrefix(errs, "evmlb: cannot reach the Cloudflare API: ") || strings.Count(errs, "\n") != 1 {
		t.Errorf("no network: %d %q", code, errs)
	}
	_, errs, code = run(t, dir, nil, "", "secrets", "list")
	if code != 1 || errs != "evmlb: set CLOUDFLARE_API_TOKEN (a token with Workers Scripts: Edit) and CLOUDFLARE_ACCOUNT_ID\n" {
		t.Errorf("no token: %d %q", code, errs)
	}
}

// adminServer serves /admin/chains and /admin/upstreams as the balancer does, from its own types.
func adminServer(t *testing.T) string {
	chains := map[string]any{"chains": []adminapi.ChainSummary{{
		Chain: "eth", BestHeight: 1000, Head: 1000, ChainID: 1, Upstreams: 2, Healthy: 1,
		Table: []adminapi.UpstreamRow{
			{Name: "a", Height: 1000, ChainID: 1, LatencyMS: 42.4, ErrorRate: 0.012, State: "healthy"},
			{Name: "b", Height: 980, ChainID: 1, LatencyMS: 180, ErrorRate: 0.5, State: "lagging", Reason: "20 blocks behind the best"},
		},
	}}}
	var a, b adminapi.UpstreamEntry
	a.Chain, a.Name, a.Endpoint, a.State = "eth", "a", "https://a.example", "healthy"
	b.Chain, b.Name, b.Endpoint, b.State = "eth", "b", "https://b.example", "lagging"
	ups := map[string]any{"upstreams": []adminapi.UpstreamEntry{a, b}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != "admin" || p != adminSecret {
			w.WriteHeader(http.StatusUnauthorized)
			io.WriteString(w, `{"jsonrpc":"2.0","id":null,"error":{"code":-32064,"message":"unauthorized"}}`)
			return
		}
		var v any
		switch r.URL.Path {
		case "/admin/chains":
			v = chains
		case "/admin/upstreams":
			v = ups
		default:
			http.NotFound(w, r)
			return
		}
		json.NewEncoder(w).Encode(v)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestStatus(t *testing.T) {
	url := adminServer(t)
	dir := deployDir(t)
	out, errs, code := run(t, dir, map[string]string{"ADMIN_PASSWORD": adminSecret}, "", "status", "--url", url+"/")
	if code != 0 || errs != "" {
		t.Fatalf("code %d, %q", code, errs)
	}
	for _, w := range []string{
		"CHAIN  UPSTREAM  ENDPOINT           STATE    REASON                     HEAD  LAG  LATENCY  ERROR RATE",
		"eth    a         https://a.example  healthy  -                          1000  0    42ms     1.2%",
		"eth    b         https://b.example  lagging  20 blocks behind the best  980   20   180ms    50.0%",
		"eth: head 1000, chain id 1, 1 of 2 upstreams healthy",
	} {
		if !strings.Contains(out, w) {
			t.Errorf("status lacks %q:\n%s", w, out)
		}
	}
	if strings.Contains(out, "Worker") {
		t.Error("the Cloudflare part ran without a token")
	}
	// With a token, deployments and versions come first.
	base, calls := fakeCloudflare(t, http.StatusOK)
	out, _, code = run(t, dir, withVars(map[string]string{"ADMIN_PASSWORD": adminSecret}), base, "status", "--url", url)
	if code != 0 || !strings.Contains(out, "Worker evmlb-test\n  deployment dep-1 2026-04-01T10:00:00Z (wrangler): ver-2 100%\n  version 2 ver-2 2026-04-01T09:59:00Z (wrangler)\n") {
		t.Errorf("with a token: %d\n%s", code, out)
	}
	assertCalls(t, *calls, []cfCall{
		{"GET", "/client/v4/accounts/acc123/workers/scripts/evmlb-test/deployments", ""},
		{"GET", "/client/v4/accounts/acc123/workers/scripts/evmlb-test/versions?per_page=5", ""},
	})
	_, errs, code = run(t, dir, map[string]string{"ADMIN_PASSWORD": "wrong"}, "", "status", "--url", url)
	if code != 1 || errs != "evmlb: "+url+"/admin/chains: HTTP 401: unauthorized (wrong ADMIN_PASSWORD or --user)\n" {
		t.Errorf("wrong password: %d %q", code, errs)
	}
	_, errs, code = run(t, dir, nil, "", "status", "--url", url)
	if code != 1 || errs != "evmlb: set ADMIN_PASSWORD (the balancer's admin password) to read its status\n" {
		t.Errorf("no password: %d %q", code, errs)
	}
}

func TestDeployCheck(t *testing.T) {
	dir := deployDir(t)
	write(t, dir, "app.wasm", strings.Repeat("wasm", 1000))
	_, errs, code := run(t, dir, nil, "", "deploy-check", "--wasm", "app.wasm")
	if code != 1 || errs != "evmlb: wrangler.toml: Durable Object class ChainDurableObject has no [[migrations]] entry creating it (new_sqlite_classes)\n" {
		t.Errorf("no migration: %d %q", code, errs)
	}
	repo, err := os.ReadFile("../../../wrangler.toml")
	if err != nil {
		t.Fatal(err)
	}
	write(t, dir, "wrangler.toml", string(repo))
	out, _, code := run(t, dir, map[string]string{"UPSTREAM_CONFIG": upstreamSecret}, "", "deploy-check", "--wasm", "app.wasm", "--plan", "paid")
	if code != 0 || !strings.Contains(out, "(paid plan limit 10 MB)") || !strings.Contains(out, "ok: UPSTREAM_CONFIG is valid") ||
		!strings.Contains(out, "ok: wrangler.toml binds every Durable Object class the balancer calls and declares a migration for each") {
		t.Errorf("ok: %d %s", code, out)
	}
	// The repository's wrangler.toml without the budget class's migration (v3), or without its binding.
	noV3 := strings.Replace(string(repo), "tag = \"v3\"\nnew_sqlite_classes = [\"BudgetDurableObject\"]", "tag = \"v3\"", 1)
	noBinding := strings.Replace(string(repo), "name = \"BUDGET\"\nclass_name = \"BudgetDurableObject\"", "", 1)
	if noV3 == string(repo) || noBinding == string(repo) {
		t.Fatal("wrangler.toml has no migration v3 creating BudgetDurableObject, or no BUDGET binding")
	}
	for toml, want := range map[string]string{
		noV3:      "evmlb: wrangler.toml: Durable Object class BudgetDurableObject has no [[migrations]] entry creating it (new_sqlite_classes)\n",
		noBinding: "evmlb: wrangler.toml does not bind BUDGET to the Durable Object class BudgetDurableObject, which the balancer calls",
	} {
		write(t, dir, "wrangler.toml", toml)
		if _, errs, code := run(t, dir, nil, "", "deploy-check", "--wasm", "app.wasm"); code != 1 || !strings.HasPrefix(errs, want) {
			t.Errorf("%d %q, want %q", code, errs, want)
		}
	}
	big := make([]byte, 4<<20)
	rand.NewChaCha8([32]byte{1}).Read(big) // incompressible
	os.WriteFile(filepath.Join(dir, "big.wasm"), big, 0o600)
	_, errs, code = run(t, dir, nil, "", "deploy-check", "--wasm", "big.wasm")
	if code != 1 || !strings.Contains(errs, "over the free plan's 3 MB Worker size limit") {
		t.Errorf("too big: %d %q", code, errs)
	}
}

// TestNoSecretInOutput runs last (go test runs a file's tests in order): nothing any command printed holds a
// secret's value: an upstream URL's key, the admin password or the API token.
func TestNoSecretInOutput(t *testing.T) {
	outputs.Lock()
	defer outputs.Unlock()
	all := outputs.all.String()
	if len(all) < 1000 {
		t.Fatalf("only %d bytes of output collected", len(all))
	}
	for _, s := range []string{evmtest.Secret, adminSecret, tokenSecret, "s3cr3t"} {
		if strings.Contains(all, s) {
			t.Errorf("the output holds %q", s)
		}
	}
}
