package e2e

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/evmlb/evmlb/e2e/internal/anvil"
	"github.com/evmlb/evmlb/e2e/internal/faultproxy"
	"github.com/evmlb/evmlb/e2e/internal/repo"
	"github.com/evmlb/evmlb/e2e/internal/target"
)

// EnvChromium names the Chromium binary; by default `chromium` (Debian's package) on the PATH.
const EnvChromium = "EVMLB_CHROMIUM"

// dashboardRefresh is the page's refresh period (worker/app/dashboard/page.js).
const dashboardRefresh = 5 * time.Second

func chromiumPath() (string, error) {
	if p := os.Getenv(EnvChromium); p != "" {
		return p, nil
	}
	for _, n := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(n); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("no chromium on the PATH (apt-get install -y chromium, or set %s)", EnvChromium)
}

func TestDashboardBrowserWorkerd(t *testing.T) { testDashboardBrowser(t, workerdHost) }
func TestDashboardBrowserWazero(t *testing.T)  { testDashboardBrowser(t, wazeroHost) }

// testDashboardBrowser loads /admin in headless Chromium: the page loads with no console error, shows every
// upstream, shows two upstreams that never answered (one refusing connections, one answering HTTP 404) as down
// with the reason, and shows a fault injected in one upstream as its new state within one refresh of the moment
// the chain's table has it. Opened in a second browser as http://admin:…@host/admin (credentials in the
// URL), the page refreshes without error. Issue 20: it shows the chain's eth_getLogs splits and pieces, each
// upstream's broadcast results and what it proved it can and cannot serve. It writes a screenshot to build/dashboard.png
// (build/dashboard-<host>.png for wazero).
func testDashboardBrowser(t *testing.T, h target.Host) {
	needHost(t, h)
	chromium, err := chromiumPath()
	need(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	n := anvil.StartT(t, 31337)
	if _, err := n.Mine(ctx, 3); err != nil {
		t.Fatal(err)
	}
	var proxies []*faultproxy.Proxy
	var ups []target.Upstream
	for _, name := range []string{"alpha", "beta", "gamma"} {
		p := faultproxy.StartT(t, n.URL, faultproxy.Options{Path: "/v2/SECRETKEY"})
		proxies = append(proxies, p)
		ups = append(ups, target.Upstream{Chain: "ethereum", Name: name, URL: p.URL()})
	}
	// Two that never answer: a port where nothing listens, and a server answering 404 to everything.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refusing := "http://" + l.Addr().String() + "/v2/SECRETKEY"
	l.Close()
	notFound := httptest.NewServer(http.NotFoundHandler())
	defer notFound.Close()
	dead := map[string]string{ // name → what its reason names
		"refused":  "connection refused or host not found",
		"notfound": "HTTP 404",
	}
	if h.Name() == "workerd" {
		// workerd's fetch error for a refused connection does not say so: it is classed network there.
		dead["refused"] = "network"
	}
	ups = append(ups, target.Upstream{Chain: "ethereum", Name: "refused", URL: refusing},
		target.Upstream{Chain: "ethereum", Name: "notfound", URL: notFound.URL + "/v2/SECRETKEY"})
	// Issue 20: alpha takes eth_getLogs ranges of 2 blocks at most (a wider range is split), gamma is an archive node.
	entries := make([]map[string]any, len(ups))
	for i, u := range ups {
		entries[i] = map[string]any{"chain": u.Chain, "name": u.Name, "upstream": u.URL}
	}
	entries[0]["max_logs_range"] = 2
	entries[2]["archive"] = true
	cfg, err := json.Marshal(map[string]any{"upstreams": entries})
	if err != nil {
		t.Fatal(err)
	}
	const pw = "dash-pw"
	inst := target.Start(t, h, target.Config{RawUpstreamConfig: string(cfg), AdminPassword: pw, Env: DefaultEnv})
	auth := "Basic " + base64.StdEncoding.EncodeToString([]byte("admin:"+pw))
	get := func(path string) (int, []byte) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, inst.URL+path, nil)
		req.Header.Set("Authorization", auth)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	post := func(body string) string {
		resp, err := http.Post(inst.URL+"/ethereum", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	// Some traffic, so that rates and sparklines have something to show.
	for i := range 30 {
		post(fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"eth_blockNumber","params":[]}`, i))
	}
	// Issue 20's three: an eth_getLogs of 4 blocks (split in 2 pieces for alpha), a transaction (broadcast to the
	// three upstreams that answer), a method anvil does not offer (learned as lacked).
	raw, hash, err := signTransfer(ctx, n)
	if err != nil {
		t.Fatal(err)
	}
	for _, body := range []string{
		`{"jsonrpc":"2.0","id":1,"method":"eth_getLogs","params":[{"fromBlock":"0x0","toBlock":"0x3"}]}`,
		`{"jsonrpc":"2.0","id":2,"method":"eth_sendRawTransaction","params":["` + raw + `"]}`,
		`{"jsonrpc":"2.0","id":3,"method":"eth_getUserOperationByHash","params":["` + hash + `"]}`,
	} {
		t.Logf("%.60s… → %.200s", body, post(body))
	}

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium),
		chromedp.Flag("headless", true), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.NoFirstRun,
		chromedp.WindowSize(1100, 760),
	)
	actx, acancel := chromedp.NewExecAllocator(ctx, opts...)
	defer acancel()
	bctx, bcancel := chromedp.NewContext(actx)
	defer bcancel()

	var mu sync.Mutex
	var problems []string
	listen := func(ev any) {
		mu.Lock()
		defer mu.Unlock()
		switch e := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			if e.Type == runtime.APITypeError || e.Type == runtime.APITypeWarning || e.Type == runtime.APITypeAssert {
				var args []string
				for _, a := range e.Args {
					args = append(args, string(a.Value)+a.Description)
				}
				problems = append(problems, fmt.Sprintf("console.%s: %s", e.Type, strings.Join(args, " ")))
			}
		case *runtime.EventExceptionThrown:
			problems = append(problems, "exception: "+e.ExceptionDetails.Error())
		case *cdplog.EventEntryAdded:
			if e.Entry.Level == cdplog.LevelError || e.Entry.Level == cdplog.LevelWarning {
				problems = append(problems, fmt.Sprintf("log %s (%s): %s %s", e.Entry.Level, e.Entry.Source, e.Entry.Text, e.Entry.URL))
			}
		}
	}
	chromedp.ListenTarget(bctx, listen)
	if err := chromedp.Run(bctx,
		network.Enable(), runtime.Enable(), cdplog.Enable(),
		network.SetExtraHTTPHeaders(network.Headers{"Authorization": auth}),
		chromedp.Navigate(inst.URL+"/admin"),
		chromedp.WaitVisible(`tr[data-upstream="ethereum/gamma"]`, chromedp.ByQuery),
	); err != nil {
		t.Fatalf("loading the dashboard: %v\n%s", err, inst.Logs())
	}
	var rows []*cdp.Node
	if err := chromedp.Run(bctx, chromedp.Nodes(`tr[data-upstream]`, &rows, chromedp.ByQueryAll)); err != nil {
		t.Fatal(err)
	}
	if len(rows) != len(ups) {
		t.Errorf("the page shows %d upstreams, want %d", len(rows), len(ups))
	}
	for _, u := range ups {
		var text string
		if err := chromedp.Run(bctx, chromedp.Text(fmt.Sprintf(`tr[data-upstream="ethereum/%s"]`, u.Name), &text, chromedp.ByQuery)); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(text, u.Name) || strings.Contains(text, "SECRETKEY") {
			t.Errorf("row of %s: %q", u.Name, text)
		}
	}
	var html string
	if err := chromedp.Run(bctx, chromedp.OuterHTML("html", &html, chromedp.ByQuery)); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(html, "SECRETKEY") || strings.Contains(html, "/v2/") {
		t.Error("the page shows an upstream URL beyond scheme and host")
	}

	// The two that never answered: down, with how they fail (their health checks run every second, and the
	// first failure makes them down; 5 open the breaker after about 15 s of back-off, then they are failing).
	deadShown := fmt.Sprintf(`[%q, %q].every(n => {
		const r = document.querySelector('tr[data-upstream="ethereum/' + n + '"]');
		return r && r.dataset.state === "down" && r.querySelector("td.reason").textContent.includes("never answered a health check");
	})`, "refused", "notfound")
	if err := chromedp.Run(bctx, chromedp.Poll(deadShown, nil, chromedp.WithPollingTimeout(2*dashboardRefresh+5*time.Second))); err != nil {
		_, b := get("/admin/upstreams")
		t.Errorf("the page does not show refused and notfound as down: %v\n/admin/upstreams: %s", err, b)
	}
	for name, words := range dead {
		var reason string
		if err := chromedp.Run(bctx, chromedp.Text(fmt.Sprintf(`tr[data-upstream="ethereum/%s"] td.reason`, name), &reason, chromedp.ByQuery)); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(reason, "(last: "+words+")") || strings.Contains(reason, "SECRETKEY") || strings.Contains(reason, "127.0.0.1") {
			t.Errorf("%s's reason on the page: %q, want it to name %q and nothing of its URL", name, reason, words)
		} else {
			t.Logf("%s's reason on the page: %s", name, reason)
		}
	}

	// Issue 20 on the page: the chain's eth_getLogs splits and pieces, how each upstream took the broadcast
	// transaction (those that never answer never took it: not yet checked when it was sent, they may have been
	// tried, "failed"), the archive setting and the method learned as lacked. Isolates report
	// what they saw to the chain's object when a client request finds their snapshot old: requests go on meanwhile.
	issue20 := `(() => {
		const row = n => document.querySelector('tr[data-upstream="ethereum/' + n + '"]');
		const logs = document.querySelector('section[data-chain="ethereum"] [data-role="logs"]');
		const bc = n => row(n).querySelector('td[data-role="broadcast"]').textContent;
		const caps = n => row(n).querySelector(".caps").textContent;
		const live = ["alpha", "beta", "gamma"];
		return !!logs && logs.textContent === "getLogs split 1 in 2 pieces" &&
			live.every(n => /^(accepted|known) 1$/.test(bc(n))) && live.some(n => bc(n) === "accepted 1") &&
			["refused", "notfound"].every(n => !/accepted|known/.test(bc(n))) && caps("gamma").startsWith("archive") &&
			live.some(n => caps(n).includes("lacks eth_getUserOperationByHash until "));
	})()`
	var shown20 bool
	for deadline := time.Now().Add(2*dashboardRefresh + 10*time.Second); !shown20 && time.Now().Before(deadline); time.Sleep(250 * time.Millisecond) {
		post(`{"jsonrpc":"2.0","id":9,"method":"eth_chainId","params":[]}`)
		if err := chromedp.Run(bctx, chromedp.Evaluate(issue20, &shown20)); err != nil {
			t.Fatal(err)
		}
	}
	if !shown20 {
		var chain string
		_ = chromedp.Run(bctx, chromedp.Text(`section[data-chain="ethereum"]`, &chain, chromedp.ByQuery))
		_, b := get("/admin/dashboard.json")
		t.Errorf("the page does not show issue 20's logs splits, broadcast results and capabilities:\n%s\n/admin/dashboard.json: %s", chain, b)
	} else {
		var logs, gamma string
		_ = chromedp.Run(bctx, chromedp.Text(`section[data-chain="ethereum"] [data-role="logs"]`, &logs, chromedp.ByQuery),
			chromedp.Text(`tr[data-upstream="ethereum/gamma"]`, &gamma, chromedp.ByQuery))
		t.Logf("issue 20 on the page: %q; gamma's row: %q", logs, gamma)
	}

	// A fault in beta: it answers 429, and its health check (every second) puts it in cool-down.
	if err := proxies[1].SetFault(faultproxy.HTTP429); err != nil {
		t.Fatal(err)
	}
	var state string
	var since time.Time
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		_, b := get("/admin/chains")
		var cs struct {
			Chains []struct {
				Table []struct {
					Name  string `json:"name"`
					State string `json:"state"`
				} `json:"table"`
			} `json:"chains"`
		}
		_ = json.Unmarshal(b, &cs)
		for _, c := range cs.Chains {
			for _, r := range c.Table {
				if r.Name == "beta" && r.State != "healthy" && r.State != "" {
					state, since = r.State, time.Now()
				}
			}
		}
		if state != "" {
			break
		}
	}
	if state == "" {
		t.Fatalf("the chain's table never showed beta's fault\n%s", inst.Logs())
	}
	var shown string
	for deadline := since.Add(dashboardRefresh + 2*time.Second); ; time.Sleep(100 * time.Millisecond) {
		if err := chromedp.Run(bctx, chromedp.Evaluate(`document.querySelector('tr[data-upstream="ethereum/beta"]').dataset.state`, &shown)); err != nil {
			t.Fatal(err)
		}
		if shown == state || time.Now().After(deadline) {
			break
		}
	}
	if shown != state {
		t.Errorf("beta is %s in the table since %v; the page still shows %q one refresh later", state, since, shown)
	} else {
		t.Logf("beta shown as %s %v after the table had it", state, time.Since(since).Round(100*time.Millisecond))
	}

	var png []byte
	if err := chromedp.Run(bctx, chromedp.FullScreenshot(&png, 100)); err != nil {
		t.Fatal(err)
	}
	root, err := repo.Root()
	if err != nil {
		t.Fatal(err)
	}
	name := "dashboard.png"
	if h.Name() != "workerd" {
		name = "dashboard-" + h.Name() + ".png"
	}
	out := filepath.Join(root, "build", name)
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(out, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", out)

	// Opened with credentials in the URL, in a browser of its own (no credentials cached): the page refreshes
	// (twice: the first load and one refresh later), with no error, and shows every upstream.
	cctx, ccancel := chromedp.NewContext(actx)
	defer ccancel()
	chromedp.ListenTarget(cctx, listen)
	withCreds := strings.Replace(inst.URL, "http://", "http://admin:"+pw+"@", 1) + "/admin"
	refreshed := `Number(document.body.dataset.loaded || 0) >= 2 && document.getElementById("status").textContent === ""`
	var status, credHTML string
	err = chromedp.Run(cctx, network.Enable(), runtime.Enable(), cdplog.Enable(),
		chromedp.Navigate(withCreds),
		chromedp.Poll(refreshed, nil, chromedp.WithPollingTimeout(2*dashboardRefresh+5*time.Second)))
	if err := chromedp.Run(cctx, chromedp.Evaluate(`document.getElementById("status").textContent`, &status), chromedp.OuterHTML("html", &credHTML, chromedp.ByQuery)); err != nil {
		t.Fatal(err)
	}
	if err != nil {
		t.Errorf("opened with credentials in the URL, the page did not refresh twice without error: %v; status %q", err, status)
	}
	if got := strings.Count(credHTML, "<tr data-upstream="); got != len(ups) {
		t.Errorf("opened with credentials in the URL, the page shows %d upstreams, want %d", got, len(ups))
	}
	if strings.Contains(credHTML, pw) {
		t.Error("the page shows the admin password of its URL")
	}
	mu.Lock()
	defer mu.Unlock()
	for _, p := range problems {
		t.Errorf("browser: %s", p)
	}
}
