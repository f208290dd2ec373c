package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/evmlb/evmlb/e2e/internal/anvil"
	"github.com/evmlb/evmlb/e2e/internal/target"
)

// wsFault is what wsProxy does to the stream of the node it stands in front of.
type wsFault int

const (
	// wsPass passes every frame: the node's own stream.
	wsPass wsFault = iota
	// wsGeth makes the node's stream geth's (issue 21's): each header before its block's logs, and on a reorg the
	// old branch's logs sent again with removed=true (oldest block first) before the new branch. The faults below
	// are wsGeth with one thing broken.
	wsGeth
	wsDropHead  // the fourth header is not sent
	wsDupHead   // the fourth header is sent twice
	wsSwapHeads // the fourth and fifth headers are sent in the other order
	wsNoRemoved // no removed log is sent
	wsDropLog   // the third log is not sent
	wsSkipFork  // on a reorg, the new branch's first header is not sent
)

// wsProxy is a WebSocket proxy in front of a node's own WebSocket, for the subscription check's own test.
type wsProxy struct {
	upstream string
	fault    wsFault
	// session makes the proxy answer bad input as issue21.go expects of the balancer's session: a text frame that
	// is not JSON gets wsParseError, a binary frame a close wsCloseBinary, a frame over 5 MiB a close wsCloseTooBig.
	session bool
}

type wsNote struct {
	Method string `json:"method"`
	Params struct {
		Subscription string                     `json:"subscription"`
		Result       map[string]json.RawMessage `json:"result"`
	} `json:"params"`
}

func (p *wsProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	up := websocket.Upgrader{}
	c, err := up.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	defer c.Close()
	u, _, err := websocket.DefaultDialer.Dial(p.upstream, nil)
	if err != nil {
		return
	}
	defer u.Close()
	var mu, wmu sync.Mutex       // wmu: one writer to c at a time
	kinds := map[string]string{} // eth_subscribe request id → kind, then subscription id → kind
	if p.session {
		c.SetReadLimit(5 << 20) // gorilla closes with 1009 beyond it
	}
	go func() {
		defer u.Close()
		for {
			typ, m, err := c.ReadMessage()
			if err != nil {
				return
			}
			if p.session && typ == websocket.BinaryMessage {
				_ = c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(wsCloseBinary, "binary frame"), time.Now().Add(time.Second))
				return
			}
			if p.session && !json.Valid(m) {
				wmu.Lock()
				err := c.WriteMessage(websocket.TextMessage, []byte(fmt.Sprintf(`{"jsonrpc":"2.0","id":null,"error":{"code":%d,"message":"parse error"}}`, wsParseError)))
				wmu.Unlock()
				if err != nil {
					return
				}
				continue
			}
			var req struct {
				ID     json.RawMessage `json:"id"`
				Method string          `json:"method"`
				Params []any           `json:"params"`
			}
			if json.Unmarshal(m, &req) == nil && req.Method == "eth_subscribe" && len(req.Params) > 0 {
				mu.Lock()
				kinds["req"+string(req.ID)], _ = req.Params[0].(string)
				mu.Unlock()
			}
			if u.WriteMessage(websocket.TextMessage, m) != nil {
				return
			}
		}
	}()
	type held struct {
		number uint64
		hash   string
		note   wsNote
	}
	var (
		pending, sent []held              // logs waiting for their header; logs sent and not removed
		forwarded     = map[string]bool{} // the headers' hashes passed on
		lastHead      uint64
		heads         int
		swapped       []byte
	)
	out := func(m []byte) bool {
		wmu.Lock()
		defer wmu.Unlock()
		return c.WriteMessage(websocket.TextMessage, m) == nil
	}
	enc := func(n wsNote) []byte {
		b, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "method": n.Method, "params": n.Params})
		return b
	}
	logs := 0
	emit := func(l held) []byte { // a log's frame, nil when it is dropped
		if logs++; p.fault == wsDropLog && logs == 3 {
			return nil
		}
		sent = append(sent, l)
		return enc(l.note)
	}
	for {
		_, m, err := u.ReadMessage()
		if err != nil {
			return
		}
		var resp struct {
			ID     json.RawMessage `json:"id"`
			Result json.RawMessage `json:"result"`
		}
		var note wsNote
		if json.Unmarshal(m, &note) != nil || note.Method != "eth_subscription" || p.fault == wsPass {
			if json.Unmarshal(m, &resp) == nil && resp.ID != nil {
				var id string
				if json.Unmarshal(resp.Result, &id) == nil {
					mu.Lock()
					kinds[id] = kinds["req"+string(resp.ID)]
					mu.Unlock()
				}
			}
			if !out(m) {
				return
			}
			continue
		}
		mu.Lock()
		kind := kinds[note.Params.Subscription]
		mu.Unlock()
		var num, hash string
		switch kind {
		case "logs":
			_ = json.Unmarshal(note.Params.Result["blockNumber"], &num)
			_ = json.Unmarshal(note.Params.Result["blockHash"], &hash)
			l := held{number: hexNum(num), hash: hash, note: note}
			if !forwarded[hash] { // anvil sends a block's logs and its header in either order
				pending = append(pending, l)
				continue
			}
			if f := emit(l); f != nil && !out(f) {
				return
			}
			continue
		case "newHeads":
			_ = json.Unmarshal(note.Params.Result["number"], &num)
			_ = json.Unmarshal(note.Params.Result["hash"], &hash)
		default:
			if !out(m) {
				return
			}
			continue
		}
		n := hexNum(num)
		var frames [][]byte
		lastSeen := lastHead + 1 // a header at or below the last one: a new branch
		if n <= lastHead {       // a reorg: the old branch's logs at and above n, removed, oldest block first
			var keep []held
			for _, l := range sent {
				if l.number < n {
					keep = append(keep, l)
					continue
				}
				if p.fault != wsNoRemoved {
					l.note.Params.Result["removed"] = json.RawMessage("true")
					frames = append(frames, enc(l.note))
				}
			}
			sent = keep
		}
		lastHead = n
		heads++
		forwarded[hash] = true
		switch {
		case p.fault == wsDropHead && heads == 4:
		case p.fault == wsSkipFork && n < lastSeen:
		case p.fault == wsDupHead && heads == 4:
			frames = append(frames, m, m)
		case p.fault == wsSwapHeads && heads == 4:
			swapped = m
		case p.fault == wsSwapHeads && heads == 5:
			frames = append(frames, m, swapped)
		default:
			frames = append(frames, m)
		}
		var rest []held
		for _, l := range pending {
			switch {
			case l.hash != hash:
				if l.number >= n { // another block at this height or above: replaced before its header came
					rest = append(rest, l)
				}
			default:
				if f := emit(l); f != nil {
					frames = append(frames, f)
				}
			}
		}
		pending = rest
		for _, f := range frames {
			if !out(f) {
				return
			}
		}
	}
}

func hexNum(s string) uint64 {
	var n uint64
	for _, c := range strings.TrimPrefix(s, "0x") {
		n <<= 4
		switch {
		case c >= '0' && c <= '9':
			n |= uint64(c - '0')
		case c >= 'a' && c <= 'f':
			n |= uint64(c-'a') + 10
		}
	}
	return n
}

// TestWSChecker: the subscription check passes on anvil's own WebSocket (wsReference mode: anvil sends a new
// branch's headers from the fork point but never the old branch's logs as removed), straight and through
// anvil_reorg at depths 1 to 3, and on anvil's stream made geth's by wsProxy (wsBalancer mode); and fails on a
// stream that drops a header, sends one twice, swaps two, drops a log, never sends removed logs, and on anvil's
// own stream judged by issue 21's rule.
func TestWSChecker(t *testing.T) {
	_, err := anvil.Binary()
	need(t, err)
	for _, tc := range []struct {
		name   string
		fault  wsFault
		proxy  bool
		mode   wsMode
		reorgs bool
		want   string // a failure that must be reported; "" for none
	}{
		{name: "anvil-straight", mode: wsReference},
		{name: "anvil-reorg", mode: wsReference, reorgs: true},
		{name: "anvil-reorg-as-balancer", mode: wsBalancer, reorgs: true, want: "was never sent as removed"},
		{name: "geth-straight", proxy: true, fault: wsGeth},
		{name: "geth-reorg", proxy: true, fault: wsGeth, reorgs: true},
		{name: "drop-head", proxy: true, fault: wsDropHead, want: "gap: header"},
		{name: "dup-head", proxy: true, fault: wsDupHead, want: "received twice"},
		{name: "swap-heads", proxy: true, fault: wsSwapHeads, want: "gap: header"},
		{name: "drop-log", proxy: true, fault: wsDropLog, want: "never reached the client"},
		{name: "no-removed", proxy: true, fault: wsNoRemoved, reorgs: true, want: "was never sent as removed"},
		{name: "skip-fork", proxy: true, fault: wsSkipFork, reorgs: true, want: "fork point"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			n := anvil.StartTWith(t, anvil.Options{Args: []string{"--block-time", "0.5"}})
			url := wsURL(n.URL)
			if tc.proxy {
				srv := httptest.NewServer(&wsProxy{upstream: url, fault: tc.fault})
				defer srv.Close()
				url = wsURL(srv.URL)
			}
			d := 4 * time.Second
			if tc.reorgs {
				d = 7 * time.Second
			}
			res, err := wsRun{node: n, url: url, mode: tc.mode, d: d, reorgs: tc.reorgs, logf: t.Logf}.run(ctx)
			if err != nil {
				t.Fatal(err)
			}
			v := res.Verdicts[0]
			t.Logf("%s (%s mode): %s; reorgs by depth %v; %d transactions; %s", tc.name, tc.mode, v, res.Reorgs, res.Sent, delayText(res.Delays))
			t.Logf("the node's own subscription (reference mode): %s", res.Ref)
			for _, f := range v.Failures[:min(len(v.Failures), 4)] {
				t.Logf("reported: %s", f)
			}
			if len(res.Ref.Failures) > 0 {
				t.Errorf("the node's own subscription fails the reference check: %s", strings.Join(res.Ref.Failures, "\n"))
			}
			if tc.reorgs && (len(res.Reorgs) < 3 || v.Reemitted == 0) {
				t.Errorf("too little happened: reorgs %v, %d headers again", res.Reorgs, v.Reemitted)
			}
			if v.Logs == 0 || v.Heads < 6 {
				t.Errorf("too little happened: %s", v)
			}
			if tc.want == "" {
				if len(v.Failures) > 0 {
					t.Errorf("the check fails a good stream:\n%s", strings.Join(v.Failures, "\n"))
				}
				return
			}
			found := false
			for _, f := range v.Failures {
				found = found || strings.Contains(f, tc.want)
			}
			if !found {
				t.Errorf("the check did not report %q:\n%s", tc.want, strings.Join(v.Failures, "\n"))
			}
		})
	}
}

// TestWSScenarioPlumbing runs issue 21's scenario code against a stand-in for the balancer: anvil's own WebSocket
// behind wsProxy made geth's (the rows' wsCheck in balancer mode, through anvil_reorg), then the raw sockets of
// ws-idle and ws-garbage (subscribe, a mined block heard by each, and not a block never mined), and needWS's
// skip on a refused upgrade.
func TestWSScenarioPlumbing(t *testing.T) {
	_, err := anvil.Binary()
	need(t, err)
	t.Setenv(EnvWSDuration, "7s")
	s := newS(t, wazeroHost)
	n := s.wsNode()
	srv := httptest.NewServer(&wsProxy{upstream: wsURL(n.URL), fault: wsGeth})
	defer srv.Close()
	b := &Balancer{s: s, Inst: &target.Instance{URL: srv.URL, Host: "stand-in"}}
	b.needWS("ethereum")
	res := s.wsCheck(b, n, true, nil, wsDelayBound)
	if v := res.Verdicts[0]; v.Reemitted == 0 || v.Removed == 0 {
		t.Errorf("no reorg seen: %s", v)
	}
	// Interval mining is off now: blocks come from mineOne.
	conns := make([]*wsConn, 30)
	for i := range conns {
		conns[i] = s.wsDial(b.wsURLOf("ethereum"))
		if _, err := conns[i].subscribeHeads(5 * time.Second); err != nil {
			t.Fatal(err)
		}
	}
	hash := s.warmUp(n, conns[0])
	if got, errs := everyHears(conns[1:], hash, 5*time.Second); got != len(conns)-1 {
		t.Errorf("%d of %d sockets heard block %s: %v", got, len(conns)-1, hash, errs)
	}
	hash = s.mineOne(n)
	if got, errs := everyHears(conns, hash, 5*time.Second); got != len(conns) {
		t.Errorf("%d of %d sockets heard block %s: %v", got, len(conns), hash, errs)
	}
	line := "evmlb host: SIGUSR1: " + wsEvictedLine + "1000 WebSockets stay open; its linear memory was 12345 bytes; with no call in flight)"
	if m := evictedRe.FindStringSubmatch(line); m == nil || m[1] != "1000" || m[2] != "12345" {
		t.Errorf("the eviction line %q read as %q", line, m)
	}
	if got, _ := everyHears(conns[:3], "0x1234", 500*time.Millisecond); got != 0 {
		t.Errorf("%d sockets heard a block never mined", got)
	}

	// ws-garbage's steps against a stand-in that answers bad input as the constants say (the slow reader is the
	// wazero host's: not here).
	sess := httptest.NewServer(&wsProxy{upstream: wsURL(n.URL), fault: wsGeth, session: true})
	defer sess.Close()
	wsGarbage(s, &Balancer{s: s, Inst: &target.Instance{URL: sess.URL, Host: "stand-in"}}, n)
	if got := len(s.rec.Steps); got < 5 {
		t.Errorf("ws-garbage against the stand-in recorded %d steps", got)
	}
	for _, st := range s.rec.Steps {
		t.Logf("record: %s: %s", st.Name, st.Body)
	}

	// ws-idle's steps (1,000 sockets) against the stand-in; no eviction hook there.
	wsIdle(s, &Balancer{s: s, Inst: &target.Instance{URL: sess.URL, Host: "stand-in"}}, n)

	refuse := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no", http.StatusMethodNotAllowed)
	}))
	defer refuse.Close()
	var sub *testing.T
	t.Run("guard", func(t *testing.T) {
		sub = t
		s := newS(t, wazeroHost)
		(&Balancer{s: s, Inst: &target.Instance{URL: refuse.URL, Host: "stand-in"}}).needWSAs("ethereum", false)
	})
	if !sub.Skipped() {
		t.Errorf("needWS did not skip on a refused upgrade while unwired")
	}
}

// TestWSCloseCode: closeCode reads the code of a close frame, 1006 for a connection dropped without one, and an
// error for a socket that stays open; rss reads this process's resident memory.
func TestWSCloseCode(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		_, m, err := c.ReadMessage()
		if err != nil {
			return
		}
		switch string(m) {
		case "close":
			_ = c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(wsCloseBinary, "binary"))
			_, _, _ = c.ReadMessage()
		case "drop":
		case "stay":
			_, _, _ = c.ReadMessage()
		}
	}))
	defer srv.Close()
	s := newS(t, wazeroHost)
	for _, tc := range []struct {
		send string
		code int
		err  bool
	}{{"close", wsCloseBinary, false}, {"drop", websocket.CloseAbnormalClosure, false}, {"stay", 0, true}} {
		c := s.wsDial(wsURL(srv.URL))
		if err := c.WriteMessage(websocket.TextMessage, []byte(tc.send)); err != nil {
			t.Fatal(err)
		}
		code, err := closeCode(c, time.Second)
		if code != tc.code || (err != nil) != tc.err {
			t.Errorf("%s: closeCode = %d, %v; want %d, error %v", tc.send, code, err, tc.code, tc.err)
		}
	}
	if r := rss(os.Getpid()); r < 1<<20 {
		t.Errorf("rss of this process: %d bytes", r)
	}
}
