package app

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/evmlb/evmlb/internal/balance"
	"github.com/evmlb/evmlb/internal/evmtest"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
)

const metricsToken = "m3trics-t0ken-s3cret"

// scrape reads /admin/metrics with the bearer token and parses it with expfmt.
func (h *harness) scrape() map[string]*dto.MetricFamily {
	h.t.Helper()
	r := map[string]string{"Authorization": "Bearer " + metricsToken}
	status, hdr, body := h.doHeaders(http.MethodGet, "/admin/metrics", r)
	if status != http.StatusOK {
		h.t.Fatalf("/admin/metrics: %d %s", status, body)
	}
	if ct := hdr.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
		h.t.Errorf("Content-Type %q", ct)
	}
	var p expfmt.TextParser
	fams, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		h.t.Fatalf("expfmt: %v in\n%s", err, body)
	}
	return fams
}

func (h *harness) doHeaders(method, path string, hdr map[string]string) (int, http.Header, string) {
	h.t.Helper()
	return h.doWith(method, path, "", func(r *http.Request) {
		for k, v := range hdr {
			r.Header.Set(k, v)
		}
	})
}

// sum adds the values of the family's samples whose labels include want.
func sum(fams map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	f := fams[name]
	if f == nil {
		return 0
	}
	var s float64
	for _, m := range f.Metric {
		ok := true
		for k, v := range want {
			found := false
			for _, l := range m.Label {
				if l.GetName() == k && l.GetValue() == v {
					found = true
				}
			}
			ok = ok && found
		}
		if !ok {
			continue
		}
		switch {
		case m.Counter != nil:
			s += m.Counter.GetValue()
		case m.Gauge != nil:
			s += m.Gauge.GetValue()
		case m.Histogram != nil:
			s += float64(m.Histogram.GetSampleCount())
		}
	}
	return s
}

// The metrics count the traffic sent, summed in the chain object, and survive a new runtime (an evicted
// isolate and object: memory gone, storage kept).
func TestMetricsCountTraffic(t *testing.T) {
	a := evmtest.NewNode(t, "a", 1, 100)
	b := evmtest.NewNode(t, "b", 1, 100)
	h := started(t, map[string]string{"METRICS_TOKEN": metricsToken}, upstream{"eth", "a", a.URL}, upstream{"eth", "b", b.URL})
	for range 10 {
		if s, got := h.post("eth", rpcBody); s != 200 {
			t.Fatalf("%d %s", s, got)
		}
	}
	h.post("eth", `[{"jsonrpc":"2.0","id":1,"method":"eth_call","params":[{"to":"0x0"},"latest"]},{"jsonrpc":"2.0","id":2,"method":"eth_getBalance","params":["0x0","latest"]}]`)
	h.post("eth", `{"jsonrpc":"2.0","id":1,"method":"made_up_method","params":[]}`)
	h.post("eth", `{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[]}`) // answered locally

	// One upstream fails: each request that tries it first is retried on the other.
	a.SetFault(evmtest.Status500)
	for range 6 {
		if s, got := h.post("eth", `{"jsonrpc":"2.0","id":1,"method":"eth_getBalance","params":["0x0","latest"]}`); s != 200 {
			t.Fatalf("%d %s", s, got)
		}
	}
	check := func(fams map[string]*dto.MetricFamily) {
		t.Helper()
		for _, c := range []struct {
			name   string
			labels map[string]string
			want   float64
		}{
			{"evmlb_requests_total", map[string]string{"chain": "eth", "method": "eth_call", "outcome": "ok"}, 10},
			{"evmlb_requests_total", map[string]string{"chain": "eth", "method": "batch", "outcome": "ok"}, 1},
			{"evmlb_requests_total", map[string]string{"chain": "eth", "method": "other"}, 1},
			{"evmlb_requests_total", map[string]string{"chain": "eth", "method": "eth_chainId", "outcome": "local"}, 1},
			{"evmlb_requests_total", map[string]string{"chain": "eth", "method": "eth_getBalance", "outcome": "ok"}, 6},
			{"evmlb_requests_total", map[string]string{"chain": "eth"}, 19},
			{"evmlb_request_duration_seconds", map[string]string{"chain": "eth"}, 19},
			// every request but the local one had exactly one good attempt
			{"evmlb_upstream_requests_total", map[string]string{"chain": "eth", "class": "ok"}, 18},
			{"evmlb_upstream_requests_total", map[string]string{"chain": "eth", "upstream": "b", "method": "eth_getBalance", "class": "ok"}, 6},
			{"evmlb_upstream_requests_total", map[string]string{"chain": "eth", "upstream": "a", "method": "eth_getBalance", "class": "ok"}, 0},
			{"evmlb_upstream_state", map[string]string{"chain": "eth", "upstream": "b", "state": "healthy"}, 1},
			{"evmlb_upstream_state", map[string]string{"chain": "eth", "upstream": "b"}, 1},
			{"evmlb_upstream_head_block", map[string]string{"chain": "eth", "upstream": "b"}, 100},
			{"evmlb_upstream_lag_blocks", map[string]string{"chain": "eth", "upstream": "b"}, 0},
			{"evmlb_chain_head_block", map[string]string{"chain": "eth"}, 100},
			{"evmlb_hedges_total", map[string]string{"chain": "eth"}, 0},
		} {
			if got := sum(fams, c.name, c.labels); got != c.want {
				t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
			}
		}
		// Failed attempts are a's, each followed by a retry; their durations are in a's histogram.
		failed := sum(fams, "evmlb_upstream_requests_total", map[string]string{"upstream": "a"}) - sum(fams, "evmlb_upstream_requests_total", map[string]string{"upstream": "a", "class": "ok"})
		if retries := sum(fams, "evmlb_retries_total", nil); failed == 0 || retries != failed {
			t.Errorf("failed attempts %v, retries %v: want equal and > 0", failed, retries)
		}
		if got, want := sum(fams, "evmlb_upstream_request_duration_seconds", nil), sum(fams, "evmlb_upstream_requests_total", nil); got != want {
			t.Errorf("upstream durations count %v, attempts %v", got, want)
		}
	}
	fams := h.scrape()
	check(fams)
	for _, n := range []string{"evmlb_requests_total", "evmlb_request_duration_seconds", "evmlb_upstream_requests_total",
		"evmlb_upstream_request_duration_seconds", "evmlb_upstream_head_block", "evmlb_upstream_lag_blocks",
		"evmlb_upstream_state", "evmlb_chain_head_block", "evmlb_retries_total", "evmlb_hedges_total", "evmlb_breaker_transitions_total",
		"evmlb_logs_splits_total", "evmlb_logs_pieces_total"} {
		if fams[n] == nil {
			t.Errorf("no %s", n)
		}
	}

	// A new runtime (isolate and objects evicted): the chain object's counts come back from storage; its heights
	// (head and state gauges) once the upstreams' next checks report them (issue 17: nothing stored is served
	// before current reports confirm it).
	h.restartApp()
	h.checks(5 * time.Second)
	check(h.scrape())
}

// Breaker transitions are counted when the chain's table opens an upstream's breaker.
func TestMetricsBreakerTransitions(t *testing.T) {
	a := evmtest.NewNode(t, "a", 1, 100)
	b := evmtest.NewNode(t, "b", 1, 100)
	h := started(t, map[string]string{"METRICS_TOKEN": metricsToken}, upstream{"eth", "a", a.URL}, upstream{"eth", "b", b.URL})
	a.SetFault(evmtest.Status500)
	h.post("eth", rpcBody)
	for range 6 { // failing health checks open the breaker (5 consecutive failures)
		h.checks(2 * time.Minute)
	}
	fams := h.scrape()
	if got := sum(fams, "evmlb_breaker_transitions_total", map[string]string{"upstream": "a", "to": "open"}); got < 1 {
		t.Errorf("breaker transitions to open: %v", got)
	}
	// the breaker's open time may have passed with the checks' back-off: failing or recovering (half-open)
	if got := sum(fams, "evmlb_upstream_state", map[string]string{"upstream": "a", "state": "failing"}) + sum(fams, "evmlb_upstream_state", map[string]string{"upstream": "a", "state": "recovering"}); got != 1 {
		t.Errorf("a neither failing nor recovering: %v", got)
	}
	if got := sum(fams, "evmlb_upstream_state", map[string]string{"upstream": "a"}); got != 1 {
		t.Errorf("a in %v states", got)
	}
}

// /admin/metrics takes admin basic auth or the bearer METRICS_TOKEN; the token opens nothing else.
func TestMetricsAuth(t *testing.T) {
	a := evmtest.NewNode(t, "a", 1, 100)
	h := newHarness(t, map[string]string{"METRICS_TOKEN": metricsToken}, upstream{"eth", "a", a.URL})
	bearer := func(tok string) map[string]string { return map[string]string{"Authorization": "Bearer " + tok} }
	for _, c := range []struct {
		path string
		hdr  map[string]string
		want int
	}{
		{"/admin/metrics", bearer(metricsToken), 200},
		{"/admin/metrics", map[string]string{"Authorization": "bearer " + metricsToken}, 200},
		{"/admin/metrics", bearer(metricsToken + "x"), 401},
		{"/admin/metrics", bearer(""), 401},
		{"/admin/metrics", nil, 401},
		{"/admin/chains", bearer(metricsToken), 401},
		{"/admin", bearer(metricsToken), 401},
	} {
		if s, _, b := h.doHeaders(http.MethodGet, c.path, c.hdr); s != c.want {
			t.Errorf("%s %v: %d %s, want %d", c.path, c.hdr, s, b, c.want)
		}
	}
	if s, _, b := h.do(http.MethodGet, "/admin/metrics", "", true); s != 200 {
		t.Errorf("basic auth: %d %s", s, b)
	}
	for _, l := range h.host.Logs() {
		if strings.Contains(l, metricsToken) {
			t.Errorf("log leaks the token: %s", l)
		}
	}
	// No admin password: the token alone still opens the metrics.
	h2 := startHarness(t, map[string]string{"UPSTREAM_CONFIG": configJSON(upstream{"eth", "a", a.URL}), "METRICS_TOKEN": metricsToken})
	if s, _, b := h2.doHeaders(http.MethodGet, "/admin/metrics", bearer(metricsToken)); s != 200 {
		t.Errorf("token without admin password: %d %s", s, b)
	}
	if s, _, _ := h2.doHeaders(http.MethodGet, "/admin/chains", bearer(metricsToken)); s != http.StatusServiceUnavailable {
		t.Errorf("admin without password: %d", s)
	}
}

// The dashboard is one self-contained page behind admin auth; its JSON shows each upstream's state.
func TestDashboard(t *testing.T) {
	a := evmtest.NewNode(t, "a", 1, 100)
	b := evmtest.NewNode(t, "b", 1, 100)
	h := started(t, nil, upstream{"eth", "a", a.URL}, upstream{"eth", "b", b.URL})
	if s, _, _ := h.do(http.MethodGet, "/admin", "", false); s != 401 {
		t.Errorf("no auth: %d", s)
	}
	s, hdr, page := h.do(http.MethodGet, "/admin", "", true)
	if s != 200 || !strings.HasPrefix(hdr.Get("Content-Type"), "text/html") || !strings.Contains(page, "/admin/dashboard.json") {
		t.Fatalf("%d %v %.200s", s, hdr, page)
	}
	if csp := hdr.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "script-src 'sha256-") {
		t.Errorf("CSP %q", csp)
	}
	for _, bad := range []string{"<script src", "<link rel=\"stylesheet\"", "https://"} {
		if strings.Contains(page, bad) {
			t.Errorf("page holds %q", bad)
		}
	}
	if len(page) > 16<<10 {
		t.Errorf("page is %d bytes", len(page))
	}
	a.SetFault(evmtest.Status500)
	for range 6 { // failing health checks open the breaker (5 consecutive failures)
		h.checks(2 * time.Minute)
	}
	for range 10 {
		h.post("eth", rpcBody)
	}
	var d struct{ Chains []DashboardChain }
	h.admin(http.MethodGet, "/admin/dashboard.json", &d)
	if len(d.Chains) != 1 || len(d.Chains[0].Upstreams) != 2 {
		t.Fatalf("%+v", d)
	}
	c := d.Chains[0]
	if c.Head != 100 || c.RPS <= 0 || len(c.Spark) != dashboardMinutes || c.Spark[dashboardMinutes-1] != 10 {
		t.Errorf("chain %+v", c)
	}
	for _, u := range c.Upstreams {
		if strings.Contains(u.Endpoint, "/v3/") || strings.Count(u.Endpoint, "/") > 2 {
			t.Errorf("endpoint %q is more than scheme and host", u.Endpoint)
		}
		switch u.Name {
		case "a":
			if (u.State != "failing" && u.State != "recovering") || u.Reason == "" {
				t.Errorf("a: %+v", u)
			}
		case "b":
			if u.State != "healthy" || u.ErrorRate != 0 || u.P50MS <= 0 || u.Height != 100 {
				t.Errorf("b: %+v", u)
			}
		}
	}
}

// An upstream that never answered a health check and fails them (one refusing connections, one answering HTTP
// 404) is down, with a reason that says how it fails and nothing of its URL, in /admin/upstreams, /admin/chains,
// the dashboard's JSON and evmlb_upstream_state; a healthy one beside them stays healthy.
func TestNeverAnsweredShownDown(t *testing.T) {
	a := evmtest.NewNode(t, "a", 1, 100)
	notFound := httptest.NewServer(http.NotFoundHandler())
	defer notFound.Close()
	h := started(t, map[string]string{"METRICS_TOKEN": metricsToken},
		upstream{"eth", "a", a.URL}, upstream{"eth", "refused", evmtest.RefusingURL(t)},
		upstream{"eth", "missing", notFound.URL + "/v3/" + evmtest.Secret})
	for i := 0; i < 10 && h.upstreamEntry("missing").Failures < 3; i++ {
		h.checks(5 * time.Second)
	}
	want := map[string]string{
		"refused": "never answered a health check: 3 consecutive failures (last: connection refused or host not found)",
		"missing": "never answered a health check: 3 consecutive failures (last: HTTP 404)",
	}
	for name, reason := range want {
		e := h.upstreamEntry(name)
		if e.Failures != 3 || e.State != string(balance.Down) || e.Reason != reason {
			t.Errorf("/admin/upstreams %s: %d failures, state %q, reason %q; want 3, down, %q", name, e.Failures, e.State, e.Reason, reason)
		}
		if state, r, _ := h.chainRow(name); state != "down" || r != reason {
			t.Errorf("/admin/chains %s: %q %q", name, state, r)
		}
	}
	if e := h.upstreamEntry("missing"); e.LastStatus != 404 || e.LastErrorClass != "http_status" {
		t.Errorf("missing: last_http_status %d, class %q", e.LastStatus, e.LastErrorClass)
	}
	var d struct{ Chains []DashboardChain }
	h.admin(http.MethodGet, "/admin/dashboard.json", &d)
	for _, u := range d.Chains[0].Upstreams {
		if r, dead := want[u.Name]; (dead && (u.State != balance.Down || u.Reason != r)) || (!dead && u.State != balance.Healthy) {
			t.Errorf("dashboard %s: %q %q", u.Name, u.State, u.Reason)
		}
	}
	fams := h.scrape()
	for name, state := range map[string]string{"a": "healthy", "refused": "down", "missing": "down"} {
		if got := sum(fams, "evmlb_upstream_state", map[string]string{"upstream": name, "state": state}); got != 1 {
			t.Errorf("evmlb_upstream_state{upstream=%q,state=%q} = %v", name, state, got)
		}
		if got := sum(fams, "evmlb_upstream_state", map[string]string{"upstream": name}); got != 1 {
			t.Errorf("%s in %v states", name, got)
		}
	}
}

// What upstreams proved they lack is shown (issue 20: capabilities learned): the method held, the block below which
// the state is missing, and each call routed without the upstream.
func TestMetricsCaps(t *testing.T) {
	a := evmtest.NewNode(t, "a", 1, 1000)
	b := evmtest.NewNode(t, "b", 1, 1000)
	h := started(t, map[string]string{"METRICS_TOKEN": metricsToken}, upstream{"eth", "a", a.URL}, upstream{"eth", "b", b.URL})
	for _, n := range []*evmtest.Node{a, b} {
		n.SetUnsupported("eth_getBlockReceipts")
		n.SetMissingData("eth_getBalance")
	}
	b.SetUnsupported()
	b.SetMissingData()
	bodies := []string{
		`{"jsonrpc":"2.0","id":1,"method":"eth_getBlockReceipts","params":["0x10"]}`,
		`{"jsonrpc":"2.0","id":1,"method":"eth_getBalance","params":["0x0000000000000000000000000000000000000001","0x10"]}`,
	}
	// b failing: each call reaches a, whatever the order, and a proves it lacks both (its errors are the answers).
	b.SetFault(evmtest.Status500)
	for i, want := range []string{"-32601", "header not found"} {
		if _, got := h.post("eth", bodies[i]); !strings.Contains(got, want) {
			t.Fatalf("%s: %s, want a's error", bodies[i], got)
		}
	}
	b.SetFault(evmtest.None)
	asked := a.Calls()
	const calls = 6
	for i := range calls {
		for _, body := range bodies {
			if s, got := h.post("eth", body); s != 200 || strings.Contains(got, `"error"`) {
				t.Fatalf("call %d: %d %s", i, s, got)
			}
		}
	}
	fams := h.scrape()
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"evmlb_upstream_lacks_method", map[string]string{"upstream": "a", "method": "eth_getBlockReceipts"}, 1},
		{"evmlb_upstream_lacks_method", map[string]string{"upstream": "b"}, 0},
		{"evmlb_upstream_lacks_state_below_block", map[string]string{"upstream": "a"}, 16},
		{"evmlb_upstream_lacks_state_below_block", map[string]string{"upstream": "b"}, 0},
		{"evmlb_upstream_has_state_from_block", map[string]string{"upstream": "b"}, 16},
		{"evmlb_upstream_archive", map[string]string{"upstream": "a"}, 0},
		// every later call was routed without a
		{"evmlb_upstream_skipped_total", map[string]string{"upstream": "a", "lack": "method"}, calls},
		{"evmlb_upstream_skipped_total", map[string]string{"upstream": "a", "lack": "state"}, calls},
		{"evmlb_upstream_skipped_total", map[string]string{"upstream": "b"}, 0},
	} {
		if got := sum(fams, c.name, c.labels); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	if n := a.Calls() - asked; n != 0 {
		t.Errorf("a asked %d more times: it proved it lacks both", n)
	}
	// The dashboard says so too.
	var d struct{ Chains []DashboardChain }
	h.admin(http.MethodGet, "/admin/dashboard.json", &d)
	for _, u := range d.Chains[0].Upstreams {
		c := u.Caps
		_, lacks := c.Methods["eth_getBlockReceipts"]
		if ok := map[string]bool{"a": lacks && len(c.Methods) == 1 && c.StateBelow == 16 && c.StateFrom == 0,
			"b": len(c.Methods) == 0 && c.StateBelow == 0 && c.StateFrom == 16}[u.Name]; !ok {
			t.Errorf("dashboard: %s caps %+v", u.Name, c)
		}
	}
}
