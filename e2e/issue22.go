package e2e

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/evmlb/evmlb/e2e/internal/faultproxy"
	"github.com/evmlb/evmlb/e2e/internal/rpc"
	"github.com/evmlb/evmlb/e2e/internal/target"
)

// Issue 22's rows, its "Done means" measured from outside: a client key's limit holds across the host's isolates
// (client-key-limit), a provider's max_rps is never exceeded while another upstream has room (upstream-max-rps),
// and a chain whose budgets are all spent answers 429 rather than hammering its providers
// (upstream-budgets-spent). The wazero host runs these with 4 Worker runtimes, the load spread over them; workerd
// as wrangler dev runs it. Each load is open (requests sent on a schedule, whatever the answers take), counted per
// second of the run by the time each answer came, and rates are over the time the answers took.

// EnvLimitDuration sets how long each row of issue 22 offers its load: 60 s by default (the figure), less
// for a quick run (EVMLB_LIMIT_DURATION=15s).
const EnvLimitDuration = "EVMLB_LIMIT_DURATION"

// limitDuration is the load's duration (EnvLimitDuration).
func limitDuration() time.Duration {
	if d, err := time.ParseDuration(os.Getenv(EnvLimitDuration)); err == nil && d >= time.Second {
		return d.Truncate(time.Second)
	}
	return 60 * time.Second
}

// limitRuntimes is the wazero host's pool of Worker runtimes in issue 22's rows: a limit must hold across isolates.
const limitRuntimes = 4

// Codes and statuses of issue 22's answers (README's error table once the keys land).
const (
	codeUnauthorized = -32064 // no key, an unknown key, two different keys: 401
	codeKeyChain     = -32078 // a key not allowed on this chain: 403
	codeLimit        = -32005 // a key's limit, every upstream's budget: 429 with Retry-After
)

// identity is the precompile that answers its input: every call's answer proves it is that call's.
const identity = "0x0000000000000000000000000000000000000004"

// echoCall is an eth_call of the identity precompile at latest with data unique to id: a method the health checks
// and state probes never send (so the proxies' counts are the clients' calls alone), and, the chain's cache off
// and every call distinct, one that reaches an upstream each time.
func echoCall(id int) (body []byte, data string) {
	data = fmt.Sprintf("0x%016x", id)
	return rpc.Request(id, "eth_call", map[string]string{"to": identity, "data": data}, "latest"), data
}

// startRuntimes starts the balancer as StartConfig does, with the wazero host's pool of Worker runtimes at n
// (workerd through wrangler dev runs as it does).
func (s *S) startRuntimes(n int, cfg target.Config) *Balancer {
	s.Helper()
	if w, ok := s.Host.(*target.Wazero); ok {
		h := *w
		h.Workers = n
		return s.startOn(&h, cfg)
	}
	return s.StartConfig(cfg)
}

// clientKey is a key made by the test as `evmlb keys new` makes one, with its CLIENT_KEYS entry's hash.
type clientKey struct {
	name, key, hash string
}

// newClientKey makes a key ("evmlb_" and 43 characters of base64url of 32 random bytes) and registers it and its
// hash as secrets: neither may appear in any answer, log line, metric or admin view.
func (s *S) newClientKey(name string) clientKey {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	body := base64.RawURLEncoding.EncodeToString(b)
	k := clientKey{name: name, key: "evmlb_" + body}
	sum := sha256.Sum256([]byte(k.key))
	k.hash = hex.EncodeToString(sum[:])
	s.AddSecret(body) // the key, with or without its prefix
	s.AddSecret(k.hash)
	s.AddSecret(strings.ToUpper(k.hash))
	return k
}

// bearer is the header giving k as a Bearer token.
func (k clientKey) bearer() map[string]string {
	return map[string]string{"Authorization": "Bearer " + k.key}
}

// path is the chain's path with k as its last element; the key is marked as one sent in a path (S.PathKey).
func (k clientKey) path(s *S, chain string) string {
	s.PathKey(strings.TrimPrefix(k.key, "evmlb_"))
	return "/" + chain + "/" + k.key
}

// keyEntry is one element of CLIENT_KEYS.
type keyEntry struct {
	Name   string   `json:"name"`
	Hash   string   `json:"key_sha256"`
	Chains []string `json:"chains,omitempty"`
	Deny   []string `json:"deny,omitempty"`
	RPS    float64  `json:"rps,omitempty"`
	Burst  float64  `json:"burst,omitempty"`
}

// clientKeys is CLIENT_KEYS' value for entries.
func clientKeys(entries ...keyEntry) string {
	b, err := json.Marshal(entries)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// stream is one client's offered load: rate requests a second of echoCall, to path with header, from conns HTTP
// clients of its own, taking the requests in turn (see offerLoad for their connections).
type stream struct {
	name   string
	rate   int
	path   string
	header map[string]string
	conns  int
}

// connsPerClient is how many connections one HTTP client of a load may hold on host. The wazero host keeps a
// connection on one Worker runtime: one each, so that a stream's load stays where its warm-up put it (a client
// with more reuses its idle connections last in, first out, and its load would move between runtimes, each
// move a new demand its budget's leases learn of late). workerd through wrangler dev runs one isolate: 4 each, so
// that a slow answer does not hold the next (and at most 4: a host slower than the load queues requests here
// rather than taking ever more connections; wrangler dev resets them past a few hundred).
func connsPerClient(host string) int {
	if host == "wazero" {
		return 1
	}
	return 4
}

// tally is what one stream got, per second of the run by the time each answer came (a host slower than the load
// answers past the load's end: a limit is a rate of what the host let through while it took the requests).
type tally struct {
	name              string
	offered           int
	accepted, refused []int
	// elapsed is from the load's start to the stream's last answer, at least the load's duration.
	elapsed time.Duration
	// warmAccepted and warmRefused count the warm-up requests (one per connection, before the run).
	warmAccepted, warmRefused int
	// retryAfter counts the refusals by their Retry-After (seconds); longRA lists the seconds of the run in which
	// a refusal said more than 2 s (a per-second limit frees a slot within a second).
	retryAfter map[int]int
	longRA     []int
	// refusal is the first refusal's error, code and message.
	refusal string
	// problems are the first answers that were neither accepted nor refused as they must be; nProblems counts all.
	problems  []string
	nProblems int
	// devReloads counts the requests wrangler dev's proxy lost on its way to the worker (verdict.devReload).
	devReloads int
	latency    []time.Duration // of accepted answers
}

func sum(xs []int) int {
	n := 0
	for _, x := range xs {
		n += x
	}
	return n
}

// spread is the least and the most of xs.
func spread(xs []int) (lo, hi int) {
	if len(xs) == 0 {
		return 0, 0
	}
	return slices.Min(xs), slices.Max(xs)
}

// figures is the tally in one line: offered per second over d, accepted and refused per second over the time the
// answers took (elapsed), their per-second minimum and maximum (full seconds), the Retry-After values, and the p50
// and p99 latency of accepted answers.
func (t *tally) figures(d time.Duration) string {
	full := int(t.elapsed / time.Second)
	alo, ahi := spread(t.accepted[:min(full, len(t.accepted))])
	rlo, rhi := spread(t.refused[:min(full, len(t.refused))])
	secs := t.elapsed.Seconds()
	var p50, p99 time.Duration
	if len(t.latency) > 0 {
		l := slices.Clone(t.latency)
		slices.Sort(l)
		p50, p99 = l[len(l)/2], l[len(l)*99/100]
	}
	ras := make([]string, 0, len(t.retryAfter))
	for v, n := range t.retryAfter {
		ras = append(ras, fmt.Sprintf("%ds×%d", v, n))
	}
	sort.Strings(ras)
	return fmt.Sprintf("%s: offered %.1f/s, answered within %v: accepted %.1f/s (per second %d–%d), refused %.1f/s (per second %d–%d), Retry-After %v (over 2 s in seconds %v), other %d; accepted p50 %v p99 %v",
		t.name, float64(t.offered)/d.Seconds(), t.elapsed.Round(10*time.Millisecond), float64(sum(t.accepted))/secs, alo, ahi, float64(sum(t.refused))/secs, rlo, rhi, ras, t.longRA, t.nProblems, p50.Round(100*time.Microsecond), p99.Round(100*time.Microsecond))
}

// verdict sorts one answer: accepted (200, the call's own result), refused (429, JSON-RPC -32005, Retry-After a
// whole number of seconds ≥ 1), or a problem, described.
type verdict struct {
	accepted, refused bool
	// devReload: wrangler dev's own answer when its proxy lost the connection to the worker (its ProxyWorker's
	// 503 text, never the balancer's: the balancer answers JSON-RPC).
	devReload        bool
	retryAfter       int
	refusal, problem string
}

// devReloadText begins wrangler dev's answer to a request its proxy could not carry to the worker
// (node_modules/wrangler/wrangler-dist/ProxyWorker.js). Its text says the worker restarted, but the ProxyWorker
// gives it for any network error of a POST whose path is not "/": it compares the request's URL, path included,
// with the worker's bare origin to decide whether the worker changed, and they always differ. What happened, seen
// by making the ProxyWorker print the error: "Network connection lost" on the connection between wrangler's proxy
// and the worker's workerd, under these rows' sustained 240 req/s about 0–10 requests a minute (workerd's server
// closes a connection idle for 5 s, KJ's pipelineTimeout, while the proxy's pool may send on it). No balancer
// code is on that path, and a deployed Worker has no such proxy.
const devReloadText = "Your worker restarted mid-request."

// maxDevReloads bounds, per thousand requests a stream offered, the requests wrangler dev's proxy may lose:
// several times what was seen, far below what a fault of the balancer's would show.
const maxDevReloads = 5

// devLosses logs the requests wrangler dev's proxy lost, and fails the row when they are more than
// maxDevReloads in 1,000.
func (t *tally) devLosses(s *S) {
	if t.devReloads > 0 {
		s.Logf("%s: %d requests lost by wrangler dev's proxy on its way to the worker (its 503 \"Your worker restarted mid-request\"; not the balancer's answers)", t.name, t.devReloads)
	}
	s.must(t.devReloads*1000 <= maxDevReloads*max(t.offered, 1000), "%s: %d requests lost by wrangler dev's proxy of %d offered, more than %d in 1,000", t.name, t.devReloads, t.offered, maxDevReloads)
}

func judge(r *rpc.Response, err error, id int, data string) verdict {
	if err != nil {
		return verdict{problem: err.Error()}
	}
	if r.Status == http.StatusServiceUnavailable && strings.HasPrefix(string(r.Body), devReloadText) {
		return verdict{devReload: true}
	}
	m, derr := rpc.Decode(r.Body)
	switch {
	case derr != nil || m.JSONRPC != "2.0":
		return verdict{problem: fmt.Sprintf("%d %s", r.Status, rpc.Trunc(r.Body, 200))}
	case string(m.ID) != strconv.Itoa(id):
		return verdict{problem: fmt.Sprintf("%d: id %s, want %d", r.Status, m.ID, id)}
	case r.Status == http.StatusOK && m.Error == nil && string(m.Result) == `"`+data+`"`:
		return verdict{accepted: true}
	case r.Status == http.StatusTooManyRequests && m.Error != nil && m.Error.Code == codeLimit:
		ra, aerr := strconv.Atoi(r.Header.Get("Retry-After"))
		if aerr != nil || ra < 1 {
			return verdict{problem: fmt.Sprintf("429 %d %q with Retry-After %q, want whole seconds ≥ 1", m.Error.Code, m.Error.Message, r.Header.Get("Retry-After"))}
		}
		return verdict{refused: true, retryAfter: ra, refusal: fmt.Sprintf("%d %s", m.Error.Code, m.Error.Message)}
	}
	return verdict{problem: fmt.Sprintf("%d %s", r.Status, rpc.Trunc(r.Body, 200))}
}

// offerLoad warms one connection per client of each stream (the streams in order, so that the wazero host, which
// gives new connections to its runtimes in turn, puts each stream's connections evenly on them: give each a
// multiple of the pool's size; connsPerClient), calls onStart (when not nil), then sends every stream's load at once for d and
// waits for every answer. Every answer goes through the scenario's secret check.
func (b *Balancer) offerLoad(d time.Duration, streams []stream, onStart func()) []*tally {
	s := b.s
	s.Helper()
	secs := int(d / time.Second)
	out := make([]*tally, len(streams))
	clients := make([][]*http.Client, len(streams))
	per := connsPerClient(b.Inst.Host)
	for i, st := range streams {
		out[i] = &tally{name: st.name, elapsed: d, retryAfter: map[int]int{}}
		for c := range st.conns {
			cl := &http.Client{
				Timeout:   60 * time.Second,
				Transport: &secretCheck{s: s, next: clientTransport(per)},
			}
			s.Cleanup(cl.CloseIdleConnections)
			clients[i] = append(clients[i], cl)
			id := 900_000_000 + i*1000 + c
			body, data := echoCall(id)
			r, err := rpc.Do(s.Ctx, cl, http.MethodPost, b.Inst.URL+st.path, body, st.header)
			switch v := judge(r, err, id, data); {
			case v.accepted:
				out[i].warmAccepted++
			case v.refused:
				out[i].warmRefused++
			default:
				s.Fatalf("%s: warming connection %d: %s", st.name, c, v.problem)
			}
		}
	}
	header := func(h map[string]string) map[string]string {
		m := map[string]string{"Content-Type": "application/json"}
		for k, v := range h {
			m[k] = v
		}
		return m
	}
	if onStart != nil {
		onStart()
	}
	start := time.Now()
	var wg sync.WaitGroup
	for i, st := range streams {
		t, hdr := out[i], header(st.header)
		var mu sync.Mutex
		wg.Go(func() {
			for k := range st.rate * secs {
				at := start.Add(time.Duration(k) * time.Second / time.Duration(st.rate))
				if wait := time.Until(at); wait > 0 {
					select {
					case <-time.After(wait): // the load's own schedule
					case <-s.Ctx.Done():
						return
					}
				}
				t.offered++
				id := i*10_000_000 + k
				cl := clients[i][k%len(clients[i])]
				wg.Go(func() {
					body, data := echoCall(id)
					t0 := time.Now()
					r, err := rpc.Do(s.Ctx, cl, http.MethodPost, b.Inst.URL+st.path, body, hdr)
					lat := time.Since(t0)
					v := judge(r, err, id, data)
					mu.Lock()
					defer mu.Unlock()
					since := time.Since(start)
					t.elapsed = max(t.elapsed, since)
					sec := int(since / time.Second)
					for len(t.accepted) <= sec {
						t.accepted, t.refused = append(t.accepted, 0), append(t.refused, 0)
					}
					switch {
					case v.accepted:
						t.accepted[sec]++
						t.latency = append(t.latency, lat)
					case v.refused:
						t.refused[sec]++
						t.retryAfter[v.retryAfter]++
						if v.retryAfter > 2 && (len(t.longRA) == 0 || t.longRA[len(t.longRA)-1] != sec) {
							t.longRA = append(t.longRA, sec)
						}
						if t.refusal == "" {
							t.refusal = v.refusal
						}
					case v.devReload:
						t.devReloads++
					default:
						t.nProblems++
						if len(t.problems) < 5 {
							t.problems = append(t.problems, fmt.Sprintf("second %d: %s", sec, v.problem))
						}
					}
				})
			}
		})
	}
	wg.Wait()
	return out
}

// windows samples count every second from now until stop is closed and returns the increase in each second.
func windows(count func() int, stop <-chan struct{}) func() []int {
	done := make(chan []int, 1)
	go func() {
		var ws []int
		last := count()
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-tick.C:
				c := count()
				ws = append(ws, c-last)
				last = c
			case <-stop:
				done <- ws
				return
			}
		}
	}()
	return func() []int { return <-done }
}

// budgetTimeline reads /admin/clients every second until stop (through the secret check) and returns, per client
// named, its budget object's view each second as "isolates/demand/granted": how the leases followed the load.
func (b *Balancer) budgetTimeline(stop <-chan struct{}, names ...string) func() map[string][]string {
	done := make(chan map[string][]string, 1)
	go func() {
		out := map[string][]string{}
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-tick.C:
			case <-stop:
				done <- out
				return
			}
			r, err := rpc.Do(b.s.Ctx, b.s.client, http.MethodGet, b.Inst.URL+"/admin/clients", nil, map[string]string{"Authorization": basic("admin", b.s.Password)})
			var doc struct {
				Clients []struct {
					Name   string `json:"name"`
					Budget *struct {
						Isolates int     `json:"isolates"`
						Demand   float64 `json:"demand"`
						Granted  float64 `json:"granted"`
					} `json:"budget"`
				} `json:"clients"`
			}
			if err != nil || r.Status != http.StatusOK || json.Unmarshal(r.Body, &doc) != nil {
				continue
			}
			for _, c := range doc.Clients {
				if slices.Contains(names, c.Name) && c.Budget != nil {
					out[c.Name] = append(out[c.Name], fmt.Sprintf("%d/%.1f/%.1f", c.Budget.Isolates, c.Budget.Demand, c.Budget.Granted))
				}
			}
		}
	}()
	return func() map[string][]string { return <-done }
}

// served is each runtime's requests served between two runtimes() reads, by start time, as "n, n, …".
func servedBetween(before, after map[time.Time]runtimeSeen) []int {
	var out []int
	for started, a := range after {
		out = append(out, int(a.served-before[started].served))
	}
	sort.Ints(out)
	return out
}

// expectError checks that r is status with the JSON-RPC error code (and Retry-After, for a 429) and records it.
func (s *S) expectError(name string, r *rpc.Response, status, code int) {
	s.Helper()
	e, ok := isRPCError(r.Body)
	if r.Status != status || !ok || e.Code != code {
		s.Errorf("%s: %d %s, want %d with JSON-RPC error %d", name, r.Status, rpc.Trunc(r.Body, 300), status, code)
	}
	s.Record(name, r, NormRPC)
}

// expectEcho checks that r is 200 with the echo of data and records it.
func (s *S) expectEcho(name string, r *rpc.Response, data string) {
	s.Helper()
	m, err := rpc.Decode(r.Body)
	if r.Status != http.StatusOK || err != nil || m.Error != nil || string(m.Result) != `"`+data+`"` {
		s.Errorf("%s: %d %s, want 200 with the result %s", name, r.Status, rpc.Trunc(r.Body, 300), data)
	}
	s.Record(name, r, NormRPC)
}

// keySocket: a WebSocket opened with key k (deny debug_*, 2 req/s, burst 2) holds each message to the key: a
// denied method -32067, calls answered until the key's budget is spent, then -32005 saying when to retry, on the
// same socket, which stays open (fewer refusals in a row than close one).
func keySocket(s *S, b *Balancer, k clientKey) {
	s.Helper()
	c, resp, err := s.wsDialer().DialContext(s.Ctx, b.wsURLOf("ethereum"), http.Header{"Authorization": {"Bearer " + k.key}})
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		s.Errorf("a WebSocket with a key: %d %v", status, err)
		return
	}
	defer c.Close()
	ws := &wsConn{Conn: c}
	ask := func(method string) wsMsg {
		id, err := ws.call(method)
		s.must(err == nil, "send %s: %v", method, err)
		m, err := ws.answer(id, 20*time.Second)
		s.must(err == nil, "the answer to %s on the key's socket: %v", method, err)
		return m
	}
	m := ask("debug_getRawHeader")
	s.must(m.Error != nil && m.Error.Code == -32067 && strings.Contains(m.Error.Message, "this key's list of methods"),
		"a method the key denies, on its socket: %+v %s", m.Error, m.Result)
	answered, limited := 0, 0
	for range 8 { // 8 calls in a row, well within a second, against 2 a second: some answered, then refusals
		m := ask("eth_chainId")
		switch {
		case m.Error == nil && string(m.Result) == `"0x7a69"`:
			answered++
		case m.Error != nil && m.Error.Code == codeLimit && strings.Contains(m.Error.Message, "this key's requests per second; retry after"):
			limited++
		default:
			s.Errorf("eth_chainId on the key's socket: %+v %s", m.Error, m.Result)
		}
	}
	s.Logf("the key's socket (2 req/s, burst 2): 8 calls in a row: %d answered, %d refused -32005", answered, limited)
	s.must(answered >= 1 && limited >= 1, "8 calls in a row on a socket of a 2 req/s key: %d answered, %d refused; want both", answered, limited)
	time.Sleep(1500 * time.Millisecond) // the key's budget fills again
	m = ask("eth_chainId")
	s.must(m.Error == nil && string(m.Result) == `"0x7a69"`, "the key's socket after its budget filled again: %+v %s", m.Error, m.Result)
}

// scClientKeyLimit (issue 22): with CLIENT_KEYS set, a request without a key, with an unknown key or with two
// different keys is 401 -32064; a key on a chain it may not use 403 -32078; a key works as the path's last element
// and as a Bearer token; GET / and admin need none. Then, for EVMLB_LIMIT_DURATION (60 s), key a (50 req/s, burst
// 50) is offered 200 req/s and key b (50 req/s) 40 req/s at once, from 32 and 8 clients spread over the
// runtimes: a gets 45 to 55 req/s accepted and the rest 429 -32005 with Retry-After, b no refusal. The keys and
// their hashes are secrets of the scenario: every answer, the log and every admin view are searched for them.
func scClientKeyLimit(s *S) {
	d := limitDuration()
	n := s.Node(31337, 5)
	_, ue := s.Upstream(n, "ethereum", "one")
	_, uo := s.Upstream(n, "other", "one")
	ka, kb, kc, unknown := s.newClientKey("app-a"), s.newClientKey("app-b"), s.newClientKey("other-only"), s.newClientKey("stranger")
	kw := s.newClientKey("socket")
	keys := clientKeys(
		keyEntry{Name: ka.name, Hash: ka.hash, Chains: []string{"ethereum"}, RPS: 50, Burst: 50},
		keyEntry{Name: kb.name, Hash: kb.hash, Chains: []string{"ethereum"}, RPS: 50, Burst: 50},
		keyEntry{Name: kc.name, Hash: kc.hash, Chains: []string{"other"}},
		keyEntry{Name: kw.name, Hash: kw.hash, Chains: []string{"ethereum"}, Deny: []string{"debug_*"}, RPS: 2, Burst: 2},
	)
	b := s.startRuntimes(limitRuntimes, target.Config{
		Upstreams: []target.Upstream{ue, uo},
		Chains:    `{"ethereum":{"cache":false},"other":{"cache":false}}`,
		Env:       map[string]string{"CLIENT_KEYS": keys},
	})

	r := b.Do(http.MethodGet, "/", nil, nil)
	s.must(r.Status == http.StatusOK, "GET / without a key: %d %s", r.Status, r.Body)
	s.Record("GET / without a key", r, NormStatusOnly)
	r = b.Admin(http.MethodGet, "/admin/chains")
	s.must(r.Status == http.StatusOK, "/admin/chains without a client key: %d %s", r.Status, r.Body)
	s.Record("admin without a client key", r, NormStatusOnly)

	post := func(path string, hdr map[string]string, id int) (*rpc.Response, string) {
		body, data := echoCall(id)
		h := map[string]string{"Content-Type": "application/json"}
		for k, v := range hdr {
			h[k] = v
		}
		return b.Do(http.MethodPost, path, body, h), data
	}
	r, _ = post("/ethereum", nil, 1)
	s.expectError("no key", r, http.StatusUnauthorized, codeUnauthorized)
	if wa := r.Header.Get("WWW-Authenticate"); strings.Contains(strings.ToLower(wa), "basic") {
		s.Errorf("no key: WWW-Authenticate %q: a client key is not basic auth (a browser would prompt)", wa)
	}
	r, _ = post("/ethereum", unknown.bearer(), 2)
	s.expectError("unknown key (Bearer)", r, http.StatusUnauthorized, codeUnauthorized)
	r, _ = post(unknown.path(s, "ethereum"), nil, 3)
	s.expectError("unknown key (path)", r, http.StatusUnauthorized, codeUnauthorized)
	r, _ = post(kb.path(s, "ethereum"), kc.bearer(), 4)
	s.expectError("two different keys", r, http.StatusUnauthorized, codeUnauthorized)
	r, _ = post("/ethereum", kc.bearer(), 5)
	s.expectError("key of another chain (Bearer)", r, http.StatusForbidden, codeKeyChain)
	r, _ = post(kc.path(s, "ethereum"), nil, 6)
	s.expectError("key of another chain (path)", r, http.StatusForbidden, codeKeyChain)
	r, data := post("/other", kc.bearer(), 7)
	s.expectEcho("key on its chain (Bearer)", r, data)
	r, data = post(kc.path(s, "other"), nil, 8)
	s.expectEcho("key on its chain (path)", r, data)
	r, data = post("/ethereum", kb.bearer(), 9)
	s.expectEcho("key b (Bearer)", r, data)
	r, data = post(kb.path(s, "ethereum"), kb.bearer(), 10)
	s.expectEcho("key b (path and the same Bearer)", r, data)
	keySocket(s, b, kw)
	if s.Failed() {
		return // the keys are not there: the load would say nothing more
	}

	before := runtimes(s, b)
	stop := make(chan struct{})
	var timeline func() map[string][]string
	tallies := b.offerLoad(d, []stream{
		{name: "key a", rate: 200, path: "/ethereum", header: ka.bearer(), conns: 32},
		{name: "key b", rate: 40, path: kb.path(s, "ethereum"), conns: 8},
	}, func() { timeline = b.budgetTimeline(stop, ka.name, kb.name) })
	close(stop)
	budgets := timeline()
	after := runtimes(s, b)
	ta, tb := tallies[0], tallies[1]
	perRuntime := servedBetween(before, after)
	s.Logf("MEASURE %s client-key-limit over %v, %d runtime(s) (requests served each: %v):\n  %s\n  %s\n  key a accepted per second: %v\n  key a refused per second:  %v\n  key b refused per second:  %v\n  key a's budget per second (isolates/demand/granted): %v\n  key b's: %v",
		s.Host.Name(), d, len(after), perRuntime, ta.figures(d), tb.figures(d), ta.accepted, ta.refused, tb.refused, budgets[ka.name], budgets[kb.name])
	if w, ok := s.Host.(*target.Wazero); ok && w != nil {
		total := sum(perRuntime)
		s.must(len(perRuntime) == limitRuntimes && perRuntime[0] >= total/(4*limitRuntimes),
			"the load did not reach every one of the %d runtimes alike: requests served each %v", limitRuntimes, perRuntime)
	}
	for _, t := range tallies {
		t.devLosses(s)
		s.must(t.nProblems == 0, "%s: %d answers neither accepted nor refused as they must be (429 -32005 with Retry-After ≥ 1), first: %v", t.name, t.nProblems, t.problems)
	}
	rateA := float64(sum(ta.accepted)) / ta.elapsed.Seconds()
	s.must(rateA >= 45 && rateA <= 55, "key a (50 req/s) offered 200 req/s: %.1f req/s accepted over %v, want 45–55", rateA, ta.elapsed)
	s.must(sum(tb.refused) == 0 && tb.warmRefused == 0, "key b (50 req/s) offered 40 req/s: %d refused", sum(tb.refused)+tb.warmRefused)
	// Every request of key b accepted, but for those wrangler dev's proxy lost on the way (counted and bounded above).
	s.must(sum(tb.accepted)+tb.devReloads == tb.offered, "key b: %d accepted (and %d lost by wrangler dev's proxy) of %d", sum(tb.accepted), tb.devReloads, tb.offered)
	s.Note("key a at 200 req/s", fmt.Sprintf("accepted 45–55 req/s, the rest refused: %t; refusal %s", rateA >= 45 && rateA <= 55, ta.refusal))
	s.Note("key b at 40 req/s", "no refusal")

	// What is seen per key: evmlb_client_requests_total counts every request by outcome (reaching the chain object
	// with the isolates' exchanges), /admin/clients lists the clients; neither, nor any other admin view, holds a
	// key or a hash (the secret check reads every answer).
	okA, limA := ta.warmAccepted+sum(ta.accepted), ta.warmRefused+sum(ta.refused)
	okB := tb.warmAccepted + sum(tb.accepted) + 2 // and the two exchanges of b alone above
	count := func(body []byte, client, outcome string) int {
		return int(promSum(body, "evmlb_client_requests_total", map[string]string{"client": client, "chain": "ethereum", "outcome": outcome}))
	}
	m := b.waitAdmin("/admin/metrics", fmt.Sprintf("evmlb_client_requests_total to count app-a ok %d, limited %d, app-b ok %d", okA, limA, okB), func(body []byte) bool {
		return count(body, "app-a", "ok") >= okA && count(body, "app-a", "limited") >= limA && count(body, "app-b", "ok") >= okB
	})
	s.Logf("MEASURE %s client-key-limit: evmlb_client_requests_total app-a ok %d limited %d, app-b ok %d limited %d, other-only chain_denied %d, unknown unauthorized %d",
		s.Host.Name(), count(m, "app-a", "ok"), count(m, "app-a", "limited"), count(m, "app-b", "ok"), count(m, "app-b", "limited"),
		count(m, "other-only", "chain_denied"), count(m, "unknown", "unauthorized"))
	// Exact, but for the requests wrangler dev's proxy lost on the way (devReloads): the balancer may have counted
	// one of those (its answer was lost after it) or not (the request was).
	aOK, aLim, bOK := count(m, "app-a", "ok"), count(m, "app-a", "limited"), count(m, "app-b", "ok")
	s.must(aOK <= okA+ta.devReloads && aLim <= limA+ta.devReloads && aOK+aLim <= okA+limA+ta.devReloads &&
		bOK <= okB+tb.devReloads && count(m, "app-b", "limited") == 0,
		"evmlb_client_requests_total: app-a ok %d limited %d, app-b ok %d limited %d; the clients saw app-a %d accepted %d refused (%d lost on the way), app-b %d accepted (%d lost)",
		aOK, aLim, bOK, count(m, "app-b", "limited"), okA, limA, ta.devReloads, okB, tb.devReloads)
	s.must(count(m, "other-only", "chain_denied") == 2, "evmlb_client_requests_total: other-only chain_denied %d, want the 2 sent", count(m, "other-only", "chain_denied"))
	s.must(count(m, "unknown", "unauthorized") >= 2, "evmlb_client_requests_total: unknown unauthorized %d, want at least the 2 unknown keys", count(m, "unknown", "unauthorized"))
	r = b.Admin(http.MethodGet, "/admin/clients")
	s.must(r.Status == http.StatusOK && strings.Contains(string(r.Body), `"app-a"`) && strings.Contains(string(r.Body), `"other-only"`),
		"/admin/clients: %d %s", r.Status, rpc.Trunc(r.Body, 400))
	s.Record("/admin/clients", r, NormTopKeys)
	for _, p := range []string{"/admin/", "/admin/chains", "/admin/upstreams", "/admin/stats"} {
		b.Admin(http.MethodGet, p) // read for the secret check
	}
}

// upstreamRow is the world of the upstream rows: one anvil behind u1 and u2 (fault proxies) with the budgets given,
// the chain's cache off, the balancer with 4 Worker runtimes (wazero), both upstreams checked healthy.
func upstreamRow(s *S, max1, max2 int, delay2 time.Duration) (*Balancer, *faultproxy.Proxy, *faultproxy.Proxy) {
	n := s.Node(31337, 5)
	p1, u1 := s.Upstream(n, "ethereum", "u1")
	p2, u2 := s.Upstream(n, "ethereum", "u2")
	u1.MaxRPS, u2.MaxRPS = max1, max2
	p2.SetDelay(delay2)
	b := s.startRuntimes(limitRuntimes, target.Config{Upstreams: []target.Upstream{u1, u2}, Chains: `{"ethereum":{"cache":false}}`})
	b.Post("ethereum", rpc.Request(1, "eth_blockNumber")) // wakes the chain: its health checks start
	waitChecks(s.Ctx, s.T, b.Inst, s.Password, 2)
	return b, p1, p2
}

// upstreamLoad offers 60 req/s of echoCall for d from 12 clients and counts the calls each proxy received in
// every second of the load (the proxies' per-method counts: health checks and state probes never send eth_call);
// the averages are over the time the answers took (tally.elapsed).
func upstreamLoad(b *Balancer, d time.Duration, p1, p2 *faultproxy.Proxy) (t *tally, w1, w2 []int, avg1, avg2 float64) {
	stop := make(chan struct{})
	var c1, c2 int
	var get1, get2 func() []int
	t = b.offerLoad(d, []stream{{name: "client", rate: 60, path: "/ethereum", conns: 12}}, func() {
		c1, c2 = p1.Count("eth_call"), p2.Count("eth_call")
		get1 = windows(func() int { return p1.Count("eth_call") }, stop)
		get2 = windows(func() int { return p2.Count("eth_call") }, stop)
	})[0]
	close(stop)
	w1, w2 = get1(), get2()
	avg1 = float64(p1.Count("eth_call")-c1) / t.elapsed.Seconds()
	avg2 = float64(p2.Count("eth_call")-c2) / t.elapsed.Seconds()
	return t, w1, w2, avg1, avg2
}

// scUpstreamMaxRPS (issue 22): u1 has "max_rps": 20, u2 none and answers 10 ms later (so that u1 ranks first and
// is offered more than its budget). 60 req/s for EVMLB_LIMIT_DURATION: u1 receives at most 22 client calls a
// second on average, the rest go to u2, and the client sees no failure.
func scUpstreamMaxRPS(s *S) {
	d := limitDuration()
	b, p1, p2 := upstreamRow(s, 20, 0, 10*time.Millisecond)
	t, w1, w2, avg1, avg2 := upstreamLoad(b, d, p1, p2)
	_, worst1 := spread(w1)
	s.Logf("MEASURE %s upstream-max-rps over %v: %s\n  u1 (max_rps 20) %.1f calls/s, worst second %d, per second %v\n  u2 (none) %.1f calls/s, per second %v",
		s.Host.Name(), d, t.figures(d), avg1, worst1, w1, avg2, w2)
	t.devLosses(s)
	s.must(t.nProblems == 0 && sum(t.refused)+t.warmRefused == 0, "the client saw %d failures and %d refusals while u2 had room; first: %v", t.nProblems, sum(t.refused)+t.warmRefused, t.problems)
	s.must(avg1 <= 22, "u1 (max_rps 20) received %.1f client calls a second over %v, want at most 22", avg1, d)
	// u1 ranks first: its budget is spent, not avoided (else the bound above proves nothing).
	s.must(avg1 >= 12, "u1 (max_rps 20, ranked first) received only %.1f client calls a second: its budget was not used", avg1)
	m := b.waitAdmin("/admin/metrics", "evmlb_upstream_skipped_total{lack=\"budget\"} to count calls routed past u1", func(body []byte) bool {
		return promSum(body, "evmlb_upstream_skipped_total", map[string]string{"chain": "ethereum", "lack": "budget"}) > 0
	})
	s.Logf("MEASURE %s upstream-max-rps: evmlb_upstream_skipped_total{lack=\"budget\"} %v", s.Host.Name(),
		promSum(m, "evmlb_upstream_skipped_total", map[string]string{"chain": "ethereum", "lack": "budget"}))
	s.Note("u1 max_rps 20 at 60 req/s", fmt.Sprintf("at most 22 a second, no client failure: %t", avg1 <= 22 && t.nProblems == 0))
}

// scUpstreamBudgetsSpent (issue 22): both upstreams "max_rps": 10, 60 req/s offered for EVMLB_LIMIT_DURATION: what
// the budgets do not cover is refused 429 -32005 with Retry-After (never an upstream's failure), and neither
// upstream receives more than 11 client calls a second on average.
func scUpstreamBudgetsSpent(s *S) {
	d := limitDuration()
	b, p1, p2 := upstreamRow(s, 10, 10, 0)
	t, w1, w2, avg1, avg2 := upstreamLoad(b, d, p1, p2)
	_, worst1 := spread(w1)
	_, worst2 := spread(w2)
	s.Logf("MEASURE %s upstream-budgets-spent over %v: %s\n  u1 (max_rps 10) %.1f calls/s, worst second %d, per second %v\n  u2 (max_rps 10) %.1f calls/s, worst second %d, per second %v",
		s.Host.Name(), d, t.figures(d), avg1, worst1, w1, avg2, worst2, w2)
	t.devLosses(s)
	s.must(t.nProblems == 0, "%d answers neither accepted nor refused 429 -32005 with Retry-After ≥ 1; first: %v", t.nProblems, t.problems)
	s.must(avg1 <= 11 && avg2 <= 11, "u1 and u2 (max_rps 10 each) received %.1f and %.1f client calls a second over %v, want at most 11", avg1, avg2, d)
	s.must(sum(t.refused) > 0, "60 req/s against two budgets of 10: nothing refused")
	accepted := float64(sum(t.accepted)) / t.elapsed.Seconds()
	// The budgets are used, not just never exceeded (refusing everything would keep the bound above).
	s.must(accepted >= 12, "two budgets of 10 req/s served only %.1f req/s of 60 offered", accepted)
	s.Note("two upstreams at max_rps 10, 60 req/s", fmt.Sprintf("the rest refused 429 -32005 with Retry-After, each at most 11 a second: %t; refusal %s", avg1 <= 11 && avg2 <= 11, t.refusal))
}
