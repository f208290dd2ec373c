// Package e2e holds the end-to-end scenarios of the balancer: one table
// (Scenarios) run against every host (workerd through wrangler dev, and the
// wazero host), with real anvil nodes as upstreams behind fault proxies. Each
// scenario records what it observed (status codes and normalized bodies);
// the records of two hosts must be equal.
package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/evmlb/evmlb/e2e/internal/anvil"
	"github.com/evmlb/evmlb/e2e/internal/faultproxy"
	"github.com/evmlb/evmlb/e2e/internal/rpc"
	"github.com/evmlb/evmlb/e2e/internal/target"
)

// DefaultEnv is the balancer's environment in every scenario unless the
// scenario overrides it: short health checks and attempt timeouts keep the
// suite fast.
var DefaultEnv = map[string]string{
	"EVMLB_HEALTH_INTERVAL": "1s",
	"EVMLB_ATTEMPT_TIMEOUT": "2s",
}

// Step is one observation of a scenario: a named exchange, its HTTP status,
// and its body normalized so that values which legitimately change from run
// to run (ports, hashes, timestamps, the host's name) do not count.
type Step struct {
	Name   string
	Status int
	Body   string
}

// Record is everything one scenario observed on one host, in order.
type Record struct {
	Steps []Step
}

// S is one scenario's world on one host: its test, the host, the nodes and
// proxies it made, and its record. Every process it starts stops in Cleanup.
type S struct {
	*testing.T
	// Host runs the balancer.
	Host target.Host
	// Ctx bounds the scenario.
	Ctx context.Context
	// Password is the scenario's ADMIN_PASSWORD, a secret.
	Password string

	rec     *Record
	client  *http.Client
	mu      sync.Mutex
	secrets []string
	// pathKeys are secrets a client sends in the URL's path (issue 22's client keys, POST /{chain}/{key}): wrangler
	// dev's own request log names the path, so workerd's log may hold them there and nowhere else (pathKeyLines).
	pathKeys []string
	// names maps addresses (host:port) that change between runs to stable
	// names, for normalization.
	names map[string]string
	insts []*target.Instance
}

// newS makes the world of one scenario run.
func newS(t *testing.T, h target.Host) *S {
	limit := 5 * time.Minute
	if d, err := time.ParseDuration(os.Getenv(EnvWSDuration)); err == nil && d > 0 {
		limit += d // issue 21's long runs (EVMLB_WS_DURATION=5m) on top of a scenario's five minutes
	}
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	t.Cleanup(cancel)
	s := &S{T: t, Host: h, Ctx: ctx, rec: &Record{}, names: map[string]string{}}
	s.Password = "pw-" + s.Secret()
	s.client = &http.Client{
		Timeout:   60 * time.Second,
		Transport: &secretCheck{s: s, next: clientTransport(0)},
	}
	t.Cleanup(func() {
		// Logs are checked once the instances are stopped (Cleanup runs
		// in reverse order, so they are still running here: read now).
		for _, inst := range s.insts {
			s.checkNoSecret("the "+inst.Host+" log", s.dropPathKeys(inst.Host, inst.Logs()))
		}
	})
	return s
}

// Secret returns a new random token and registers it as a secret: the
// scenario fails if it appears in any answer or log.
func (s *S) Secret() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	tok := strings.ToUpper(hex.EncodeToString(b))
	s.mu.Lock()
	s.secrets = append(s.secrets, tok)
	s.mu.Unlock()
	return tok
}

// AddSecret registers tok (a client key, its hash) as a secret: the scenario fails if it appears in any answer or
// log.
func (s *S) AddSecret(tok string) {
	s.mu.Lock()
	s.secrets = append(s.secrets, tok)
	s.mu.Unlock()
}

// PathKey marks a registered secret as one a client sends in the URL's path: see pathKeyLines.
func (s *S) PathKey(tok string) {
	s.mu.Lock()
	s.pathKeys = append(s.pathKeys, tok)
	s.mu.Unlock()
}

// pathKeyLine matches a line of wrangler dev's request log ("[wrangler:info] POST /ethereum/KEY 200 OK (3ms)"):
// the dev server's access log, written by wrangler and not by the balancer, names every request's path. A key
// given in the path is there as a provider's key in its URL is in any access log (Bearer keeps it out: the request
// log never shows headers); the balancer's own lines must still never hold it.
var pathKeyLine = regexp.MustCompile(`^\[wrangler:info?\] [A-Z]+ /\S* \d{3} `)

// dropPathKeys returns logs with the path keys cut out of workerd's request-log lines (pathKeyLine), and only
// there: a path key anywhere else, and every other secret, is still found.
func (s *S) dropPathKeys(host, logs string) []byte {
	s.mu.Lock()
	keys := append([]string(nil), s.pathKeys...)
	s.mu.Unlock()
	if host != "workerd" || len(keys) == 0 {
		return []byte(logs)
	}
	lines := strings.SplitAfter(logs, "\n")
	for i, l := range lines {
		if pathKeyLine.MatchString(l) {
			for _, k := range keys {
				l = strings.ReplaceAll(l, k, "<path key>")
			}
			lines[i] = l
		}
	}
	return []byte(strings.Join(lines, ""))
}

// leaks returns the registered secrets found in b, each with some context.
func (s *S) leaks(b []byte) []string {
	s.mu.Lock()
	secrets := append([]string(nil), s.secrets...)
	s.mu.Unlock()
	var out []string
	for _, sec := range secrets {
		if i := bytes.Index(b, []byte(sec)); i >= 0 {
			lo, hi := max(0, i-80), min(len(b), i+len(sec)+40)
			out = append(out, fmt.Sprintf("%q: …%s…", sec, b[lo:hi]))
		}
	}
	return out
}

// longestSecret is the length of the longest registered secret.
func (s *S) longestSecret() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, sec := range s.secrets {
		n = max(n, len(sec))
	}
	return n
}

// checkNoSecret fails the scenario when b holds a registered secret.
func (s *S) checkNoSecret(where string, b []byte) {
	for _, l := range s.leaks(b) {
		s.Errorf("secret leaked in %s: %s", where, l)
	}
}

// secretCheck is the scenario client's transport: it reads every answer and
// checks its headers and body for the scenario's secrets.
type secretCheck struct {
	s    *S
	next http.RoundTripper
}

func (c *secretCheck) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := c.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, rpc.MaxBody))
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	where := req.Method + " " + req.URL.Path
	var hdr bytes.Buffer
	_ = resp.Header.Write(&hdr)
	c.s.checkNoSecret("the headers of "+where, hdr.Bytes())
	c.s.checkNoSecret("the body of "+where, body)
	resp.Body = io.NopCloser(bytes.NewReader(body))
	return resp, nil
}

// Node starts an anvil with chainID and mines it to height.
func (s *S) Node(chainID, height uint64) *anvil.Node {
	s.Helper()
	n := anvil.StartT(s.T, chainID)
	if _, err := n.Mine(s.Ctx, height); err != nil {
		s.Fatal(err)
	}
	s.name(strings.TrimPrefix(n.URL, "http://"), fmt.Sprintf("<node %d>", chainID))
	return n
}

// Upstream puts a fault proxy in front of n and returns it with its
// UPSTREAM_CONFIG entry. The proxy requires an API key in its path and query,
// both registered as secrets, as a paid provider does.
func (s *S) Upstream(n *anvil.Node, chain, name string) (*faultproxy.Proxy, target.Upstream) {
	s.Helper()
	p := faultproxy.StartT(s.T, n.URL, faultproxy.Options{
		Path:  "/v2/KEY" + s.Secret(),
		Query: "apikey=Q" + s.Secret(),
	})
	s.name(p.Addr(), "<upstream "+name+">")
	return p, target.Upstream{Chain: chain, Name: name, URL: p.URL()}
}

func (s *S) name(addr, name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.names[addr] = name
}

// Balancer is one running balancer seen by a scenario.
type Balancer struct {
	s    *S
	Inst *target.Instance
}

// Start runs the balancer on the scenario's host with the upstreams, the
// scenario's password and DefaultEnv overridden by env.
func (s *S) Start(ups []target.Upstream, env map[string]string) *Balancer {
	s.Helper()
	return s.StartConfig(target.Config{Upstreams: ups, Env: env})
}

// StartConfig runs the balancer with cfg, filling in the password and the
// defaults it leaves empty.
func (s *S) StartConfig(cfg target.Config) *Balancer {
	s.Helper()
	return s.startOn(s.Host, cfg)
}

// startOn is StartConfig on h, a variant of the scenario's host (the wazero host with one Worker runtime).
func (s *S) startOn(h target.Host, cfg target.Config) *Balancer {
	s.Helper()
	if cfg.AdminPassword == "" {
		cfg.AdminPassword = s.Password
	}
	env := map[string]string{}
	for k, v := range DefaultEnv {
		env[k] = v
	}
	for k, v := range cfg.Env {
		env[k] = v
	}
	cfg.Env = env
	inst := target.Start(s.T, h, cfg)
	s.insts = append(s.insts, inst)
	s.name(strings.TrimPrefix(inst.URL, "http://"), "<balancer>")
	return &Balancer{s: s, Inst: inst}
}

// Do sends one request to the balancer; a transport error fails the scenario.
func (b *Balancer) Do(method, path string, body []byte, header map[string]string) *rpc.Response {
	b.s.Helper()
	resp, err := rpc.Do(b.s.Ctx, b.s.client, method, b.Inst.URL+path, body, header)
	if err != nil {
		b.s.Fatalf("%s %s: %v\n--- %s log ---\n%s", method, path, err, b.Inst.Host, b.Inst.Logs())
	}
	return resp
}

// Post sends a JSON-RPC body to /chain.
func (b *Balancer) Post(chain string, body []byte) *rpc.Response {
	b.s.Helper()
	return b.Do(http.MethodPost, "/"+chain, body, map[string]string{"Content-Type": "application/json"})
}

// Admin calls an admin endpoint with the right credentials, and the header
// that admin writes need (X-Evmlb-Admin).
func (b *Balancer) Admin(method, path string) *rpc.Response {
	b.s.Helper()
	return b.Do(method, path, nil, map[string]string{"Authorization": basic("admin", b.s.Password), "X-Evmlb-Admin": "1"})
}

func basic(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

// Record adds a step to the scenario's record, normalized by norm.
func (s *S) Record(name string, resp *rpc.Response, norm Normalizer) {
	body := ""
	if norm != nil {
		body = norm(s, resp.Body)
	}
	s.rec.Steps = append(s.rec.Steps, Step{Name: name, Status: resp.Status, Body: body})
}

// Note adds a step that is not an HTTP exchange (a derived fact).
func (s *S) Note(name, fact string) {
	s.rec.Steps = append(s.rec.Steps, Step{Name: name, Body: fact})
}

// Normalizer turns a body into the text recorded for comparison.
type Normalizer func(s *S, body []byte) string

// scrub replaces the run's addresses by stable names.
func (s *S) scrub(text string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	addrs := make([]string, 0, len(s.names))
	for a := range s.names {
		addrs = append(addrs, a)
	}
	sort.Slice(addrs, func(i, j int) bool { return len(addrs[i]) > len(addrs[j]) })
	for _, a := range addrs {
		text = strings.ReplaceAll(text, a, s.names[a])
	}
	return text
}

// NormRPC records JSON-RPC answers (single or batch) with ids, error codes
// and messages, and results kept verbatim.
func NormRPC(s *S, body []byte) string { return normRPC(s, body, true) }

// NormRPCNoResult is NormRPC with every result replaced by "<result>", for
// results that change from run to run (hashes, timestamps).
func NormRPCNoResult(s *S, body []byte) string { return normRPC(s, body, false) }

func normRPC(s *S, body []byte, keep bool) string {
	var v any
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return "not JSON: " + s.scrub(rpc.Trunc(body, 200))
	}
	fix := func(m map[string]any) {
		if _, ok := m["result"]; ok && !keep {
			m["result"] = "<result>"
		}
		if e, ok := m["error"].(map[string]any); ok {
			if _, ok := e["data"]; ok {
				e["data"] = "<data>"
			}
		}
	}
	switch x := v.(type) {
	case map[string]any:
		fix(x)
	case []any:
		for _, el := range x {
			if m, ok := el.(map[string]any); ok {
				fix(m)
			}
		}
	}
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
	return s.scrub(strings.TrimSpace(out.String()))
}

// NormShape records the shape of a JSON body: object keys and value types,
// arrays as the union of their elements' shapes. Values are dropped.
func NormShape(s *S, body []byte) string {
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		return "not JSON"
	}
	return shape(v)
}

func shape(v any) string {
	switch x := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = strconv.Quote(k) + ":" + shape(x[k])
		}
		return "{" + strings.Join(parts, ",") + "}"
	case []any:
		set := map[string]bool{}
		for _, el := range x {
			set[shape(el)] = true
		}
		els := make([]string, 0, len(set))
		for k := range set {
			els = append(els, k)
		}
		sort.Strings(els)
		return "[" + strings.Join(els, "|") + "]"
	case string:
		return "string"
	case float64:
		return "number"
	case bool:
		return "bool"
	case nil:
		return "null"
	}
	return "?"
}

// NormTopKeys records only the top-level keys of a JSON object and the kind
// of each value (object, array, string, …): enough to see that two hosts
// answer the same document, without fields whose presence depends on timing
// (the last health check's error, its time).
func NormTopKeys(s *S, body []byte) string {
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		return "not a JSON object"
	}
	keys := make([]string, 0, len(m))
	for k, v := range m {
		kind := shape(v)
		switch kind[0] {
		case '{':
			kind = "object"
		case '[':
			kind = "array"
		}
		keys = append(keys, k+":"+kind)
	}
	sort.Strings(keys)
	return "{" + strings.Join(keys, ",") + "}"
}

// NormStatusOnly records nothing of the body.
func NormStatusOnly(*S, []byte) string { return "" }

// Compare returns the differences between two hosts' records of one scenario,
// empty when they agree.
func Compare(hostA string, a *Record, hostB string, b *Record) []string {
	var diffs []string
	n := max(len(a.Steps), len(b.Steps))
	for i := range n {
		var sa, sb Step
		if i < len(a.Steps) {
			sa = a.Steps[i]
		}
		if i < len(b.Steps) {
			sb = b.Steps[i]
		}
		if sa != sb {
			diffs = append(diffs, fmt.Sprintf("step %d:\n  %s: %s → %d %s\n  %s: %s → %d %s",
				i, hostA, sa.Name, sa.Status, sa.Body, hostB, sb.Name, sb.Status, sb.Body))
		}
	}
	return diffs
}

// Enabled reports whether scenarios of the given issue run: every issue's by
// default (or with EVMLB_E2E_ISSUES=all); only the listed issues' when
// EVMLB_E2E_ISSUES lists some (comma-separated), to run a part of the table.
func Enabled(issue int) bool {
	v := os.Getenv("EVMLB_E2E_ISSUES")
	if v == "" || v == "all" {
		return true
	}
	for _, f := range strings.Split(v, ",") {
		if strings.TrimSpace(f) == strconv.Itoa(issue) {
			return true
		}
	}
	return false
}

// Run runs every scenario on h, each as a subtest of t, and returns the
// records of those that ran to the end, by scenario name.
func Run(t *testing.T, h target.Host) map[string]*Record {
	records := map[string]*Record{}
	for _, sc := range Scenarios() {
		t.Run(sc.Name, func(t *testing.T) {
			if !Enabled(sc.Issue) {
				t.Skipf("issue %d scenario: set EVMLB_E2E_ISSUES=%d (or all) to run it", sc.Issue, sc.Issue)
			}
			s := newS(t, h)
			sc.Run(s)
			if os.Getenv("EVMLB_E2E_DUMP") == "1" {
				for _, st := range s.rec.Steps {
					t.Logf("record: %s → %d %s", st.Name, st.Status, st.Body)
				}
			}
			if !t.Failed() {
				records[sc.Name] = s.rec
			}
		})
	}
	return records
}

// tail is the last n bytes of s, marked as cut when it is.
func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

// clientIdle is how long the tests' HTTP clients keep an idle connection: less than workerd's server keeps one
// (KJ's HttpServerSettings.pipelineTimeout, 5 s). A client that keeps it longer may send a request on a
// connection at the instant the server closes it; the request then fails ("connection reset by peer", or EOF),
// and Go's transport does not send a POST again. Seen under issue 22's 240 req/s rows about once a minute.
const clientIdle = 2 * time.Second

// clientTransport is an HTTP transport keeping at most conns connections to a host (0: no bound) and none idle
// longer than clientIdle.
func clientTransport(conns int) *http.Transport {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.IdleConnTimeout = clientIdle
	if conns > 0 {
		tr.MaxConnsPerHost, tr.MaxIdleConnsPerHost, tr.MaxIdleConns = conns, conns, max(conns, tr.MaxIdleConns)
	}
	return tr
}
