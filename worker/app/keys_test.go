package app

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/evmlb/evmlb/durable"
	"github.com/evmlb/evmlb/internal/budget"
	"github.com/evmlb/evmlb/internal/clients"
	"github.com/evmlb/evmlb/internal/evmtest"
)

// Client keys (issue 22, CLIENT_KEYS): where a key goes, every answer and code, the counts per client, and that
// no key or hash shows anywhere.

const (
	keyApp   = "evmlb_appAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	keyBot   = "evmlb_botBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB"
	keyOpen  = "evmlb_opnCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCC"
	keyLim   = "evmlb_limDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDD"
	keyWrong = "evmlb_appAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB" // keyApp but its last character
)

// clientKeys is CLIENT_KEYS for the tests: app (eth only, eth_* and net_version, limited), bot (every chain,
// debug_* denied, limited per day), open (no list, no limit), lim (no list, limited).
func clientKeys() string {
	return `[{"name":"app","key_sha256":"` + clients.Hash(keyApp) + `","chains":["eth"],"allow":["eth_*","net_version"],"rps":5,"burst":10},
	 {"name":"bot","key_sha256":"` + clients.Hash(keyBot) + `","chains":["*"],"deny":["debug_*"],"per_day":100},
	 {"name":"open","key_sha256":"` + clients.Hash(keyOpen) + `"},
	 {"name":"lim","key_sha256":"` + clients.Hash(keyLim) + `","rps":1}]`
}

// fakeTake records the Takes and refuses them while refuse is set.
type fakeTake struct {
	names  []string
	ns     []int
	refuse bool
	after  time.Duration
	day    bool // a refusal is the day's limit's
}

func (f *fakeTake) take(_ context.Context, name string, _ budget.Limit, n int) (bool, time.Duration, bool) {
	f.names, f.ns = append(f.names, name), append(f.ns, n)
	return !f.refuse, f.after, f.refuse && f.day
}

// keysHarness starts a balancer with two chains and CLIENT_KEYS; the key and hash are in its secrets.
func keysHarness(t *testing.T) (*harness, *fakeTake, *evmtest.Node) {
	a := evmtest.NewNode(t, "a", 1, 100)
	p := evmtest.NewNode(t, "p", 137, 100)
	h := newHarness(t, map[string]string{"CLIENT_KEYS": clientKeys()}, upstream{"eth", "a", a.URL}, upstream{"polygon", "p", p.URL})
	for _, k := range []string{keyApp, keyBot, keyOpen, keyLim, keyWrong} {
		h.secrets = append(h.secrets, k, clients.Hash(k), k[len(clients.KeyPrefix):])
	}
	f := &fakeTake{}
	h.app.take = f.take
	return h, f, a
}

func bearer(key string) func(*http.Request) {
	return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+key) }
}

func TestClientKeysAnswers(t *testing.T) {
	h, f, node := keysHarness(t)
	call := `{"jsonrpc":"2.0","id":1,"method":"eth_protocolVersion"}` // a method no health check calls
	none := func(*http.Request) {}
	for _, tc := range []struct {
		name, path, body string
		edit             func(*http.Request)
		status, code     int
		msg              string
	}{
		{"no key", "/eth", call, none, 401, -32064, "needs a client key: POST /{chain}/{key}, or send the header Authorization: Bearer {key}"},
		{"empty path key", "/eth/", call, none, 401, -32064, "needs a client key"},
		{"unknown key in the path", "/eth/" + keyWrong, call, none, 401, -32064, "unknown client key"},
		{"unknown bearer", "/eth", call, bearer(keyWrong), 401, -32064, "unknown client key"},
		{"two different keys", "/eth/" + keyApp, call, bearer(keyBot), 401, -32064, "two different client keys"},
		{"basic credentials are no key", "/eth", call, func(r *http.Request) { r.SetBasicAuth("admin", password) }, 401, -32064, "needs a client key"},
		{"a path deeper than the key", "/eth/" + keyApp + "/x", call, none, 404, -32062, ""},
		{"chain not allowed", "/polygon/" + keyApp, call, none, 403, -32078, "this key may not use this chain"},
		{"unknown chain", "/bsc/" + keyApp, call, none, 404, -32061, ""},
		{"allow list", "/eth/" + keyApp, `{"jsonrpc":"2.0","id":1,"method":"debug_traceTransaction","params":["0x1"]}`, none, 403, -32067, "debug_traceTransaction (this key's list of methods)"},
		{"allow list in a batch", "/eth/" + keyApp, `[` + call + `,{"jsonrpc":"2.0","id":2,"method":"txpool_status"}]`, none, 403, -32067, "batch element 1: txpool_status (this key's list of methods)"},
		{"deny list", "/polygon", `{"jsonrpc":"2.0","id":1,"method":"DEBUG_traceCall","params":[]}`, bearer(keyBot), 403, -32067, "DEBUG_traceCall (this key's list of methods)"},
		{"chain's deny list first", "/eth/" + keyOpen, `{"jsonrpc":"2.0","id":1,"method":"admin_peers"}`, none, 403, -32067, "admin_peers"},
		{"GET on a chain", "/eth/" + keyApp, "", none, 405, -32063, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			method := http.MethodPost
			if tc.body == "" {
				method = http.MethodGet
			}
			status, hdr, body := h.doWith(method, tc.path, tc.body, tc.edit)
			if status != tc.status {
				t.Errorf("status %d, want %d: %s", status, tc.status, body)
			}
			first := body
			if strings.HasPrefix(body, "[") {
				first = body[1 : strings.Index(body, "}},")+2]
			}
			if c := errorCode(t, first); c != tc.code {
				t.Errorf("code %d, want %d: %s", c, tc.code, body)
			}
			if !strings.Contains(body, tc.msg) {
				t.Errorf("answer %s, want %q", body, tc.msg)
			}
			if v := hdr.Get("WWW-Authenticate"); v != "" {
				t.Errorf("WWW-Authenticate %q on a chain request", v)
			}
		})
	}
	if slices.Contains(node.Methods(), "eth_protocolVersion") || slices.Contains(node.Methods(), "txpool_status") {
		t.Errorf("refused requests reached the node: %v", node.Methods())
	}
	if len(f.names) != 0 {
		t.Errorf("refused requests took from budgets: %v", f.names)
	}

	// Accepted: in the path, as a Bearer (any case of the scheme), or both the same; a key without limits takes
	// nothing from a budget.
	for _, tc := range []struct {
		path string
		edit func(*http.Request)
	}{
		{"/eth/" + keyApp, none},
		{"/eth", bearer(keyApp)},
		{"/eth", func(r *http.Request) { r.Header.Set("Authorization", "bearer "+keyApp) }},
		{"/eth/" + keyApp, bearer(keyApp)},
		{"/polygon/" + keyBot, none},
		{"/polygon/" + keyOpen, none},
	} {
		status, _, body := h.doWith(http.MethodPost, tc.path, call, tc.edit)
		if status != http.StatusOK || !strings.Contains(body, `"result"`) {
			t.Errorf("%s: %d %s", clients.RedactPath(tc.path), status, body)
		}
	}
	if want := "client:app,client:app,client:app,client:app,client:bot"; strings.Join(f.names, ",") != want {
		t.Errorf("budgets taken %v, want %s", f.names, want)
	}
	// A batch of n calls takes n.
	f.names, f.ns = nil, nil
	if status, _, body := h.doWith(http.MethodPost, "/eth/"+keyApp, `[`+call+`,`+call+`,{"jsonrpc":"2.0","id":3,"method":"net_version"}]`, none); status != 200 {
		t.Fatalf("batch: %d %s", status, body)
	}
	if len(f.ns) != 1 || f.ns[0] != 3 {
		t.Errorf("a batch of 3 took %v", f.ns)
	}

	// Admin, GET / and a CORS preflight need no key.
	if status, _, body := h.do(http.MethodGet, "/", "", false); status != 200 || !strings.Contains(body, `"client_keys":true`) || !strings.Contains(body, "Authorization: Bearer") {
		t.Errorf("GET /: %d %s", status, body)
	}
	h.admin(http.MethodGet, "/admin/chains", nil)
	if status, _, _ := h.doWith(http.MethodOptions, "/eth/"+keyApp, "", func(r *http.Request) { r.Header.Set("Origin", "https://dapp.example") }); status != http.StatusNoContent {
		t.Errorf("preflight: %d", status)
	}
}

func TestClientKeysLimits(t *testing.T) {
	h, f, node := keysHarness(t)
	call := `{"jsonrpc":"2.0","id":7,"method":"eth_protocolVersion"}` // a method no health check calls
	f.refuse, f.after = true, 1500*time.Millisecond
	status, hdr, body := h.doWith(http.MethodPost, "/eth/"+keyApp, call, func(*http.Request) {})
	if status != http.StatusTooManyRequests || errorCode(t, body) != -32005 || hdr.Get("Retry-After") != "2" ||
		!strings.Contains(body, "limit exceeded: this key's requests per second") || !strings.Contains(body, `"id":7`) {
		t.Errorf("over rps: %d Retry-After %q %s", status, hdr.Get("Retry-After"), body)
	}
	f.after = 0 // a refusal with no wait still says to wait a second
	if _, hdr, _ := h.doWith(http.MethodPost, "/eth/"+keyApp, call, func(*http.Request) {}); hdr.Get("Retry-After") != "1" {
		t.Errorf("Retry-After %q, want 1", hdr.Get("Retry-After"))
	}
	// A batch larger than the burst (10) can never pass: it says so.
	batch := "[" + strings.TrimSuffix(strings.Repeat(call+",", 11), ",") + "]"
	if _, _, body := h.doWith(http.MethodPost, "/eth/"+keyApp, batch, func(*http.Request) {}); !strings.Contains(body, "more calls than this key's burst") || strings.Count(body, "-32005") != 11 {
		t.Errorf("batch over the burst: %s", body)
	}
	// Over per_day: until midnight UTC (the host's clock is t0, midnight: a whole day).
	f.after, f.day = 24*time.Hour, true
	status, hdr, body = h.doWith(http.MethodPost, "/eth", call, bearer(keyBot))
	if status != http.StatusTooManyRequests || errorCode(t, body) != -32005 || hdr.Get("Retry-After") != strconv.Itoa(24*3600) ||
		!strings.Contains(body, "limit exceeded: this key's requests per day") {
		t.Errorf("over per_day: %d Retry-After %q %s", status, hdr.Get("Retry-After"), body)
	}
	// The day's limit refuses with a short wait too (this isolate's part of the day is used and the others' may come
	// back at its next renewal): still "per day", whatever the wait.
	f.after = time.Second
	if _, hdr, body := h.doWith(http.MethodPost, "/eth", call, bearer(keyBot)); hdr.Get("Retry-After") != "1" ||
		!strings.Contains(body, "limit exceeded: this key's requests per day") {
		t.Errorf("over per_day, this isolate's part: Retry-After %q %s", hdr.Get("Retry-After"), body)
	}
	if slices.Contains(node.Methods(), "eth_protocolVersion") {
		t.Errorf("refused requests reached the node: %v", node.Methods())
	}
}

func TestRetryAfter(t *testing.T) {
	for d, want := range map[time.Duration]string{0: "1", -time.Second: "1", time.Millisecond: "1", time.Second: "1", 1001 * time.Millisecond: "2", 90 * time.Second: "90"} {
		if got := retryAfter(d); got != want {
			t.Errorf("retryAfter(%v) = %s, want %s", d, got, want)
		}
	}
}

// TestClientKeysCounted: each outcome is counted per client in evmlb_client_requests_total, in /admin/clients
// and on the dashboard; none of them holds a key or a hash (the harness's secret scan, and here the metrics').
func TestClientKeysCounted(t *testing.T) {
	h, f, _ := keysHarness(t)
	call := `{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber"}`
	none := func(*http.Request) {}
	// Each chain's first request is one that passes, so that the isolate's view of it has its snapshot and the
	// counts go with the exchanges the test makes (a chain only refused so far has its first exchange in the
	// background, which the in-memory host's Wait does not wait for while it waits on health checks).
	h.doWith(http.MethodPost, "/polygon/"+keyBot, call, none)                                      // ok
	h.doWith(http.MethodPost, "/eth/"+keyApp, call, none)                                          // ok
	h.doWith(http.MethodPost, "/eth/"+keyApp, call, none)                                          // ok
	h.doWith(http.MethodPost, "/polygon/"+keyApp, call, none)                                      // chain_denied (on polygon)
	h.doWith(http.MethodPost, "/eth/"+keyApp, `{"jsonrpc":"2.0","id":1,"method":"debug_x"}`, none) // denied
	h.doWith(http.MethodPost, "/eth/"+keyWrong, call, none)                                        // unknown
	h.doWith(http.MethodPost, "/eth", call, none)                                                  // unknown
	f.refuse = true
	h.doWith(http.MethodPost, "/eth/"+keyApp, call, none) // limited
	f.after, f.day = 24*time.Hour, true
	h.doWith(http.MethodPost, "/eth/"+keyBot, call, none) // day_limited
	h.host.Wait()
	h.checks(0)

	_, _, text := h.do(http.MethodGet, "/admin/metrics", "", true)
	for _, want := range []string{
		`evmlb_client_requests_total{chain="eth",client="app",outcome="ok"} 2`,
		`evmlb_client_requests_total{chain="polygon",client="app",outcome="chain_denied"} 1`,
		`evmlb_client_requests_total{chain="eth",client="app",outcome="denied"} 1`,
		`evmlb_client_requests_total{chain="eth",client="app",outcome="limited"} 1`,
		`evmlb_client_requests_total{chain="eth",client="bot",outcome="day_limited"} 1`,
		`evmlb_client_requests_total{chain="eth",client="unknown",outcome="unauthorized"} 2`,
		`evmlb_client_requests_total{chain="polygon",client="bot",outcome="ok"} 1`,
	} {
		if !strings.Contains(text, want+"\n") {
			t.Errorf("no %s in the metrics", want)
		}
	}
	var ac AdminClients
	h.admin(http.MethodGet, "/admin/clients", &ac)
	if !ac.ClientKeys || len(ac.Clients) != 4 || ac.Unknown["eth"] != 2 || ac.Unknown["polygon"] != 0 {
		t.Fatalf("/admin/clients: %+v", ac)
	}
	app := ac.Clients[0]
	if app.Name != "app" || strings.Join(app.Chains, ",") != "eth" || app.Limits.RPS != 5 || app.Limits.Burst != 10 ||
		app.Requests["eth"]["ok"] != 2 || app.Requests["polygon"]["chain_denied"] != 1 || app.Totals["ok"] != 2 ||
		app.Totals["limited"] != 1 || strings.Join(app.Allow, ",") != "eth_*,net_version" {
		t.Errorf("app: %+v", app)
	}
	if app.Budget == nil || app.BudgetError != "" || app.Budget.Name != "client:app" {
		t.Errorf("app's budget object's status: %+v (%+v)", app, app.Budget)
	}
	if o := ac.Clients[2]; o.Name != "open" || strings.Join(o.Chains, ",") != "*" || o.BudgetError != "" || o.Budget != nil {
		t.Errorf("open (no limits, no budget object): %+v", o)
	}
	var d struct{ Clients AdminClients }
	h.admin(http.MethodGet, "/admin/dashboard.json", &d)
	if len(d.Clients.Clients) != 4 || d.Clients.Clients[1].Totals["day_limited"] != 1 {
		t.Errorf("dashboard's clients: %+v", d.Clients)
	}
	for _, s := range h.secrets {
		if strings.Contains(text, s) {
			t.Errorf("the metrics hold a key or a hash")
		}
	}
}

// TestClientKeysCacheShared: the key is no part of the answer cache's key: two clients' identical reads are
// answered by one upstream call.
func TestClientKeysCacheShared(t *testing.T) {
	a := evmtest.NewNode(t, "a", 1, 100)
	h := newHarness(t, map[string]string{"CLIENT_KEYS": clientKeys(), "UPSTREAM_CONFIG": configCached(upstream{"eth", "a", a.URL})}, upstream{"eth", "a", a.URL})
	h.secrets = append(h.secrets, keyApp, keyBot, clients.Hash(keyApp), clients.Hash(keyBot))
	h.app.take = (&fakeTake{}).take
	body := `{"jsonrpc":"2.0","id":1,"method":"eth_getBlockByNumber","params":["0x10",false]}`
	h.doWith(http.MethodPost, "/eth/"+keyApp, body, func(*http.Request) {})
	h.host.Wait()
	before := a.Calls()
	status, hdr, got := h.doWith(http.MethodPost, "/eth", body, bearer(keyBot))
	if status != 200 || a.Calls() != before || hdr.Get("x-evmlb-cache") != "hit" {
		t.Errorf("another key's identical read: %d, cache %q, node calls %d → %d: %s", status, hdr.Get("x-evmlb-cache"), before, a.Calls(), got)
	}
}

// TestClientKeysWebSocket: a key is checked at the upgrade (401, 403, 429 before any socket); a key with a method
// list gets no socket, its list not reaching the socket's calls.
func TestClientKeysWebSocket(t *testing.T) {
	h, f, _ := keysHarness(t)
	for _, tc := range []struct {
		name, path string
		header     http.Header
		status     int
		code       int
	}{
		{"no key", "/eth", nil, 401, -32064},
		{"unknown key", "/eth/" + keyWrong, nil, 401, -32064},
		{"chain not allowed", "/polygon/" + keyApp, nil, 403, -32078},
	} {
		if conn, status, body := h.host.Dial(tc.path, tc.header); conn != nil || status != tc.status || errorCode(t, string(body)) != tc.code {
			t.Errorf("%s: %v %d %s", tc.name, conn != nil, status, body)
		}
	}
	f.refuse, f.after = true, 3*time.Second
	conn, status, body := h.host.Dial("/eth/"+keyLim, nil)
	if conn != nil || status != http.StatusTooManyRequests || errorCode(t, string(body)) != -32005 {
		t.Errorf("over the limit: %v %d %s", conn != nil, status, body)
	}
	if strings.Join(f.names, ",") != "client:lim" || f.ns[0] != 1 {
		t.Errorf("the upgrade took %v %v, want one of client:lim", f.names, f.ns)
	}
	f.refuse = false
	conn, status, body = h.host.Dial("/eth", http.Header{"Authorization": {"Bearer " + keyLim}})
	if conn == nil || status != http.StatusSwitchingProtocols {
		t.Fatalf("a key without a list: %d %s", status, body)
	}
	_ = conn.Close(1000, "")
	h.host.Wait()
}

// TestClientKeysSocketMessages: a key's socket holds each message to the key's list of methods and budget, as
// POST /{chain}/{key} holds a body: a denied method -32067, a call spends one (a batch its calls, a subscription
// too), over the limit -32005 saying when to retry, and ten refusals in a row close the socket. The object knows
// the client by name, never by key.
func TestClientKeysSocketMessages(t *testing.T) {
	h, f, _ := keysHarness(t)
	conn, status, body := h.host.Dial("/eth/"+keyApp, nil) // app: eth_* and net_version only, limited
	if conn == nil || status != http.StatusSwitchingProtocols {
		t.Fatalf("a key with a method list: %d %s", status, body)
	}
	if att := conn.Attachment(); !strings.Contains(att, `"k":"app"`) {
		t.Errorf("the socket's attachment does not name its client: %s", att)
	}
	f.names, f.ns = nil, nil
	got := h.ask(conn, `{"jsonrpc":"2.0","id":1,"method":"debug_traceTransaction","params":["0x00"]}`)
	if len(got) != 1 || errorCode(t, got[0]) != -32067 || !strings.Contains(got[0], "this key's list of methods") || !strings.Contains(got[0], `"id":1`) {
		t.Errorf("a method the key's list refuses: %q", got)
	}
	if len(f.names) != 0 {
		t.Errorf("a refused method spent %v", f.ns)
	}
	if got := h.ask(conn, `{"jsonrpc":"2.0","id":2,"method":"eth_blockNumber"}`); len(got) != 1 || !strings.Contains(got[0], `"result":"0x64"`) {
		t.Errorf("eth_blockNumber: %q", got)
	}
	if got := h.ask(conn, `[{"jsonrpc":"2.0","id":3,"method":"eth_chainId"},{"jsonrpc":"2.0","id":4,"method":"net_version"},{"jsonrpc":"2.0","id":5,"method":"eth_blockNumber"}]`); len(got) != 1 || strings.Count(got[0], `"result"`) != 3 {
		t.Errorf("a batch of 3: %q", got)
	}
	h.subscribe(conn, `["newHeads"]`)
	if strings.Join(f.names, ",") != "client:app,client:app,client:app" || !slices.Equal(f.ns, []int{1, 3, 1}) {
		t.Errorf("spent %v %v, want client:app 1, 3, 1", f.names, f.ns)
	}
	f.refuse, f.after = true, 3*time.Second
	got = h.ask(conn, `{"jsonrpc":"2.0","id":6,"method":"eth_blockNumber"}`)
	if len(got) != 1 || errorCode(t, got[0]) != -32005 || !strings.Contains(got[0], "this key's requests per second; retry after 3 s") || !strings.Contains(got[0], `"id":6`) {
		t.Errorf("over the key's limit: %q", got)
	}
	for i := range durable.MaxStrikes - 1 {
		if closed, _, _ := conn.Closed(); closed {
			t.Fatalf("closed after %d refusals", i+1)
		}
		h.ask(conn, `{"jsonrpc":"2.0","id":7,"method":"eth_blockNumber"}`)
	}
	if closed, code, reason := conn.Closed(); !closed || code != durable.ClosePolicy {
		t.Errorf("after %d refusals in a row: closed %v %d %q", durable.MaxStrikes, closed, code, reason)
	}
	h.host.Wait()
}

// TestClientKeysMalformed: a malformed CLIENT_KEYS is ErrConfig for every chain request (never an open balancer),
// names the entry and field, and shows no value; unset, the chains are open and a path has no key.
func TestClientKeysMalformed(t *testing.T) {
	a := evmtest.NewNode(t, "a", 1, 100)
	bad := `[{"name":"app","key_sha256":"` + keyApp + `"}]` // the key where its hash belongs
	h := newHarness(t, map[string]string{"CLIENT_KEYS": bad}, upstream{"eth", "a", a.URL})
	h.secrets = append(h.secrets, keyApp, keyApp[len(clients.KeyPrefix):])
	status, _, body := h.doWith(http.MethodPost, "/eth", rpcBody, func(*http.Request) {})
	if status != http.StatusServiceUnavailable || errorCode(t, body) != -32066 || !strings.Contains(body, "CLIENT_KEYS: $[0].key_sha256: must be 64 lowercase hex digits") {
		t.Errorf("malformed CLIENT_KEYS: %d %s", status, body)
	}
	if _, _, body := h.do(http.MethodGet, "/", "", false); !strings.Contains(body, `"config_error":"CLIENT_KEYS: $[0].key_sha256`) {
		t.Errorf("GET /: %s", body)
	}
	// A chain the configuration does not have.
	h2 := newHarness(t, map[string]string{"CLIENT_KEYS": `[{"name":"app","key_sha256":"` + clients.Hash(keyApp) + `","chains":["nope"]}]`}, upstream{"eth", "a", a.URL})
	if status, _, body := h2.doWith(http.MethodPost, "/eth", rpcBody, func(*http.Request) {}); status != 503 || !strings.Contains(body, "$[0].chains[0]: is not a configured chain") {
		t.Errorf("unknown chain in CLIENT_KEYS: %d %s", status, body)
	}
	// Unset: open, and /{chain}/{anything} is no chain path.
	h3 := newHarness(t, nil, upstream{"eth", "a", a.URL})
	if status, _ := h3.post("eth", rpcBody); status != 200 {
		t.Errorf("open: %d", status)
	}
	if status, _, _ := h3.doWith(http.MethodPost, "/eth/"+keyApp, rpcBody, func(*http.Request) {}); status != 404 {
		t.Errorf("a key path without CLIENT_KEYS: %d", status)
	}
	var ac AdminClients
	h3.admin(http.MethodGet, "/admin/clients", &ac)
	if ac.ClientKeys || len(ac.Clients) != 0 {
		t.Errorf("/admin/clients without keys: %+v", ac)
	}
}

// TestResolveBudget: the budget objects' Limits come from CLIENT_KEYS and from the upstreams' max_rps fields.
func TestResolveBudget(t *testing.T) {
	a := evmtest.NewNode(t, "a", 1, 100)
	cfg := fmt.Sprintf(`{"upstreams":[{"chain":"eth","name":"a","upstream":%q,"max_rps":20,"max_per_day":1000},
		{"chain":"eth","name":"b","upstream":%q,"max_rps":5,"max_burst":8},{"chain":"eth","name":"c","upstream":%q}]}`, a.URL, a.URL, a.URL)
	h := newHarness(t, map[string]string{"CLIENT_KEYS": clientKeys(), "UPSTREAM_CONFIG": cfg}, upstream{"eth", "a", a.URL})
	for name, want := range map[string]*budget.Limit{
		budget.ClientName("app"):         {RPS: 5, Burst: 10},
		budget.ClientName("bot"):         {PerDay: 100},
		budget.ClientName("open"):        nil, // no limits: no budget
		budget.ClientName("nobody"):      nil,
		budget.UpstreamName("eth", "a"):  {RPS: 20, Burst: 20, PerDay: 1000},
		budget.UpstreamName("eth", "b"):  {RPS: 5, Burst: 8},
		budget.UpstreamName("eth", "c"):  nil,
		budget.UpstreamName("base", "a"): nil,
		"upstream:eth":                   nil,
		"something:else":                 nil,
	} {
		got, ok := h.app.resolveBudget(name)
		if ok != (want != nil) || (want != nil && got != *want) {
			t.Errorf("resolveBudget(%s) = %+v %v, want %+v", name, got, ok, want)
		}
	}
}

// TestClientKeyNotLogged: a panic while serving a request with a key in its path logs the path with the key
// redacted (the harness's scan fails the test on the key or its hash in any body or log line).
func TestClientKeyNotLogged(t *testing.T) {
	h, _, _ := keysHarness(t)
	h.app.take = func(context.Context, string, budget.Limit, int) (bool, time.Duration, bool) { panic("boom") }
	status, _, body := h.doWith(http.MethodPost, "/eth/"+keyApp, rpcBody, func(*http.Request) {})
	if status != http.StatusInternalServerError || errorCode(t, body) != -32603 {
		t.Fatalf("%d %s", status, body)
	}
	logged := strings.Join(h.host.Logs(), "\n")
	if !strings.Contains(logged, "panic serving POST /eth/[key]: boom") {
		t.Errorf("no redacted panic line in %s", logged)
	}
}
