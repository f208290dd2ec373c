package server

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/evmlb/evmlb/host/internal/testprog"
)

var (
	socketsOnce sync.Once
	socketsWasm string
	socketsErr  error
)

// socketsHost serves the sockets test program (testdata/sockets: Go's side of the contract, jsbind and hostcall)
// over a real listener, which WebSockets need.
func socketsHost(t *testing.T, opts Options) (*testHost, string) {
	t.Helper()
	socketsOnce.Do(func() { socketsWasm, socketsErr = testprog.Build("sockets") })
	if socketsErr != nil {
		t.Fatal(socketsErr)
	}
	opts.WasmPath, opts.WorkerRuntimes = socketsWasm, 1
	h := newHost(t, opts)
	ts := httptest.NewServer(h.Handler())
	t.Cleanup(ts.Close)
	return h, strings.TrimPrefix(ts.URL, "http://")
}

type wsClient struct {
	t    *testing.T
	conn *websocket.Conn
}

func dialWS(t *testing.T, addr, chain, tag, att string) *wsClient {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, "ws://"+addr+"/ws/"+chain+"?tag="+url.QueryEscape(tag)+"&att="+url.QueryEscape(att), nil)
	if err != nil {
		t.Fatalf("dial %s: %v", tag, err)
	}
	conn.SetReadLimit(1 << 20)
	t.Cleanup(func() { conn.CloseNow() })
	return &wsClient{t, conn}
}

func (c *wsClient) send(text string) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.conn.Write(ctx, websocket.MessageText, []byte(text)); err != nil {
		c.t.Fatal(err)
	}
}

func (c *wsClient) read() string {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	typ, b, err := c.conn.Read(ctx)
	if err != nil || typ != websocket.MessageText {
		c.t.Fatalf("read: %v %v", typ, err)
	}
	return string(b)
}

// closed reads until the socket closes and returns the code and reason the host sent.
func (c *wsClient) closed() (websocket.StatusCode, string) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		_, _, err := c.conn.Read(ctx)
		if err == nil {
			continue
		}
		var ce websocket.CloseError
		if !errors.As(err, &ce) {
			c.t.Fatalf("the socket ended without a close frame: %v", err)
		}
		return ce.Code, ce.Reason
	}
}

// sortedList sorts a list of sockets ("tag=attachment,…"): they come in no particular order.
func sortedList(s string) string {
	f := strings.Split(s, ",")
	sort.Strings(f)
	return strings.Join(f, ",")
}

func sortedLines(s string) string {
	f := strings.Split(s, "\n")
	sort.Strings(f)
	return strings.Join(f, "\n")
}

// instanceOf is the instance token at the end of an answer ("… instance=TOKEN").
func instanceOf(t *testing.T, s string) string {
	t.Helper()
	_, inst, ok := strings.Cut(s, " instance=")
	if !ok || len(inst) != 32 {
		t.Fatalf("no instance in %q", s)
	}
	return inst
}

// TestWebSockets runs the WebSocket surface end to end through Go's side of the contract: upgrades handed to a
// subs object and accepted with a tag and attachment, frames echoed through Go, the attachment replaced and
// surviving an eviction of the objects runtime (the sockets stay open), sends fanned out by tag and to all, close
// codes both ways, a refused upgrade passed through as is, and the violations (a socket operation from a Worker
// call, a tag accepted twice).
func TestWebSockets(t *testing.T) {
	h, addr := socketsHost(t, Options{})
	a := dialWS(t, addr, "c1", "a", "att-a")
	b := dialWS(t, addr, "c1", "b", "att-b")
	c := dialWS(t, addr, "c1", "c", "")

	a.send("echo:hi")
	got := a.read()
	if !strings.HasPrefix(got, "echo:hi att=att-a instance=") {
		t.Fatal(got)
	}
	inst1 := instanceOf(t, got)
	a.send("attach:new-a")
	if got := a.read(); got != "attached=1 instance="+inst1 {
		t.Fatal(got)
	}
	if got := sortedList(h.ok("/obj/c1/list")); got != "a=new-a,b=att-b,c=" {
		t.Fatalf("list: %q", got)
	}

	// Evicted: the runtime and its instances are gone, the sockets and their attachments are not.
	h.EvictObjects()
	a.send("echo:after")
	got = a.read()
	if !strings.HasPrefix(got, "echo:after att=new-a instance=") {
		t.Fatalf("after the eviction: %q", got)
	}
	if inst2 := instanceOf(t, got); inst2 == inst1 {
		t.Fatal("the instance survived the eviction")
	}
	if st := h.Stats(); st.Sockets != 3 || st.Runtimes[len(st.Runtimes)-1].Starts != 2 {
		t.Fatalf("%+v", st)
	}

	// Fan-out by tag, and to all from an object call.
	b.send("fan:a,c,nobody:hello")
	if got := a.read(); got != "hello" {
		t.Fatal(got)
	}
	if got := c.read(); got != "hello" {
		t.Fatal(got)
	}
	if got := b.read(); !strings.HasPrefix(got, "sent=2 ") {
		t.Fatal(got)
	}
	if got := h.ok("/obj/c1/send?tags=*&text=bye"); got != "sent=3 error=<nil>" {
		t.Fatal(got)
	}
	for _, cl := range []*wsClient{a, b, c} {
		if got := cl.read(); got != "bye" {
			t.Fatal(got)
		}
	}

	// Close codes: Go's, from a frame and from an object call; a binary frame; a frame over maxBodyBytes.
	a.send("close:4001:bye-a")
	if code, reason := a.closed(); code != 4001 || reason != "bye-a" {
		t.Fatal(code, reason)
	}
	if got := h.ok("/obj/c1/close?tag=b&code=1008&reason=policy"); got != "closed=1 error=<nil>" {
		t.Fatal(got)
	}
	if code, reason := b.closed(); code != websocket.StatusPolicyViolation || reason != "policy" {
		t.Fatal(code, reason)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.conn.Write(ctx, websocket.MessageBinary, []byte{1, 2, 3}); err != nil {
		t.Fatal(err)
	}
	if code, _ := c.closed(); code != websocket.StatusUnsupportedData {
		t.Fatal(code)
	}
	d := dialWS(t, addr, "c1", "d", "")
	d.send(strings.Repeat("x", 5000)) // the program's maxBodyBytes is 4096
	if code, _ := d.closed(); code != websocket.StatusMessageTooBig {
		t.Fatal(code)
	}

	// The client closes: Go hears a close call with the code, the reason and the attachment; and one for each
	// socket it closed itself, as workerd reports the peer's answering close frame.
	e := dialWS(t, addr, "c1", "e", "att-e")
	e.send("echo:x")
	e.read()
	if err := e.conn.Close(4002, "client-bye"); err != nil {
		t.Fatal(err)
	}
	want := strings.Join([]string{`a 4001 "bye-a" clean=true att=new-a`, `b 1008 "policy" clean=true att=att-b`,
		`c 1003 "binary frames are not spoken here" clean=true att=`, `d 1009 "too large" clean=true att=`,
		`e 4002 "client-bye" clean=true att=att-e`}, "\n")
	deadline := time.Now().Add(10 * time.Second)
	for sortedLines(h.ok("/obj/c1/events")) != want {
		if time.Now().After(deadline) {
			t.Fatalf("close calls: %q", h.ok("/obj/c1/events"))
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got := h.ok("/obj/c1/list"); got != "" {
		t.Fatalf("list after every close: %q", got)
	}

	// Another chain's object has sockets of its own.
	f := dialWS(t, addr, "c2", "a", "other")
	f.send("list")
	if got := f.read(); !strings.HasPrefix(got, "list:a=other ") {
		t.Fatal(got)
	}

	// An object's refusal answers the client as is.
	resp, err := http.Get("http://" + addr + "/ws/c1?tag=refuse") // no upgrade: the worker's upgrade is refused
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 500 {
		t.Fatalf("an upgrade from a plain GET: %d", resp.StatusCode)
	}
	h.expectViolation("upgrade: the headers do not carry upgrade: websocket")
	_, resp, err = websocket.Dial(ctx, "ws://"+addr+"/ws/c1?tag=refuse", nil)
	if err == nil || resp == nil || resp.StatusCode != 400 || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("a refused upgrade: %v %v", resp, err)
	}

	// A socket operation from a Worker call, and a tag accepted twice, are violations.
	if code, _ := h.do("GET", "/worker-socket", nil); code != 500 {
		t.Fatal(code)
	}
	h.expectViolation("socket operation from a worker call")
	dialWS(t, addr, "c1", "dup", "")
	_, resp, err = websocket.Dial(ctx, "ws://"+addr+"/ws/c1?tag=dup", nil)
	if err == nil || resp == nil || resp.StatusCode != 500 {
		t.Fatalf("a tag accepted twice: %v %v", resp, err)
	}
	h.expectViolation(`accept: the tag "dup" is already open`)
	if st := h.Stats(); st.Sockets != 2 {
		t.Fatalf("sockets open: %+v", st)
	}
}

// waitEvents polls the close calls object c1 saw until they are want (sorted lines).
func waitEvents(t *testing.T, h *testHost, want ...string) {
	t.Helper()
	sort.Strings(want)
	deadline := time.Now().Add(20 * time.Second)
	for sortedLines(h.ok("/obj/c1/events")) != strings.Join(want, "\n") {
		if time.Now().After(deadline) {
			t.Fatalf("close calls: %q, want %q", h.ok("/obj/c1/events"), want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestWebSocketEnds: a client that reads nothing while Go sends more than the host buffers is closed with 1011;
// one that goes away without a close frame is a close call with 1006; the host's Close says 1001 to the rest.
func TestWebSocketEnds(t *testing.T) {
	h, addr := socketsHost(t, Options{WriteStallTimeout: time.Second})
	slow := dialWS(t, addr, "c1", "slow", "s")
	slow.send("flood:48:524288") // 24 MiB, and the client reads none of it
	gone := dialWS(t, addr, "c1", "gone", "g")
	gone.send("echo:x")
	gone.read()
	gone.conn.CloseNow()
	waitEvents(t, h, `gone 1006 "WebSocket disconnected without sending Close frame." clean=false att=g`, `slow 1011 "the client reads too slowly" clean=false att=s`)
	if !strings.Contains(h.log.String(), "socket slow of subs object") {
		t.Fatalf("the slow reader is not logged:\n%s", h.log)
	}

	last := dialWS(t, addr, "c1", "last", "")
	last.send("echo:x")
	last.read()
	if st := h.Stats(); st.Sockets != 1 {
		t.Fatalf("%+v", st)
	}
	h.Close()
	if code, _ := last.closed(); code != websocket.StatusGoingAway {
		t.Fatal(code)
	}
}

// An eviction waits for the objects runtime's calls in flight to end (Cloudflare hibernates only an idle object):
// a slow message call answers, and the next one runs on a new instance.
func TestEvictionWaitsForCalls(t *testing.T) {
	h, addr := socketsHost(t, Options{})
	a := dialWS(t, addr, "c1", "a", "")
	a.send("echo:first")
	inst1 := instanceOf(t, a.read())
	a.send("slow:300")
	for deadline := time.Now().Add(5 * time.Second); ; {
		if st := h.Stats(); st.Runtimes[len(st.Runtimes)-1].Calls > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the slow call never began")
		}
		time.Sleep(time.Millisecond) // polling what is observed: the call counted
	}
	if !h.EvictObjects() {
		t.Fatal("the eviction did not find the runtime idle")
	}
	if got := a.read(); !strings.HasPrefix(got, "slow:done instance="+inst1) {
		t.Fatalf("the call in flight: %q", got)
	}
	a.send("echo:after")
	if got := a.read(); strings.Contains(got, inst1) {
		t.Fatalf("after the eviction: %q", got)
	}
}
