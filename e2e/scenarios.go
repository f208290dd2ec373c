package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/evmlb/evmlb/e2e/internal/anvil"
	"github.com/evmlb/evmlb/e2e/internal/faultproxy"
	"github.com/evmlb/evmlb/e2e/internal/repo"
	"github.com/evmlb/evmlb/e2e/internal/rpc"
	"github.com/evmlb/evmlb/e2e/internal/target"
)

// Scenario is one end-to-end case, run on every host.
type Scenario struct {
	// Name is unique in the table; it names the subtest.
	Name string
	// Issue is the issue whose behaviour the scenario checks (2, 3 or 4);
	// see Enabled.
	Issue int
	// Run drives the scenario. It owns its nodes, proxies and balancer.
	Run func(s *S)
}

// Scenarios returns the table.
func Scenarios() []Scenario {
	sc := []Scenario{
		{"root", 2, scRoot},
		{"answers-equal-direct", 2, scAnswersEqualDirect},
		{"ids-preserved", 2, scIDs},
		{"batch", 2, scBatch},
		{"two-chains", 2, scTwoChains},
		{"concurrent-requests", 2, scConcurrent},
		{"one-runtime-per-isolate", 2, scOneRuntime},
		{"notifications", 4, scNotifications},
		{"cors", 4, scCORS},
		{"higher-upstream-wins", 2, scHigherWins},
		{"unknown-chain", 2, scUnknownChain},
		{"all-upstreams-down", 2, scAllDown},
		{"admin-auth", 2, scAdminAuth},
		{"admin-init-upstreams", 2, scAdminInit},
		{"malformed-config", 2, scMalformedConfig},
		{"secret-upstream-url", 2, scSecretURL},
		{"state-survives-restart", 3, scRestart},
		{"hostile-input", 4, scHostile},
		{"write-not-retried", 4, scWriteNotRetried},
		{"large-requests", 11, scLargeRequests},
		{"status-command", 9, scStatusCommand},
		{"liar-in-step", 17, scLiar},
		{"restart-reset-devnet", 17, scRestartReset},
		{"poison-request", 18, scPoison},
		{"old-state-to-archive", 20, scOldStateToArchive},
		{"old-state-archive-configured", 20, scOldStateArchiveConfigured},
		{"chainid-together-undecided", 17, scChainIDTogether},
		{"chainid-first-kept", 17, scChainIDFirstKept},
		{"chainid-first-down-back", 17, scChainIDFirstDownBack},
		{"stale-isolate", 17, scStaleIsolate},
		{"finality", 19, scFinality},
		{"reorg", 19, scReorg},
		{"cache-hit-ratio", 19, scCacheHitRatio},
		{"cache-coalesce", 19, scCacheCoalesce},
		{"cache-memory", 19, scCacheMemory},
		{"reorg-past-finality", 19, scReorgPastFinality},
		{"broadcast-tx", 20, scBroadcastTx},
		{"logs-split", 20, scLogsSplit},
		{"ws-smoke", 21, scWSSmoke},
		{"ws-follow", 21, scWSFollow},
		{"ws-reorg", 21, scWSReorg},
		{"ws-failover", 21, scWSFailover},
		{"ws-idle", 21, scWSIdle},
		{"ws-garbage", 21, scWSGarbage},
		{"client-key-limit", 22, scClientKeyLimit},
		{"upstream-max-rps", 22, scUpstreamMaxRPS},
		{"upstream-budgets-spent", 22, scUpstreamBudgetsSpent},
	}
	for _, k := range []faultproxy.Kind{faultproxy.Refuse, faultproxy.Reset, faultproxy.HTTP500, faultproxy.HTTP429, faultproxy.NonJSON, faultproxy.Hang} {
		sc = append(sc, Scenario{"failover-" + k.String(), 2, func(s *S) { scFailover(s, k) }})
	}
	sc = append(sc, Scenario{"failover-redirect", 4, func(s *S) { scFailover(s, faultproxy.Redirect) }})
	sc = append(sc, badAnswerScenarios()...)
	for _, f := range faultproxy.Catalog {
		issue := 4
		if issue8Faults[f.Name] {
			issue = 8
		}
		for _, bad := range []int{1, 2} {
			sc = append(sc, Scenario{fmt.Sprintf("fault-%s-%dof3", f.Name, bad), issue, func(s *S) { scFaultTable(s, f, bad) }})
		}
	}
	return sc
}

// issue8Faults are the rows of the fault table that issue 8 added (lies about the chain).
var issue8Faults = map[string]bool{"chainswitch": true, "ahead1m": true, "reset0": true}

// must fails the scenario when cond is false.
func (s *S) must(cond bool, format string, args ...any) {
	s.Helper()
	if !cond {
		s.Fatalf(format, args...)
	}
}

// direct sends body to the node itself.
func (s *S) direct(n *anvil.Node, body []byte) *rpc.Response {
	s.Helper()
	r, err := rpc.Post(s.Ctx, nil, n.URL, body)
	if err != nil {
		s.Fatal(err)
	}
	return r
}

// isRPCError reports whether body is a JSON-RPC error object (not a batch).
func isRPCError(body []byte) (*rpc.Error, bool) {
	m, err := rpc.Decode(body)
	if err != nil || m.Error == nil || m.JSONRPC != "2.0" {
		return nil, false
	}
	return m.Error, true
}

// GET / describes the balancer and lists the configured chains.
func scRoot(s *S) {
	n := s.Node(31337, 1)
	_, up := s.Upstream(n, "ethereum", "one")
	b := s.Start([]target.Upstream{up}, nil)
	r := b.Do(http.MethodGet, "/", nil, nil)
	s.must(r.Status == http.StatusOK, "GET / = %d %s", r.Status, r.Body)
	s.must(bytes.Contains(r.Body, []byte("ethereum")), "GET / does not list the chain: %s", r.Body)
	s.Record("GET /", r, func(s *S, body []byte) string {
		// The host's name is expected to differ; the rest must not.
		return strings.ReplaceAll(s.scrub(string(body)), `"`+s.Host.Name()+`"`, `"<host>"`)
	})
}

// Answers through the balancer are the node's bytes, for reads of every kind,
// user errors included, and whatever Content-Type the client sent.
func scAnswersEqualDirect(s *S) {
	n := s.Node(31337, 5)
	_, up := s.Upstream(n, "ethereum", "one")
	b := s.Start([]target.Upstream{up}, nil)
	reqs := []struct {
		name string
		body []byte
		norm Normalizer
	}{
		{"eth_chainId", rpc.Request(1, "eth_chainId"), NormRPC},
		{"net_version", rpc.Request(2, "net_version"), NormRPC},
		{"eth_blockNumber", rpc.Request(3, "eth_blockNumber"), NormRPC},
		{"eth_getBlockByNumber 0x3", rpc.Request(4, "eth_getBlockByNumber", "0x3", false), NormRPCNoResult},
		{"eth_getBlockByNumber latest full", rpc.Request(5, "eth_getBlockByNumber", "latest", true), NormRPCNoResult},
		{"eth_getBalance latest", rpc.Request(6, "eth_getBalance", anvil.DevAddress, "latest"), NormRPC},
		{"eth_getBalance 0x2", rpc.Request(7, "eth_getBalance", anvil.DevAddress, "0x2"), NormRPC},
		{"eth_getTransactionCount", rpc.Request(8, "eth_getTransactionCount", anvil.DevAddress, "latest"), NormRPC},
		// The identity precompile echoes its input; sha256 hashes it.
		{"eth_call identity", rpc.Request(9, "eth_call", map[string]string{"to": "0x0000000000000000000000000000000000000004", "data": "0xdeadbeef"}, "latest"), NormRPC},
		{"eth_call sha256", rpc.Request(10, "eth_call", map[string]string{"to": "0x0000000000000000000000000000000000000002", "data": "0x616263"}, "latest"), NormRPC},
		{"eth_getCode", rpc.Request(11, "eth_getCode", "0x0000000000000000000000000000000000000004", "latest"), NormRPC},
		// User errors are answers: passed through unchanged.
		{"invalid params", rpc.Request(12, "eth_getBalance", "0x12", "latest"), NormRPC},
		{"unknown method", rpc.Request(13, "eth_noSuchMethod"), NormRPC},
	}
	for _, q := range reqs {
		want := s.direct(n, q.body)
		got := b.Post("ethereum", q.body)
		if got.Status != want.Status || !bytes.Equal(got.Body, want.Body) {
			s.Errorf("%s: balancer %d %s\nnode %d %s", q.name, got.Status, rpc.Trunc(got.Body, 400), want.Status, rpc.Trunc(want.Body, 400))
		}
		if ct := got.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			s.Errorf("%s: Content-Type %q, want application/json", q.name, ct)
		}
		s.Record(q.name, got, q.norm)
	}
	// A client that sends no JSON Content-Type still gets the answer: the
	// balancer forwards with application/json (anvil rejects anything else).
	body := rpc.Request(14, "eth_chainId")
	want := s.direct(n, body)
	got := b.Do(http.MethodPost, "/ethereum", body, map[string]string{"Content-Type": "text/plain"})
	if got.Status != want.Status || !bytes.Equal(got.Body, want.Body) {
		s.Errorf("text/plain request: balancer %d %s, node %d %s", got.Status, got.Body, want.Status, want.Body)
	}
	s.Record("text/plain request", got, NormRPC)
}

// Ids come back as sent, for every id form anvil accepts, and the answer is
// the node's for the forms it rejects.
func scIDs(s *S) {
	n := s.Node(31337, 1)
	_, up := s.Upstream(n, "ethereum", "one")
	b := s.Start([]target.Upstream{up}, nil)
	ids := []string{
		`0`, `1`, `-5`, `"abc"`, `""`, `"0x1"`, `null`,
		`9007199254740993`,     // 2^53+1: a float64 would round it
		`18446744073709551615`, // the largest uint64
		`"a\"b\\c \u00e9 ✓"`,
		`123456789012345678901234567890`, // beyond uint64: anvil rejects it
		`1.5`, `{"x":1}`, `true`,
	}
	for _, id := range ids {
		body := []byte(`{"jsonrpc":"2.0","id":` + id + `,"method":"eth_chainId","params":[]}`)
		want := s.direct(n, body)
		got := b.Post("ethereum", body)
		s.Record("id "+id, got, NormRPC)
		wm, err := rpc.Decode(want.Body)
		if err != nil {
			s.Fatal(err)
		}
		if wm.Error == nil {
			// Anvil accepts this id: the balancer must return the node's answer. The balancer answers
			// eth_chainId itself (issue 8) with the id's bytes as sent, where anvil re-encodes a string id
			// (\u00e9 comes back as é): equal as JSON, not always byte for byte.
			if got.Status != http.StatusOK || canon(got.Body) != canon(want.Body) {
				s.Errorf("id %s: balancer %d %s, node %s", id, got.Status, got.Body, want.Body)
			}
			if gm, err := rpc.Decode(got.Body); err == nil && !jsonEqual(gm.ID, json.RawMessage(id)) {
				s.Errorf("id %s came back as %s", id, gm.ID)
			}
			continue
		}
		// The node rejects this id: the balancer may reject it first (-32600)
		// or pass the node's answer; either way a JSON-RPC error, no 5xx.
		if got.Status >= 500 {
			s.Errorf("id %s: balancer answered %d %s", id, got.Status, got.Body)
		}
		if e, ok := isRPCError(got.Body); !ok || e.Code != -32600 {
			s.Errorf("id %s: want a -32600 JSON-RPC error, got %d %s", id, got.Status, got.Body)
		}
	}
}

// jsonEqual compares two JSON texts by value, numbers as written.
func jsonEqual(a, b json.RawMessage) bool {
	return canon(a) == canon(b)
}

func canon(b []byte) string {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if dec.Decode(&v) != nil {
		return "invalid:" + string(b)
	}
	out, _ := json.Marshal(v)
	return string(out)
}

// A batch comes back with the same ids in the same order, each answer the
// node's, errors of single elements included.
func scBatch(s *S) {
	n := s.Node(31337, 4)
	_, up := s.Upstream(n, "ethereum", "one")
	b := s.Start([]target.Upstream{up}, nil)
	body := []byte(`[` +
		`{"jsonrpc":"2.0","id":"first","method":"eth_chainId","params":[]},` +
		`{"jsonrpc":"2.0","id":2,"method":"eth_blockNumber","params":[]},` +
		`{"jsonrpc":"2.0","id":3,"method":"eth_noSuchMethod","params":[]},` +
		`{"jsonrpc":"2.0","id":9007199254740993,"method":"eth_getBalance","params":["` + anvil.DevAddress + `","latest"]},` +
		`{"jsonrpc":"2.0","id":null,"method":"net_version","params":[]}]`)
	want := s.direct(n, body)
	got := b.Post("ethereum", body)
	s.Record("batch of 5", got, NormRPC)
	s.must(got.Status == http.StatusOK, "batch: %d %s", got.Status, got.Body)
	gm, err := rpc.DecodeBatch(got.Body)
	s.must(err == nil, "batch answer: %v", err)
	wm, _ := rpc.DecodeBatch(want.Body)
	s.must(len(gm) == len(wm) && len(gm) == 5, "batch: %d answers, node gave %d: %s", len(gm), len(wm), got.Body)
	for i := range gm {
		if string(gm[i].ID) != string(wm[i].ID) {
			s.Errorf("batch element %d: id %s, want %s (order or id changed)", i, gm[i].ID, wm[i].ID)
		}
	}
	if canon(got.Body) != canon(want.Body) {
		s.Errorf("batch answer differs from the node's:\n%s\n%s", got.Body, want.Body)
	}
	// A batch of one is still a batch.
	one := []byte(`[{"jsonrpc":"2.0","id":7,"method":"eth_chainId","params":[]}]`)
	got = b.Post("ethereum", one)
	s.Record("batch of 1", got, NormRPC)
	s.must(canon(got.Body) == canon(s.direct(n, one).Body), "batch of one: %s", got.Body)
}

// Two chains, each served by its own node, never mixed.
func scTwoChains(s *S) {
	na := s.Node(1001, 3)
	nb := s.Node(1002, 8)
	_, ua := s.Upstream(na, "alpha", "alpha-1")
	_, ub := s.Upstream(nb, "beta", "beta-1")
	b := s.Start([]target.Upstream{ua, ub}, nil)
	for _, c := range []struct {
		chain string
		id    string
		head  string
	}{{"alpha", `"0x3e9"`, `"0x3"`}, {"beta", `"0x3ea"`, `"0x8"`}, {"alpha", `"0x3e9"`, `"0x3"`}} {
		r := b.Post(c.chain, rpc.Request(1, "eth_chainId"))
		m, err := rpc.Decode(r.Body)
		s.must(err == nil && string(m.Result) == c.id, "/%s eth_chainId = %d %s, want %s", c.chain, r.Status, r.Body, c.id)
		s.Record(c.chain+" eth_chainId", r, NormRPC)
		r = b.Post(c.chain, rpc.Request(2, "eth_blockNumber"))
		m, err = rpc.Decode(r.Body)
		s.must(err == nil && string(m.Result) == c.head, "/%s eth_blockNumber = %d %s, want %s", c.chain, r.Status, r.Body, c.head)
		s.Record(c.chain+" eth_blockNumber", r, NormRPC)
	}
	r := b.Do(http.MethodGet, "/", nil, nil)
	s.must(bytes.Contains(r.Body, []byte("alpha")) && bytes.Contains(r.Body, []byte("beta")), "GET / lacks a chain: %s", r.Body)
}

// Concurrent requests on two chains each get their own answer: one Go runtime
// serves them all, so a per-request value kept in a global would show here.
func scConcurrent(s *S) {
	na := s.Node(1001, 3)
	nb := s.Node(1002, 8)
	_, ua := s.Upstream(na, "alpha", "alpha-1")
	_, ub := s.Upstream(nb, "beta", "beta-1")
	b := s.Start([]target.Upstream{ua, ub}, nil)
	type call struct {
		chain string
		body  []byte
		want  []byte
	}
	var calls []call
	for i := range 48 {
		chain, n := "alpha", na
		if i%2 == 1 {
			chain, n = "beta", nb
		}
		var body []byte
		switch i % 4 {
		case 0, 1:
			body = rpc.Request(fmt.Sprintf("req-%d", i), "eth_getBlockByNumber", rpc.Hex(uint64(i%3)), false)
		case 2:
			body = rpc.Request(i, "eth_chainId")
		case 3:
			body = []byte(fmt.Sprintf(`[{"jsonrpc":"2.0","id":%d,"method":"eth_blockNumber","params":[]},{"jsonrpc":"2.0","id":"b%d","method":"net_version","params":[]}]`, i, i))
		}
		calls = append(calls, call{chain, body, s.direct(n, body).Body})
	}
	type answer struct {
		status int
		body   []byte
		err    error
	}
	answers := make([]answer, len(calls))
	done := make(chan struct{})
	for i, c := range calls {
		go func() {
			defer func() { done <- struct{}{} }()
			r, err := rpc.Post(s.Ctx, s.client, b.Inst.URL+"/"+c.chain, c.body)
			if err != nil {
				answers[i] = answer{err: err}
				return
			}
			answers[i] = answer{status: r.Status, body: r.Body}
		}()
	}
	for range calls {
		<-done
	}
	wrong := 0
	for i, c := range calls {
		a := answers[i]
		if a.err != nil || a.status != http.StatusOK || canon(a.body) != canon(c.want) {
			wrong++
			s.Errorf("concurrent request %d on %s: %v %d %s, want %s", i, c.chain, a.err, a.status, rpc.Trunc(a.body, 200), rpc.Trunc(c.want, 200))
		}
	}
	s.Note("concurrent answers wrong", strconv.Itoa(wrong))
}

// upstreamHeights reads /admin/upstreams and returns, by upstream name, the
// height each reports. It walks the JSON for objects with "name" and
// "height", so it does not depend on the rest of the layout.
func upstreamHeights(body []byte) map[string]uint64 {
	out := map[string]uint64{}
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			name, ok := x["name"].(string)
			if ok {
				if h, ok := heightOf(x["height"]); ok {
					out[name] = h
				}
			}
			for _, el := range x {
				walk(el)
			}
		case []any:
			for _, el := range x {
				walk(el)
			}
		}
	}
	var v any
	if json.Unmarshal(body, &v) == nil {
		walk(v)
	}
	return out
}

func heightOf(v any) (uint64, bool) {
	switch h := v.(type) {
	case float64:
		return uint64(h), true
	case string:
		if strings.HasPrefix(h, "0x") {
			n, err := strconv.ParseUint(h[2:], 16, 64)
			return n, err == nil
		}
		n, err := strconv.ParseUint(h, 10, 64)
		return n, err == nil
	}
	return 0, false
}

// waitHeights sends a request to wake the chain, then polls /admin/upstreams
// until every named upstream reports the wanted height (bounded).
func (b *Balancer) waitHeights(chain string, want map[string]uint64) {
	s := b.s
	s.Helper()
	b.Post(chain, rpc.Request(1, "eth_chainId"))
	deadline := time.Now().Add(30 * time.Second)
	var last []byte
	for time.Now().Before(deadline) {
		r := b.Admin(http.MethodGet, "/admin/upstreams")
		last = r.Body
		got := upstreamHeights(r.Body)
		ok := true
		for name, h := range want {
			if got[name] != h {
				ok = false
			}
		}
		if ok {
			return
		}
		time.Sleep(250 * time.Millisecond)
	}
	s.Fatalf("upstreams never reported heights %v; last /admin/upstreams: %s\n--- log ---\n%s", want, last, b.Inst.Logs())
}

// waitHead polls eth_blockNumber through the balancer until it answers want
// (a hex quantity), that is until the balancer has learned which upstream is
// highest. It does not use the admin API, so routing is tested apart from it.
func (b *Balancer) waitHead(chain, want string) {
	s := b.s
	s.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var last []byte
	for time.Now().Before(deadline) {
		r := b.Post(chain, rpc.Request(1, "eth_blockNumber"))
		last = r.Body
		if m, err := rpc.Decode(r.Body); err == nil && string(m.Result) == `"`+want+`"` {
			return
		}
		time.Sleep(250 * time.Millisecond)
	}
	s.Fatalf("eth_blockNumber never became %s; last answer %s\n--- log ---\n%s", want, last, b.Inst.Logs())
}

// The upstream at the higher block wins; one lagging 10 blocks never answers
// reads once its height is known. Two upstreams are at the head: one alone
// more than max_lag_blocks above every other is a lead nobody confirms, not
// believed (issue 17).
func scHigherWins(s *S) {
	n := s.Node(31337, 30)
	lag, ulag := s.Upstream(n, "ethereum", "lagging")
	_, uhead := s.Upstream(n, "ethereum", "head")
	_, uhead2 := s.Upstream(n, "ethereum", "head2")
	lag.SetHeightOffset(-10)
	// The lagging one comes first, so "first in the config" cannot pass.
	b := s.Start([]target.Upstream{ulag, uhead, uhead2}, nil)
	b.waitHead("ethereum", "0x1e")
	// The heights are known after a health round or two: wait until the admin view has them.
	b.waitHeights("ethereum", map[string]uint64{"lagging": 20, "head": 30, "head2": 30})
	lag.ResetCounts()
	for i := range 10 {
		r := b.Post("ethereum", rpc.Request(i, "eth_blockNumber"))
		m, err := rpc.Decode(r.Body)
		s.must(err == nil && string(m.Result) == `"0x1e"`, "request %d: eth_blockNumber = %d %s, want 0x1e", i, r.Status, r.Body)
		if i == 0 {
			s.Record("eth_blockNumber", r, NormRPC)
		}
		r = b.Post("ethereum", rpc.Request(i, "eth_getBlockByNumber", "latest", false))
		var blk struct{ Number string }
		m, err = rpc.Decode(r.Body)
		s.must(err == nil && json.Unmarshal(m.Result, &blk) == nil && blk.Number == "0x1e", "request %d: latest block %s, want number 0x1e", i, rpc.Trunc(r.Body, 200))
	}
	// At latest only: its health checks ask eth_getBlockByNumber too (the finalized block, issue 19).
	s.must(lag.CountAtLatest("eth_getBlockByNumber") == 0, "the lagging upstream served %d block reads", lag.CountAtLatest("eth_getBlockByNumber"))
	s.Note("lagging upstream block reads", "0")
}

// An unknown chain is 404 with a JSON-RPC error.
func scUnknownChain(s *S) {
	n := s.Node(31337, 1)
	_, up := s.Upstream(n, "ethereum", "one")
	b := s.Start([]target.Upstream{up}, nil)
	r := b.Post("no-such-chain", rpc.Request(5, "eth_chainId"))
	s.Record("POST /no-such-chain", r, NormRPC)
	s.must(r.Status == http.StatusNotFound, "unknown chain: %d %s", r.Status, r.Body)
	_, ok := isRPCError(r.Body)
	s.must(ok, "unknown chain: not a JSON-RPC error: %s", r.Body)
}

// When no upstream can answer: 503 with a JSON-RPC error naming no URL, for
// refused connections and for upstreams answering 500, in bounded time.
func scAllDown(s *S) {
	n := s.Node(31337, 1)
	p1, u1 := s.Upstream(n, "ethereum", "one")
	p2, u2 := s.Upstream(n, "ethereum", "two")
	b := s.Start([]target.Upstream{u1, u2}, nil)
	for _, k := range []faultproxy.Kind{faultproxy.Refuse, faultproxy.HTTP500, faultproxy.Hang} {
		s.must(p1.SetFault(k) == nil && p2.SetFault(k) == nil, "SetFault")
		start := time.Now()
		r := b.Post("ethereum", rpc.Request(1, "eth_getBalance", anvil.DevAddress, "latest"))
		took := time.Since(start)
		s.Record("all "+k.String(), r, NormRPC)
		if r.Status != http.StatusServiceUnavailable {
			s.Errorf("all upstreams %s: status %d %s, want 503", k, r.Status, r.Body)
		}
		if _, ok := isRPCError(r.Body); !ok {
			s.Errorf("all upstreams %s: not a JSON-RPC error: %s", k, r.Body)
		}
		for _, leak := range []string{"127.0.0.1", "http://", p1.Addr(), p2.Addr()} {
			if bytes.Contains(r.Body, []byte(leak)) {
				s.Errorf("all upstreams %s: the answer names %q: %s", k, leak, r.Body)
			}
		}
		if took > 30*time.Second {
			s.Errorf("all upstreams %s: answered after %v", k, took)
		}
	}
}

// Admin endpoints need basic auth as admin with ADMIN_PASSWORD; every one
// answers JSON with it. Admin writes also need a request that a browser would
// only send cross-origin after a preflight.
func scAdminAuth(s *S) {
	n := s.Node(31337, 1)
	_, up := s.Upstream(n, "ethereum", "one")
	b := s.Start([]target.Upstream{up}, nil)
	b.Post("ethereum", rpc.Request(1, "eth_chainId"))
	eps := []struct{ method, path string }{
		{http.MethodGet, "/admin/chains"},
		{http.MethodGet, "/admin/upstreams"},
		{http.MethodGet, "/admin/stats"},
		{http.MethodPost, "/admin/init_upstreams"},
		{http.MethodPost, "/admin/clear_storage"},
		{http.MethodDelete, "/admin/clear_storage"},
	}
	wrong := []struct {
		name string
		hdr  map[string]string
	}{
		{"no auth", nil},
		{"wrong password", map[string]string{"Authorization": basic("admin", "not-"+s.Password)}},
		{"wrong user", map[string]string{"Authorization": basic("root", s.Password)}},
		{"password prefix", map[string]string{"Authorization": basic("admin", s.Password[:len(s.Password)-1])}},
		{"bearer", map[string]string{"Authorization": "Bearer " + s.Password}},
	}
	for _, ep := range eps {
		for _, w := range wrong {
			r := b.Do(ep.method, ep.path, nil, w.hdr)
			s.Record(ep.method+" "+ep.path+" "+w.name, r, NormStatusOnly)
			if r.Status != http.StatusUnauthorized {
				s.Errorf("%s %s with %s: %d %s, want 401", ep.method, ep.path, w.name, r.Status, r.Body)
			}
			if wa := r.Header.Get("WWW-Authenticate"); !strings.HasPrefix(strings.ToLower(wa), "basic") {
				s.Errorf("%s %s with %s: WWW-Authenticate %q", ep.method, ep.path, w.name, wa)
			}
		}
		if ep.method != http.MethodGet {
			// A form another site's page posts with the browser's credentials
			// is refused: admin writes need a request that takes a preflight.
			form := map[string]string{"Authorization": basic("admin", s.Password), "Origin": "https://evil.example",
				"Content-Type": "application/x-www-form-urlencoded"}
			r := b.Do(ep.method, ep.path, []byte("x=1"), form)
			s.Record(ep.method+" "+ep.path+" cross-site form", r, NormRPC)
			if r.Status != http.StatusUnsupportedMediaType || r.Header.Get("Access-Control-Allow-Origin") != "" {
				s.Errorf("%s %s as a cross-site form: %d %s, want 415 without CORS", ep.method, ep.path, r.Status, r.Body)
			}
		}
		r := b.Admin(ep.method, ep.path)
		s.Record(ep.method+" "+ep.path, r, NormTopKeys)
		if r.Status != http.StatusOK || !json.Valid(r.Body) {
			s.Errorf("%s %s authorized: %d %s, want 200 JSON", ep.method, ep.path, r.Status, r.Body)
		}
	}
}

// init_upstreams then /admin/upstreams lists every configured upstream with
// its chain and height; chains and stats reflect traffic.
func scAdminInit(s *S) {
	na := s.Node(1001, 6)
	nb := s.Node(1002, 9)
	_, a1 := s.Upstream(na, "alpha", "alpha-1")
	_, a2 := s.Upstream(na, "alpha", "alpha-2")
	_, b1 := s.Upstream(nb, "beta", "beta-1")
	b := s.Start([]target.Upstream{a1, a2, b1}, nil)
	r := b.Admin(http.MethodPost, "/admin/init_upstreams")
	s.Record("init_upstreams", r, NormTopKeys)
	s.must(r.Status == http.StatusOK, "init_upstreams: %d %s", r.Status, r.Body)
	b.waitHeights("alpha", map[string]uint64{"alpha-1": 6, "alpha-2": 6})
	b.waitHeights("beta", map[string]uint64{"beta-1": 9})
	r = b.Admin(http.MethodGet, "/admin/upstreams")
	s.Record("upstreams", r, NormTopKeys)
	s.Note("upstream heights", fmt.Sprint(upstreamHeights(r.Body)))
	for _, name := range []string{"alpha-1", "alpha-2", "beta-1"} {
		s.must(bytes.Contains(r.Body, []byte(`"`+name+`"`)), "/admin/upstreams lacks %s: %s", name, r.Body)
	}
	for range 3 {
		b.Post("alpha", rpc.Request(1, "eth_getBalance", anvil.DevAddress, "latest"))
	}
	r = b.Admin(http.MethodGet, "/admin/chains")
	s.Record("chains", r, NormTopKeys)
	s.must(bytes.Contains(r.Body, []byte("alpha")) && bytes.Contains(r.Body, []byte("beta")), "/admin/chains: %s", r.Body)
	r = b.Admin(http.MethodGet, "/admin/stats")
	s.must(r.Status == http.StatusOK && bytes.Contains(r.Body, []byte("eth_getBalance")), "/admin/stats does not count eth_getBalance: %s", r.Body)
	// Upstream URLs appear at most as scheme://host.
	for _, path := range []string{"/admin/upstreams", "/admin/chains", "/admin/stats"} {
		r = b.Admin(http.MethodGet, path)
		s.must(!bytes.Contains(r.Body, []byte("/v2/")), "%s shows an upstream URL path: %s", path, r.Body)
	}
	// clear_storage then init again: the list comes back.
	r = b.Admin(http.MethodPost, "/admin/clear_storage")
	s.must(r.Status == http.StatusOK, "clear_storage: %d %s", r.Status, r.Body)
	r = b.Admin(http.MethodPost, "/admin/init_upstreams")
	s.must(r.Status == http.StatusOK, "init_upstreams after clear: %d %s", r.Status, r.Body)
	r = b.Admin(http.MethodGet, "/admin/upstreams")
	s.must(bytes.Contains(r.Body, []byte(`"beta-1"`)), "/admin/upstreams after clear and init: %s", r.Body)
	r = b.Post("beta", rpc.Request(3, "eth_blockNumber"))
	s.Record("beta eth_blockNumber after clear", r, NormRPC)
}

// A malformed UPSTREAM_CONFIG is a clear error answer, not a crash, and never
// shows the secrets it holds.
func scMalformedConfig(s *S) {
	key := s.Secret()
	for i, raw := range []string{
		`[{"chain":"ethereum","name":"x","upstream":"http://127.0.0.1:9/v2/` + key + `"`, // truncated JSON
		`{"chain":"ethereum"}`, // not an array
		`[{"chain":"ethereum","name":"x","upstream":"ftp://127.0.0.1/` + key + `"}]`, // bad scheme
		`[{"chain":"","name":"x","upstream":"http://127.0.0.1:9/` + key + `"}]`,      // no chain
	} {
		b := s.StartConfig(target.Config{RawUpstreamConfig: raw})
		r := b.Post("ethereum", rpc.Request(1, "eth_chainId"))
		s.Record(fmt.Sprintf("config %d: POST", i), r, NormRPC)
		if r.Status < 400 {
			s.Errorf("config %d: POST answered %d %s, want an error", i, r.Status, r.Body)
		}
		if _, ok := isRPCError(r.Body); !ok {
			s.Errorf("config %d: not a JSON-RPC error: %s", i, r.Body)
		}
		r = b.Do(http.MethodGet, "/", nil, nil)
		s.Record(fmt.Sprintf("config %d: GET /", i), r, NormStatusOnly)
		if r.Status >= 500 {
			s.Errorf("config %d: GET / = %d", i, r.Status)
		}
		b.Inst.Stop()
	}
}

// Secrets in an upstream URL (user-info, path, query) appear nowhere, and the
// upstream is still reached with them.
func scSecretURL(s *S) {
	n := s.Node(31337, 2)
	p, up := s.Upstream(n, "ethereum", "keyed")
	user, pass := "u"+s.Secret(), "p"+s.Secret()
	up.URL = strings.Replace(up.URL, "http://", "http://"+user+":"+pass+"@", 1)
	b := s.Start([]target.Upstream{up}, nil)
	r := b.Post("ethereum", rpc.Request(1, "eth_blockNumber"))
	s.Record("eth_blockNumber", r, NormRPC)
	s.must(r.Status == http.StatusOK && bytes.Contains(r.Body, []byte(`"0x2"`)), "through a keyed URL: %d %s", r.Status, r.Body)
	s.must(p.Forwarded("eth_blockNumber") > 0, "the proxy never saw a request with its key")
	// A provider's refusal that quotes its key (in its message, and its URL in its data) is an answer the balancer
	// passes on: with the key replaced (the secret scan reads the answer).
	s.must(p.SetFault(faultproxy.EchoKey, "eth_getBalance") == nil, "SetFault")
	r = b.Post("ethereum", rpc.Request(4, "eth_getBalance", anvil.DevAddress, "latest"))
	s.must(r.Status == http.StatusOK && bytes.Contains(r.Body, []byte("invalid API key [redacted]")) && bytes.Contains(r.Body, []byte("/v2/[redacted]?apikey=[redacted]")),
		"a refusal quoting the upstream's key: %d %s", r.Status, r.Body)
	// Errors are where URLs leak: make the upstream fail and look again.
	s.must(p.SetFault(faultproxy.HTTP500) == nil, "SetFault")
	r = b.Post("ethereum", rpc.Request(2, "eth_blockNumber"))
	s.Record("eth_blockNumber, upstream failing", r, NormRPC)
	s.must(p.SetFault(faultproxy.Refuse) == nil, "SetFault")
	r = b.Post("ethereum", rpc.Request(3, "eth_blockNumber"))
	s.Record("eth_blockNumber, upstream refusing", r, NormRPC)
	for _, path := range []string{"/admin/upstreams", "/admin/chains", "/admin/stats"} {
		b.Admin(http.MethodGet, path) // the secret check reads every answer
	}
	b.Do(http.MethodGet, "/", nil, nil)
}

// Initialised upstreams and statistics survive a restart on the same state.
func scRestart(s *S) {
	n := s.Node(31337, 3)
	_, up := s.Upstream(n, "ethereum", "durable")
	state := s.TempDir()
	b := s.StartConfig(target.Config{Upstreams: []target.Upstream{up}, StateDir: state})
	s.must(b.Admin(http.MethodPost, "/admin/init_upstreams").Status == http.StatusOK, "init_upstreams")
	for range 3 {
		b.Post("ethereum", rpc.Request(1, "eth_getBalance", anvil.DevAddress, "latest"))
	}
	// The counts reach storage from the isolates through the chain object (stored with its rows, and kept there
	// once handed to the upstream's object until its next report acknowledges them) and the upstream's object
	// (stored with a health report's answer): stop once /admin/stats, which reads both, has all three. The stop
	// may cut a handover between the chain's answer and the object's put (the first health check reports about
	// when the counts arrive): the restarted /admin/stats must show the same counts, none lost or counted twice.
	var before uint64
	b.waitAdmin("/admin/stats", "the three eth_getBalance in /admin/stats", func(body []byte) bool {
		before = methodCount(body, "durable", "eth_getBalance")
		return before >= 3
	})
	b.Inst.Stop()
	b = s.StartConfig(target.Config{Upstreams: []target.Upstream{up}, StateDir: state})
	r := b.Admin(http.MethodGet, "/admin/stats")
	s.Record("stats after restart", r, NormTopKeys)
	after := methodCount(r.Body, "durable", "eth_getBalance")
	s.must(after == before, "stats lost or counted twice across a restart: eth_getBalance %d before, %d after: %s", before, after, r.Body)
	r = b.Admin(http.MethodGet, "/admin/upstreams")
	s.must(bytes.Contains(r.Body, []byte(`"durable"`)), "upstreams lost across a restart: %s", r.Body)
}

// Failover within one request: the upstream the balancer prefers (it has
// the higher head) fails client reads in the given way; every read still
// gets the node's answer, in bounded time, and the failing upstream was
// tried. For Refuse the upstream goes away altogether after it was preferred.
func scFailover(s *S, kind faultproxy.Kind) {
	n := s.Node(31337, 10)
	bad, ubad := s.Upstream(n, "ethereum", "bad")
	good, ugood := s.Upstream(n, "ethereum", "good")
	// "good" lags 2 blocks (a head that bad cannot just claim: the balancer
	// checks that an upstream serves the head it claims, issue 8).
	good.SetHeightOffset(-2)
	b := s.Start([]target.Upstream{ubad, ugood}, nil)
	// Once the head reads 10, the balancer knows bad is the higher.
	b.waitHead("ethereum", "0xa")
	if kind == faultproxy.Refuse {
		s.must(bad.SetFault(kind) == nil, "SetFault")
	} else {
		// Only client reads fail: health checks still see "bad" as best.
		s.must(bad.SetFault(kind, "eth_getBalance") == nil, "SetFault")
	}
	body := rpc.Request(1, "eth_getBalance", anvil.DevAddress, "latest")
	want := s.direct(n, body)
	for i := range 3 {
		start := time.Now()
		r := b.Post("ethereum", body)
		took := time.Since(start)
		if i == 0 {
			s.Record("eth_getBalance", r, NormRPC)
		}
		if r.Status != http.StatusOK || !bytes.Equal(r.Body, want.Body) {
			s.Errorf("read %d with the best upstream %s: %d %s, want %s\n--- log ---\n%s", i, kind, r.Status, r.Body, want.Body, b.Inst.Logs())
		}
		if took > 30*time.Second {
			s.Errorf("read %d with the best upstream %s took %v", i, kind, took)
		}
	}
	if kind != faultproxy.Refuse {
		s.must(bad.Count("eth_getBalance") >= 1, "the failing upstream was never tried (no failover exercised)")
	}
	// A redirect is never followed, by requests or health checks.
	s.must(bad.RedirectsFollowed() == 0, "the redirect was followed %d times", bad.RedirectsFollowed())
}

// Issue 4's fault table (and issue 8's rows): bad of three upstreams have the
// fault from the start; every read gets the right answer (head, chain id, the
// latest block at that head) within a bounded time.
func scFaultTable(s *S, f faultproxy.Fault, bad int) {
	n := s.Node(31337, 60)
	var ups []target.Upstream
	for i := range 3 {
		p, u := s.Upstream(n, "ethereum", fmt.Sprintf("u%d", i))
		if i < bad {
			s.must(f.Apply(p) == nil, "applying %s", f.Name)
		}
		ups = append(ups, u)
	}
	var b *Balancer
	if f.Pinned && bad == 2 {
		// When most upstreams are on the wrong chain, the majority is wrong: only a configured chain id can
		// tell (the object form of UPSTREAM_CONFIG). With one of three, the majority decides unconfigured.
		raw, _ := json.Marshal(map[string]any{
			"chains":    map[string]any{"ethereum": map[string]any{"chain_id": 31337}},
			"upstreams": ups,
		})
		b = s.StartConfig(target.Config{RawUpstreamConfig: string(raw)})
	} else {
		b = s.Start(ups, nil)
	}
	// No wait here: health checks start with the chain's first request (its first exchange checks every upstream
	// before routing), so the first read below meets the faults as a new deployment does.
	head := `"0x3c"`
	if bad == 2 {
		// Two of three at a lower head that stands still (50 stale, or a node reset to block 0) and one at 60: a
		// lead no other upstream confirms, which cannot be told from a liar's (issue 17): the chain reads at the
		// head the two agree on.
		switch f.Name {
		case "stale50":
			head = `"0xa"`
		case "reset0":
			head = `"0x0"`
		}
	}
	checks := []struct {
		body []byte
		want string
	}{
		{rpc.Request(1, "eth_blockNumber"), head},
		{rpc.Request(2, "eth_chainId"), `"0x7a69"`},
	}
	for i := range 10 {
		for _, c := range checks {
			start := time.Now()
			r := b.Post("ethereum", c.body)
			m, err := rpc.Decode(r.Body)
			if err != nil || string(m.Result) != c.want {
				s.Errorf("read %d: %d %s, want result %s", i, r.Status, r.Body, c.want)
			}
			if d := time.Since(start); d > 30*time.Second {
				s.Errorf("read %d took %v", i, d)
			}
			if i == 0 {
				s.Record(string(c.body), r, NormRPC)
			}
		}
		// The latest block is the head eth_blockNumber answered (issue 8).
		r := b.Post("ethereum", rpc.Request(3, "eth_getBlockByNumber", "latest", false))
		var blk struct{ Number string }
		if m, err := rpc.Decode(r.Body); err != nil || json.Unmarshal(m.Result, &blk) != nil || `"`+blk.Number+`"` != head {
			s.Errorf("read %d: latest block %d %s, want number %s", i, r.Status, rpc.Trunc(r.Body, 200), head)
		}
	}
}

// Hostile input gets the JSON-RPC error issue 4 names, never a 5xx.
func scHostile(s *S) {
	n := s.Node(31337, 1)
	_, up := s.Upstream(n, "ethereum", "one")
	b := s.Start([]target.Upstream{up}, map[string]string{"EVMLB_MAX_BODY_BYTES": "4096"})
	cases := []struct {
		name   string
		body   string
		status int
		code   int
	}{
		{"malformed JSON", `{"jsonrpc":"2.0",`, 0, -32700},
		{"not an object", `42`, 0, -32600},
		{"no method", `{"jsonrpc":"2.0","id":1}`, 0, -32600},
		{"wrong jsonrpc", `{"jsonrpc":"1.0","id":1,"method":"eth_chainId"}`, 0, -32600},
		{"empty batch", `[]`, 0, -32600},
		{"invalid UTF-8", "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"eth_\xff\"}", http.StatusBadRequest, -32700},
		{"denied method", `{"jsonrpc":"2.0","id":1,"method":"admin_peers","params":[]}`, http.StatusForbidden, -32067},
		// Anvil reads keys exactly (serde) and would run eth_sign; Go's encoding/json, eth_chainId.
		{"case-variant key", `{"jsonrpc":"2.0","id":1,"method":"eth_sign","params":[],"METHOD":"eth_chainId"}`, http.StatusBadRequest, -32600},
		{"duplicate key", `[{"jsonrpc":"2.0","id":1,"method":"eth_sendTransaction","method":"eth_chainId","params":[]}]`, http.StatusBadRequest, -32600},
		{"denied dev-node method", `{"jsonrpc":"2.0","id":1,"method":"anvil_mine","params":["0x1"]}`, http.StatusForbidden, -32067},
		{"body over the limit", `{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":["` + strings.Repeat("a", 8192) + `"]}`, http.StatusRequestEntityTooLarge, 0},
	}
	for _, c := range cases {
		r := b.Post("ethereum", []byte(c.body))
		s.Record(c.name, r, NormRPC)
		if r.Status >= 500 {
			s.Errorf("%s: %d %s", c.name, r.Status, r.Body)
		}
		if c.status != 0 && r.Status != c.status {
			s.Errorf("%s: status %d, want %d", c.name, r.Status, c.status)
		}
		e, ok := isRPCError(r.Body)
		if !ok || (c.code != 0 && e.Code != c.code) {
			s.Errorf("%s: %s, want JSON-RPC error %d", c.name, r.Body, c.code)
		}
	}
	r := b.Do(http.MethodGet, "/ethereum", nil, nil)
	s.Record("GET /ethereum", r, NormRPC)
	if r.Status != http.StatusMethodNotAllowed || !strings.Contains(r.Header.Get("Allow"), "POST") {
		s.Errorf("GET /ethereum: %d Allow %q, want 405 with Allow: POST", r.Status, r.Header.Get("Allow"))
	}
}

// A write that reached an upstream is never sent to it again, even when that
// upstream answered 500: with two upstreams the transaction is broadcast
// (broadcast_writes), each gets it exactly once, and neither again.
func scWriteNotRetried(s *S) {
	n := s.Node(31337, 1)
	p1, u1 := s.Upstream(n, "ethereum", "one")
	p2, u2 := s.Upstream(n, "ethereum", "two")
	b := s.Start([]target.Upstream{u1, u2}, nil)
	s.must(p1.SetFault(faultproxy.HTTP500, "eth_sendRawTransaction") == nil, "SetFault")
	s.must(p2.SetFault(faultproxy.HTTP500, "eth_sendRawTransaction") == nil, "SetFault")
	// Any bytes will do: the upstreams fail it before the node sees it.
	r := b.Post("ethereum", rpc.Request(1, "eth_sendRawTransaction", "0x02f8"))
	s.Record("eth_sendRawTransaction", r, NormStatusOnly)
	if c1, c2 := p1.Count("eth_sendRawTransaction"), p2.Count("eth_sendRawTransaction"); c1 != 1 || c2 != 1 {
		s.Errorf("eth_sendRawTransaction reached the upstreams %d and %d times, want exactly once each", c1, c2)
	}
}

// The Go runtime lives as long as the isolate: requests do not start new ones. /admin/stats tells when the
// runtime that answered started and how many requests it has served; forty requests later (sequential and
// concurrent) the same runtime answers, and its count grew by at least the forty.
func scOneRuntime(s *S) {
	n := s.Node(31337, 1)
	_, up := s.Upstream(n, "ethereum", "one")
	b := s.Start([]target.Upstream{up}, nil)
	b.Post("ethereum", rpc.Request(1, "eth_chainId")) // the chain and upstream objects exist from here on
	before := runtimes(s, b)
	t0 := time.Now()
	for i := range 20 {
		b.Post("ethereum", rpc.Request(i, "eth_blockNumber"))
	}
	done := make(chan struct{})
	for i := range 20 {
		go func() {
			defer func() { done <- struct{}{} }()
			_, _ = rpc.Post(s.Ctx, nil, b.Inst.URL+"/ethereum", rpc.Request(100+i, "eth_chainId"))
		}()
	}
	for range 20 {
		<-done
	}
	after := runtimes(s, b)
	var servedBefore, servedAfter uint64
	for start, rt := range after {
		s.must(start.Before(t0), "a Go runtime started during the requests (at %v; they began at %v)", start, t0)
		servedBefore, servedAfter = servedBefore+before[start].served, servedAfter+rt.served
	}
	// Every runtime was read before and after (runtimes), so together they served every request sent between.
	s.must(servedAfter >= servedBefore+40, "requests served by the runtimes: %d, then %d (40 sent)", servedBefore, servedAfter)
	s.Record("runtime kept", &rpc.Response{Status: http.StatusOK}, NormStatusOnly)
}

// runtimeSeen is what /admin/stats said of one Go runtime.
type runtimeSeen struct {
	served uint64 // requests served (the most it said)
	memory uint64 // its linear memory (the last it said)
}

// runtimes reads /admin/stats, each time on a new connection, until a runtime answers a second time, and returns
// each Go runtime that answered, by its start. A host may run the Worker in a pool of runtimes: the wazero host
// gives new connections to its runtimes in turn, so one round sees every one of them; workerd's isolate is one.
func runtimes(s *S, b *Balancer) map[time.Time]runtimeSeen {
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	out := map[time.Time]runtimeSeen{}
	for range 64 {
		r, err := rpc.Do(s.Ctx, client, http.MethodGet, b.Inst.URL+"/admin/stats", nil, map[string]string{"Authorization": basic("admin", s.Password)})
		if err != nil {
			s.Fatalf("/admin/stats: %v", err)
		}
		var st struct {
			Runtime struct {
				StartedAt      time.Time `json:"started_at"`
				RequestsServed uint64    `json:"requests_served"`
				MemoryBytes    uint64    `json:"memory_bytes"`
			}
		}
		if r.Status != http.StatusOK || json.Unmarshal(r.Body, &st) != nil || st.Runtime.StartedAt.IsZero() || st.Runtime.MemoryBytes == 0 {
			s.Fatalf("/admin/stats: %d %s", r.Status, r.Body)
		}
		prev, again := out[st.Runtime.StartedAt]
		out[st.Runtime.StartedAt] = runtimeSeen{served: max(prev.served, st.Runtime.RequestsServed), memory: st.Runtime.MemoryBytes}
		if again {
			return out
		}
	}
	s.Fatalf("/admin/stats: 64 reads and no runtime answered twice: %v", out)
	return nil
}

// A notification gets no answer: the node says 204 with no body, and so does the balancer, for a single
// notification and a batch of them; the upstream is not blamed, so the next call is served by it as usual.
func scNotifications(s *S) {
	n := s.Node(31337, 1)
	_, up := s.Upstream(n, "ethereum", "one")
	b := s.Start([]target.Upstream{up}, nil)
	for _, c := range []struct{ name, body string }{
		{"single notification", `{"jsonrpc":"2.0","method":"eth_chainId","params":[]}`},
		{"batch of notifications", `[{"jsonrpc":"2.0","method":"eth_chainId"},{"jsonrpc":"2.0","method":"eth_blockNumber"}]`},
	} {
		r := b.Post("ethereum", []byte(c.body))
		s.Record(c.name, r, NormRPC)
		if r.Status != http.StatusNoContent || len(bytes.TrimSpace(r.Body)) != 0 {
			s.Errorf("%s: %d %q, want 204 and no body", c.name, r.Status, r.Body)
		}
	}
	r := b.Post("ethereum", rpc.Request(1, "eth_chainId"))
	s.must(r.Status == http.StatusOK && bytes.Contains(r.Body, []byte(`"0x7a69"`)), "after notifications: %d %s", r.Status, r.Body)
}

// A dapp in a browser page of another origin can call the balancer: the preflight gets 204 with the CORS
// headers, and the answer carries Access-Control-Allow-Origin.
func scCORS(s *S) {
	n := s.Node(31337, 1)
	_, up := s.Upstream(n, "ethereum", "one")
	b := s.Start([]target.Upstream{up}, nil)
	pre := b.Do(http.MethodOptions, "/ethereum", nil, map[string]string{
		"Origin": "https://dapp.example", "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type",
	})
	s.Record("preflight", pre, NormStatusOnly)
	if pre.Status != http.StatusNoContent || pre.Header.Get("Access-Control-Allow-Origin") != "*" ||
		!strings.Contains(pre.Header.Get("Access-Control-Allow-Methods"), "POST") {
		s.Errorf("preflight: %d %v", pre.Status, pre.Header)
	}
	r := b.Do(http.MethodPost, "/ethereum", rpc.Request(1, "eth_chainId"), map[string]string{"Content-Type": "application/json", "Origin": "https://dapp.example"})
	s.Record("POST", r, NormRPC)
	if r.Status != http.StatusOK || r.Header.Get("Access-Control-Allow-Origin") != "*" {
		s.Errorf("POST: %d %v %s", r.Status, r.Header, r.Body)
	}
}

// Large requests do not kill the runtime: ten concurrent bodies at the body limit at once are each answered, by
// the node (admitted) or with 503 and -32069 (over EVMLB_MAX_INFLIGHT_BYTES), and the same Go runtime goes on
// answering afterwards (the isolate survived: one start, no 500). Anvil refuses bodies over about 2 MB, so the
// limits are scaled down: 1 MiB bodies, 2 MiB in flight.
func scLargeRequests(s *S) {
	n := s.Node(31337, 1)
	_, up := s.Upstream(n, "ethereum", "big")
	b := s.Start([]target.Upstream{up}, map[string]string{"EVMLB_MAX_BODY_BYTES": "1048576", "EVMLB_MAX_INFLIGHT_BYTES": "2097152"})
	b.Post("ethereum", rpc.Request(1, "eth_chainId"))
	before := runtimes(s, b) // every runtime is up before the load
	t0 := time.Now()
	body := []byte(`{"jsonrpc":"2.0","id":7,"method":"eth_call","params":[{"to":"` + anvil.DevAddress + `","data":"0x` + strings.Repeat("ab", (1<<20-4096)/2) + `"},"latest"]}`)
	type answer struct {
		status int
		body   []byte
		err    error
	}
	answers := make(chan answer, 10)
	for range 10 {
		go func() {
			r, err := rpc.Post(s.Ctx, nil, b.Inst.URL+"/ethereum", body)
			if err != nil {
				answers <- answer{err: err}
				return
			}
			answers <- answer{status: r.Status, body: r.Body}
		}()
	}
	admitted := 0
	for range 10 {
		a := <-answers
		switch {
		case a.err != nil:
			s.Fatalf("a large request failed: %v", a.err)
		case a.status == http.StatusOK && bytes.Contains(a.body, []byte(`"result"`)):
			admitted++
		case a.status == http.StatusServiceUnavailable && bytes.Contains(a.body, []byte(`-32069`)):
		default:
			s.Fatalf("a large request got %d %.200s", a.status, a.body)
		}
	}
	s.must(admitted >= 1, "no large request was admitted")
	for i := range 20 {
		r := b.Post("ethereum", rpc.Request(100+i, "eth_blockNumber"))
		s.must(r.Status == http.StatusOK, "after the large requests: %d %s", r.Status, r.Body)
	}
	var grew uint64
	for start, rt := range runtimes(s, b) {
		s.must(start.Before(t0), "a runtime restarted under the large requests (started at %v; they began at %v)", start, t0)
		grew += rt.memory - min(rt.memory, before[start].memory)
	}
	// Each runtime holds at most 2 MiB of bodies at once (EVMLB_MAX_INFLIGHT_BYTES), each held once: the ten
	// bodies (10 MiB) must not grow memory by more than about two of them per runtime. Before issue 11 they grew
	// one runtime by 54 MiB.
	s.Logf("%s: ten concurrent 1 MiB requests grew the runtimes' memory by %.1f MiB in all (%d runtimes)", s.Host.Name(), float64(grew)/(1<<20), len(before))
	s.must(grew <= uint64(len(before))*6<<20, "ten concurrent 1 MiB requests grew memory by %d bytes over %d runtimes", grew, len(before))
	s.Record("large requests answered, runtime kept", &rpc.Response{Status: http.StatusOK}, NormStatusOnly)
}

// The operator's command reads a running balancer: `evmlb status --url` (build/evmlb, no Cloudflare token) shows
// the chain's upstream and its state, and never the upstream's secret path or the admin password.
func scStatusCommand(s *S) {
	n := s.Node(31337, 3)
	_, up := s.Upstream(n, "ethereum", "statusup")
	b := s.Start([]target.Upstream{up}, nil)
	s.must(b.Post("ethereum", rpc.Request(1, "eth_blockNumber")).Status == http.StatusOK, "eth_blockNumber")
	bin, err := repo.Path("build", "evmlb")
	s.must(err == nil, "build/evmlb: %v", err)
	cmd := exec.CommandContext(s.Ctx, bin, "status", "--url", b.Inst.URL)
	cmd.Env = append(os.Environ(), "ADMIN_PASSWORD="+s.Password, "CLOUDFLARE_API_TOKEN=")
	out, err := cmd.CombinedOutput()
	s.must(err == nil, "evmlb status: %v\n%s", err, out)
	s.must(bytes.Contains(out, []byte("ethereum")) && bytes.Contains(out, []byte("statusup")), "evmlb status shows no upstream:\n%s", out)
	s.checkNoSecret("evmlb status output", out)
	s.must(!bytes.Contains(out, []byte(s.Password)), "evmlb status printed the admin password")
	s.Record("evmlb status", &rpc.Response{Status: http.StatusOK}, NormStatusOnly)
}

// Issue 18: a request that takes its node down (here a debug_traceCall with a
// built-in tracer and a marker in its data: each fault proxy, on seeing the
// marker, resets the connection and refuses from then on, as a crashed node)
// is not sent to the second upstream: the client gets -32072, the second
// upstream's node still answers, the same calls are refused again without an
// attempt, and reads go on. A custom JavaScript tracer is refused before any
// upstream sees it (-32067).
func scPoison(s *S) {
	n := s.Node(31337, 10)
	p1, u1 := s.Upstream(n, "ethereum", "one")
	p2, u2 := s.Upstream(n, "ethereum", "two")
	b := s.Start([]target.Upstream{u1, u2}, nil)
	b.waitHead("ethereum", "0xa")
	const marker = "5ca1ab1e0badc0de"
	s.must(p1.SetPoison(marker) == nil && p2.SetPoison(marker) == nil, "SetPoison")
	call := map[string]any{"to": "0x0000000000000000000000000000000000000004", "data": "0x" + marker}
	trace := func(id int) []byte {
		return rpc.Request(id, "debug_traceCall", call, "latest", map[string]any{"tracer": "callTracer"})
	}
	isPoison := func(r *rpc.Response) bool {
		e, ok := isRPCError(r.Body)
		return r.Status == http.StatusBadGateway && ok && e.Code == -32072
	}
	r := b.Post("ethereum", trace(7))
	s.Record("debug_traceCall that takes its node down", r, NormRPC)
	s.must(isPoison(r), "the poison request: %d %s, want 502 -32072\n--- log ---\n%s", r.Status, r.Body, b.Inst.Logs())
	s.must(p1.Poisoned()+p2.Poisoned() == 1, "the poison request reached %d upstreams, want 1", p1.Poisoned()+p2.Poisoned())
	survivor := p2
	if p2.Poisoned() == 1 {
		survivor = p1
	}
	alive := func(when string) {
		rr, err := rpc.Post(s.Ctx, nil, survivor.URL(), rpc.Request(1, "eth_chainId"))
		s.must(err == nil && rr.Status == http.StatusOK, "%s: the second upstream's node does not answer: %v", when, err)
		_, isErr := isRPCError(rr.Body)
		s.must(!isErr, "%s: the second upstream's node answers %s", when, rr.Body)
	}
	alive("after the poison request")

	r = b.Post("ethereum", trace(8))
	s.Record("the same calls again", r, NormRPC)
	s.must(isPoison(r), "the same calls again: %d %s, want 502 -32072", r.Status, r.Body)
	s.must(survivor.Poisoned() == 0, "the repeat reached the second upstream")
	alive("after the repeat")

	body := rpc.Request(1, "eth_getBalance", anvil.DevAddress, "latest")
	want := s.direct(n, body)
	r = b.Post("ethereum", body)
	s.must(r.Status == http.StatusOK && bytes.Equal(r.Body, want.Body), "a read after the poison request: %d %s, want %s", r.Status, r.Body, want.Body)

	before := survivor.Count("debug_traceCall")
	js := rpc.Request(9, "debug_traceCall", map[string]any{"to": "0x0000000000000000000000000000000000000004"}, "latest",
		map[string]any{"tracer": "{depth: 0, step: function() {}, fault: function() {}, result: function() { return [] }}"})
	r = b.Post("ethereum", js)
	s.Record("debug_traceCall with a custom JavaScript tracer", r, NormRPC)
	e, ok := isRPCError(r.Body)
	s.must(r.Status == http.StatusForbidden && ok && e.Code == -32067, "a custom tracer: %d %s, want 403 -32067", r.Status, r.Body)
	s.must(survivor.Count("debug_traceCall") == before, "the custom tracer reached an upstream")
	alive("at the end")
}
