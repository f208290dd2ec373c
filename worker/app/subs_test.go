package app

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/evmlb/evmlb/internal/evmtest"
	"github.com/evmlb/evmlb/internal/platform/memplatform"
)

// The WebSocket session and the subscription follower (issue 21, durable/subs.go) on the in-memory host: its
// sockets are kept by the host, as workerd and the wazero host keep them, and survive Restart (an eviction).

// wsHarness is a harness whose chain "eth" has two linked nodes (headers with parent hashes, a log per block)
// checked every second, so that the verified head follows them within a second.
func wsHarness(t *testing.T, env map[string]string, height uint64) (*harness, *evmtest.Node, *evmtest.Node) {
	a := evmtest.NewNode(t, "a", 1, height)
	b := evmtest.NewNode(t, "b", 1, height)
	a.SetLinked(true)
	b.SetLinked(true)
	full := map[string]string{"EVMLB_HEALTH_INTERVAL": "1s"}
	for k, v := range env {
		full[k] = v
	}
	h := newHarness(t, full, upstream{"eth", "a", a.URL}, upstream{"eth", "b", b.URL})
	h.post("eth", `{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber"}`) // the chain's table, the health checks
	h.checks(time.Second)
	return h, a, b
}

// dial opens a socket on /chain, which must be accepted.
func (h *harness) dial(chain string) *memplatform.Conn {
	h.t.Helper()
	c, status, body := h.host.Dial("/"+chain, nil)
	if c == nil || status != http.StatusSwitchingProtocols {
		h.t.Fatalf("dial /%s: %d %s", chain, status, body)
	}
	return c
}

// ask sends msg on c and returns the frames it got back (the message's answer, for a message call).
func (h *harness) ask(c *memplatform.Conn, msg string) []string {
	h.t.Helper()
	if err := c.Send(msg); err != nil {
		h.t.Fatal(err)
	}
	h.host.Wait()
	return frames(c)
}

func frames(c *memplatform.Conn) []string {
	var out []string
	for _, f := range c.Frames() {
		out = append(out, string(f))
	}
	return out
}

// subscribe makes a subscription and returns its id.
func (h *harness) subscribe(c *memplatform.Conn, params string) string {
	h.t.Helper()
	got := h.ask(c, `{"jsonrpc":"2.0","id":7,"method":"eth_subscribe","params":`+params+`}`)
	var a struct{ Result string }
	if len(got) != 1 || json.Unmarshal([]byte(got[0]), &a) != nil || !strings.HasPrefix(a.Result, "0x") {
		h.t.Fatalf("subscribe %s: %q", params, got)
	}
	return a.Result
}

// event is a notification read back: its subscription, and the block number and hash, and removed for a log.
type event struct {
	sub     string
	number  uint64
	hash    string
	removed bool
	log     bool
}

func (e event) String() string {
	kind := "head"
	if e.log {
		kind = "log"
		if e.removed {
			kind = "removed"
		}
	}
	return fmt.Sprintf("%s %d %s", kind, e.number, e.hash[len(e.hash)-4:])
}

func events(t *testing.T, fs []string) []event {
	t.Helper()
	var out []event
	for _, f := range fs {
		var n struct {
			Method string
			Params struct {
				Subscription string
				Result       struct {
					Number, Hash, BlockNumber, BlockHash string
					Removed                              bool
				}
			}
		}
		if err := json.Unmarshal([]byte(f), &n); err != nil || n.Method != "eth_subscription" {
			t.Fatalf("not a notification: %s", f)
		}
		r := n.Params.Result
		e := event{sub: n.Params.Subscription, hash: r.Hash, removed: r.Removed}
		num := r.Number
		if r.BlockHash != "" {
			e.log, e.hash, num = true, r.BlockHash, r.BlockNumber
		}
		fmt.Sscanf(num, "0x%x", &e.number)
		out = append(out, e)
	}
	return out
}

// mine moves both nodes to height and lets the follower catch up: the clock moves a second at a time (health
// checks, snapshots, the follower's alarm) until /admin/chains shows the follower's tip at height, at most 10 s.
func (h *harness) mine(height uint64, nodes ...*evmtest.Node) {
	h.t.Helper()
	for _, n := range nodes {
		n.SetHeight(height)
	}
	h.until(func(f follower) bool { return f.Tip == height }, "the follower's tip at %d", height)
}

// follower is /admin/chains' follower of the only chain.
type follower struct {
	Tip    uint64
	Counts struct{ Events, Reorgs, Disagree, Dropped int }
}

// until moves the clock a second at a time until cond holds of the follower, at most 10 s.
func (h *harness) until(cond func(follower) bool, what string, args ...any) {
	h.t.Helper()
	for range 10 {
		h.checks(time.Second)
		h.host.Wait()
		var st struct{ Chains []struct{ Follower follower } }
		h.admin(http.MethodGet, "/admin/chains", &st)
		if len(st.Chains) == 1 && cond(st.Chains[0].Follower) {
			return
		}
	}
	h.t.Fatalf("not after 10 s: "+what, args...)
}

func TestWebSocketSession(t *testing.T) {
	h, _, _ := wsHarness(t, nil, 100)
	c := h.dial("eth")

	// A plain call goes through the data plane, with the client's id.
	got := h.ask(c, `{"jsonrpc":"2.0","id":"x1","method":"eth_call","params":[{"to":"0x0"},"latest"]}`)
	if len(got) != 1 || !strings.Contains(got[0], `"id":"x1"`) || !strings.Contains(got[0], `"method":"eth_call"`) {
		t.Fatalf("plain call: %q", got)
	}
	// The deny list, as for POST.
	got = h.ask(c, `{"jsonrpc":"2.0","id":2,"method":"admin_peers","params":[]}`)
	if len(got) != 1 || errorCode(t, got[0]) != -32067 {
		t.Fatalf("denied: %q", got)
	}
	// eth_chainId from the verified chain id; a kind not served.
	got = h.ask(c, `{"jsonrpc":"2.0","id":3,"method":"eth_subscribe","params":["syncing"]}`)
	if len(got) != 1 || errorCode(t, got[0]) != -32601 {
		t.Fatalf("syncing: %q", got)
	}
	// A batch mixing a subscription and a plain call: one answer array with both ids.
	got = h.ask(c, `[{"jsonrpc":"2.0","id":4,"method":"eth_subscribe","params":["newHeads"]},{"jsonrpc":"2.0","id":5,"method":"eth_getBalance","params":["0x00000000000000000000000000000000000000aa","latest"]}]`)
	if len(got) != 1 || !strings.Contains(got[0], `"id":4`) || !strings.Contains(got[0], `"id":5`) || !strings.Contains(got[0], `eth_getBalance`) {
		t.Fatalf("mixed batch: %q", got)
	}
	var batch []struct {
		ID     int
		Result json.RawMessage
	}
	if err := json.Unmarshal([]byte(got[0]), &batch); err != nil || len(batch) != 2 {
		t.Fatalf("mixed batch: %q", got)
	}
	if !strings.Contains(c.Attachment(), `"s":[{"i":`) {
		t.Fatalf("the subscription is not in the attachment: %s", c.Attachment())
	}
	// Bad JSON gets the parse error; unsubscribe of an unknown id geth's error.
	got = h.ask(c, `{"jsonrpc":`)
	if len(got) != 1 || errorCode(t, got[0]) != -32700 {
		t.Fatalf("bad JSON: %q", got)
	}
	got = h.ask(c, `{"jsonrpc":"2.0","id":6,"method":"eth_unsubscribe","params":["0x1"]}`)
	if len(got) != 1 || errorCode(t, got[0]) != -32000 {
		t.Fatalf("unsubscribe unknown: %q", got)
	}

	// An upgrade to an unknown chain is the chain's 404, before any upgrade.
	if conn, status, body := h.host.Dial("/nochain", nil); conn != nil || status != http.StatusNotFound || errorCode(t, string(body)) != -32061 {
		t.Fatalf("unknown chain: %v %d %s", conn, status, body)
	}
	var st struct {
		Chains []struct {
			Chain         string `json:"chain"`
			Sockets       int    `json:"sockets"`
			Subscriptions int    `json:"subscriptions"`
		} `json:"chains"`
	}
	h.admin(http.MethodGet, "/admin/chains", &st)
	if len(st.Chains) != 1 || st.Chains[0].Sockets != 1 || st.Chains[0].Subscriptions != 1 {
		t.Fatalf("/admin/chains: %+v", st)
	}
}

func TestWebSocketLimits(t *testing.T) {
	h, _, _ := wsHarness(t, map[string]string{"EVMLB_WS_MAX_SOCKETS": "2", "EVMLB_WS_MAX_SUBSCRIPTIONS": "2", "EVMLB_WS_RATE": "5"}, 100)
	c := h.dial("eth")
	other := h.dial("eth")
	if conn, status, body := h.host.Dial("/eth", nil); conn != nil || status != http.StatusServiceUnavailable || errorCode(t, string(body)) != -32077 {
		t.Fatalf("third socket: %v %d %s", conn, status, body)
	}
	h.subscribe(c, `["newHeads"]`)
	h.subscribe(c, `["logs",{}]`)
	got := h.ask(c, `{"jsonrpc":"2.0","id":9,"method":"eth_subscribe","params":["newHeads"]}`)
	if len(got) != 1 || errorCode(t, got[0]) != -32075 {
		t.Fatalf("third subscription: %q", got)
	}
	// The rate: a burst of twice EVMLB_WS_RATE (10) on a clock that does not move; three taken above.
	for i := range 7 {
		if got := h.ask(c, `{"jsonrpc":"2.0","id":1,"method":"eth_chainId"}`); len(got) != 1 || strings.Contains(got[0], "error") {
			t.Fatalf("message %d: %q", i, got)
		}
	}
	got = h.ask(c, `{"jsonrpc":"2.0","id":11,"method":"eth_chainId"}`)
	if len(got) != 1 || errorCode(t, got[0]) != -32005 || !strings.Contains(got[0], `"id":11`) {
		t.Fatalf("over the rate: %q", got)
	}
	h.host.Clock().Advance(time.Second) // five more tokens
	if got := h.ask(c, `{"jsonrpc":"2.0","id":1,"method":"eth_chainId"}`); len(got) != 1 || strings.Contains(got[0], "error") {
		t.Fatalf("after a second: %q", got)
	}

	// Garbage: MaxStrikes malformed messages in a row close the socket with 1008.
	for range 9 {
		h.host.Clock().Advance(time.Second)
		h.ask(other, `garbage`)
	}
	if closed, _, _ := other.Closed(); closed {
		t.Fatal("closed before the tenth malformed message")
	}
	h.host.Clock().Advance(time.Second)
	h.ask(other, `garbage`)
	if closed, code, _ := other.Closed(); !closed || code != 1008 {
		t.Fatalf("after ten malformed messages: closed %v code %d", closed, code)
	}
	// A binary frame: 1003; a frame over the body limit: 1009.
	b := h.dial("eth")
	if err := b.SendBinary([]byte("{}")); err != nil {
		t.Fatal(err)
	}
	if closed, code, _ := b.Closed(); !closed || code != 1003 {
		t.Fatalf("binary: closed %v code %d", closed, code)
	}
	l := h.dial("eth")
	if err := l.SendTooLarge(); err != nil {
		t.Fatal(err)
	}
	if closed, code, _ := l.Closed(); !closed || code != 1009 {
		t.Fatalf("too large: closed %v code %d", closed, code)
	}
	h.host.Wait()
}

func TestWebSocketFollower(t *testing.T) {
	h, a, b := wsHarness(t, nil, 100)
	c := h.dial("eth")
	heads := h.subscribe(c, `["newHeads"]`)
	logs := h.subscribe(c, `["logs",{"address":"`+evmtest.LogAddress+`"}]`)
	if _, set, _ := h.host.Storage("subs", "eth").GetAlarm(t.Context()); !set {
		t.Fatal("the first subscription set no alarm")
	}
	h.mine(100, a, b) // the follower adopts the head: nothing sent
	if got := frames(c); len(got) != 0 {
		t.Fatalf("adoption sent %q", got)
	}
	var seen []string
	collect := func() {
		for _, e := range events(t, frames(c)) {
			if (e.log && e.sub != logs) || (!e.log && e.sub != heads) {
				t.Fatalf("event %v on the wrong subscription %s", e, e.sub)
			}
			seen = append(seen, e.String())
		}
	}
	h.mine(103, a, b) // three blocks between two looks: each once, in order, each followed by its log
	collect()
	want := []string{}
	for n := uint64(101); n <= 103; n++ {
		hash := a.BlockHash(n)
		want = append(want, fmt.Sprintf("head %d %s", n, hash[len(hash)-4:]), fmt.Sprintf("log %d %s", n, hash[len(hash)-4:]))
	}
	if strings.Join(seen, ", ") != strings.Join(want, ", ") {
		t.Fatalf("events:\n%s\nwant:\n%s", strings.Join(seen, ", "), strings.Join(want, ", "))
	}

	// Eviction between two alarms: a new instance of the object (and a new runtime) goes on from storage and the
	// attachments: nothing lost, nothing sent twice.
	h.host.Restart()
	h.restartApp()
	seen = nil
	h.mine(104, a, b)
	collect()
	if got := strings.Join(seen, ", "); !strings.HasPrefix(got, "head 104") || strings.Count(got, "head") != 1 {
		t.Fatalf("after eviction: %s", got)
	}

	// A reorg of depth 2 (blocks 103 and 104 replaced, a new 105): the old branch's logs removed, then the new
	// branch from the fork.
	old103, old104 := a.BlockHash(103), a.BlockHash(104)
	a.Reorg(2, 103)
	b.Reorg(2, 103)
	seen = nil
	h.mine(105, a, b)
	collect()
	tail := func(s string) string { return s[len(s)-4:] }
	want = []string{"removed 103 " + tail(old103), "removed 104 " + tail(old104)}
	for n := uint64(103); n <= 105; n++ {
		want = append(want, fmt.Sprintf("head %d %s", n, tail(a.BlockHash(n))), fmt.Sprintf("log %d %s", n, tail(a.BlockHash(n))))
	}
	if strings.Join(seen, ", ") != strings.Join(want, ", ") {
		t.Fatalf("reorg events:\n%s\nwant:\n%s", strings.Join(seen, ", "), strings.Join(want, ", "))
	}

	// A storage that cannot write: the state is not stored, so nothing is sent (a crash after the sends would
	// send them again); once it writes, block 106 is sent once.
	st := h.host.Storage("subs", "eth")
	st.FailPuts(true)
	a.SetHeight(106)
	b.SetHeight(106)
	for range 3 {
		h.checks(time.Second)
		h.host.Wait()
	}
	if got := frames(c); len(got) != 0 {
		t.Fatalf("sent while the state could not be stored: %q", got)
	}
	st.FailPuts(false)
	h.mine(106, a, b)
	seen = nil
	collect()
	if got := strings.Join(seen, ", "); got != "head 106 "+tail(a.BlockHash(106))+", log 106 "+tail(a.BlockHash(106)) {
		t.Fatalf("after the storage came back: %s", got)
	}

	// The counts: 3 + 1 + 3 + 1 blocks each a head and a log, two removed logs; one reorg.
	_, _, text := h.do(http.MethodGet, "/admin/metrics", "", true)
	for _, line := range []string{`evmlb_ws_sockets{chain="eth"} 1`, `evmlb_ws_subscriptions{chain="eth"} 2`,
		`evmlb_ws_events_total{chain="eth"} 18`, `evmlb_ws_reorgs_total{chain="eth"} 1`, `evmlb_ws_deep_reorgs_total{chain="eth"} 0`} {
		if !strings.Contains(text, line+"\n") {
			t.Errorf("/admin/metrics lacks %s", line)
		}
	}

	// Unsubscribing both: the next alarm drops the state and sets no other.
	h.ask(c, `{"jsonrpc":"2.0","id":1,"method":"eth_unsubscribe","params":["`+heads+`"]}`)
	h.ask(c, `{"jsonrpc":"2.0","id":2,"method":"eth_unsubscribe","params":["`+logs+`"]}`)
	h.checks(time.Second)
	h.checks(time.Second)
	if _, set, _ := h.host.Storage("subs", "eth").GetAlarm(t.Context()); set {
		t.Fatal("an alarm without subscriptions")
	}
	if got := frames(c); len(got) != 0 {
		t.Fatalf("events after unsubscribing: %q", got)
	}
}

// The head's hash needs two upstreams' word: while the two in rotation give the verified height different hashes,
// nothing is sent; once they agree, every block since the last one sent is, in order.
func TestWebSocketHeadHashAgreement(t *testing.T) {
	h, a, b := wsHarness(t, nil, 100)
	c := h.dial("eth")
	h.subscribe(c, `["newHeads"]`)
	h.mine(100, a, b)
	b.Reorg(9, 101) // b's blocks from 101 are on a branch of its own
	a.SetHeight(102)
	b.SetHeight(102)
	h.until(func(f follower) bool { return f.Counts.Disagree >= 3 }, "three looks that found the hashes apart")
	if got := frames(c); len(got) != 0 {
		t.Fatalf("sent on one upstream's word: %q", got)
	}
	b.Reorg(1, 101) // back on a's branch
	h.mine(103, a, b)
	var seen []string
	for _, e := range events(t, frames(c)) {
		seen = append(seen, e.String())
	}
	want := []string{}
	for n := uint64(101); n <= 103; n++ {
		hash := a.BlockHash(n)
		want = append(want, fmt.Sprintf("head %d %s", n, hash[len(hash)-4:]))
	}
	if strings.Join(seen, ", ") != strings.Join(want, ", ") {
		t.Fatalf("events:\n%s\nwant:\n%s", strings.Join(seen, ", "), strings.Join(want, ", "))
	}
}

// An upstream on a branch of its own among three: the head's hash is the two others', and whichever upstream the
// follower asks first for the headers, only blocks linked to that hash are sent (an upstream whose blocks do not
// link is passed over for the next).
func TestWebSocketFollowerPassesOverABranch(t *testing.T) {
	a := evmtest.NewNode(t, "a", 1, 100)
	b := evmtest.NewNode(t, "b", 1, 100)
	c := evmtest.NewNode(t, "c", 1, 100)
	for _, n := range []*evmtest.Node{a, b, c} {
		n.SetLinked(true)
		n.SetFinality(-1) // no finalized tag: the health checks see no hash, and c stays in rotation
	}
	c.Reorg(5, 90) // c's blocks from 90 are its own
	h := newHarness(t, map[string]string{"EVMLB_HEALTH_INTERVAL": "1s"}, upstream{"eth", "a", a.URL}, upstream{"eth", "b", b.URL}, upstream{"eth", "c", c.URL})
	h.post("eth", `{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber"}`)
	h.checks(time.Second)
	sock := h.dial("eth")
	h.subscribe(sock, `["newHeads"]`)
	h.mine(100, a, b, c)
	for height := uint64(101); height <= 110; height++ {
		h.mine(height, a, b, c)
	}
	var seen, want []string
	for _, e := range events(t, frames(sock)) {
		seen = append(seen, e.String())
	}
	for n := uint64(101); n <= 110; n++ {
		hash := a.BlockHash(n)
		want = append(want, fmt.Sprintf("head %d %s", n, hash[len(hash)-4:]))
	}
	if strings.Join(seen, ", ") != strings.Join(want, ", ") {
		t.Fatalf("events:\n%s\nwant:\n%s", strings.Join(seen, ", "), strings.Join(want, ", "))
	}
	// No step was given up: the branch's answers were passed over within the step.
	h.until(func(f follower) bool {
		if f.Counts.Dropped != 0 {
			t.Fatalf("%d steps dropped", f.Counts.Dropped)
		}
		return true
	}, "")
	t.Logf("c was asked %d eth_getBlockByNumber", strings.Count(strings.Join(c.Methods(), " "), "eth_getBlockByNumber"))
}

// A chain may be named like the subscription object's status path: its upgrade is still an upgrade.
func TestWebSocketChainNamedStatus(t *testing.T) {
	a := evmtest.NewNode(t, "a", 1, 100)
	h := newHarness(t, nil, upstream{"status", "a", a.URL})
	c := h.dial("status")
	if got := h.ask(c, `{"jsonrpc":"2.0","id":1,"method":"eth_chainId"}`); len(got) != 1 || !strings.Contains(got[0], `"result":"0x1"`) {
		t.Fatalf("eth_chainId: %q", got)
	}
}

// One of two upstreams fails mid-run (every request answered 500, health checks too): the follower goes on with
// the other one as soon as the failing one leaves rotation, and every block arrives once, in order.
func TestWebSocketFollowerFailover(t *testing.T) {
	h, a, b := wsHarness(t, nil, 100)
	c := h.dial("eth")
	h.subscribe(c, `["newHeads"]`)
	h.mine(100, a, b)
	h.mine(101, a, b)
	a.SetFault(evmtest.Status500)
	for height := uint64(102); height <= 110; height++ {
		a.SetHeight(height)
		b.SetHeight(height)
		// Within two looks of the follower (a second each): the failing upstream costs a failed attempt, not a
		// stall until it leaves rotation.
		looks := 0
		h.until(func(f follower) bool { looks++; return f.Tip == height || looks == 2 }, "")
		if looks == 2 {
			h.until(func(f follower) bool {
				if f.Tip != height {
					t.Fatalf("block %d not followed within 2 s of the failure (tip %d, counts %+v)", height, f.Tip, f.Counts)
				}
				return true
			}, "")
		}
	}
	var seen, want []string
	for _, e := range events(t, frames(c)) {
		seen = append(seen, e.String())
	}
	for n := uint64(101); n <= 110; n++ {
		hash := b.BlockHash(n)
		want = append(want, fmt.Sprintf("head %d %s", n, hash[len(hash)-4:]))
	}
	if strings.Join(seen, ", ") != strings.Join(want, ", ") {
		t.Fatalf("events:\n%s\nwant:\n%s", strings.Join(seen, ", "), strings.Join(want, ", "))
	}
}

// The follower looks at the chain itself (each upstream in rotation's latest block) rather than waiting for the
// table's verified head, which moves at health checks: with checks a minute apart, each block is followed within a
// look. Above the verified head two upstreams must agree: one of them ahead (by 1,000 blocks) moves the follower
// only to the other's height.
func TestWebSocketFollowerLooksItself(t *testing.T) {
	h, a, b := wsHarness(t, map[string]string{"EVMLB_HEALTH_INTERVAL": "1m"}, 100)
	c := h.dial("eth")
	h.subscribe(c, `["newHeads"]`)
	h.mine(100, a, b)
	for height := uint64(101); height <= 105; height++ {
		a.SetHeight(height)
		b.SetHeight(height)
		looks := 0
		h.until(func(f follower) bool {
			looks++
			if looks > 1 && f.Tip != height {
				t.Fatalf("block %d not followed in one look (tip %d)", height, f.Tip)
			}
			return f.Tip == height
		}, "")
	}
	a.SetHeight(1106)
	b.SetHeight(106)
	h.until(func(f follower) bool { return f.Tip == 106 }, "the follower at b's height")
	h.until(func(f follower) bool { return true }, "")
	h.until(func(f follower) bool {
		if f.Tip != 106 {
			t.Fatalf("the follower at %d on one upstream's word", f.Tip)
		}
		return true
	}, "")
	if n := len(frames(c)); n != 6 {
		t.Fatalf("%d heads sent, want 6 (101-106)", n)
	}
}
