package server

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/evmlb/evmlb/internal/contract"
)

// WebSockets (CONTRACT.md §7). As workerd's Hibernation API does, the host, not the object's runtime, owns every
// socket a subs object accepted, with its tag and attachment: the runtime can end (a crash, EvictObjects) and the
// sockets stay open; the next frame begins a message call in a new runtime, whose instance meets its sockets
// again through the socket operation. A socket is accepted when the object's response says so (its tag is
// registered then, so that Go may send to it at once: frames wait until the client's handshake is done), and
// the worker call's handler, which holds the client's connection, then completes the handshake and reads it.

// Bounds of the host's sockets.
const (
	// socketSendBuffer is what one socket may have queued and not yet written: beyond it, the client reads too
	// slowly and the host closes it with 1011 (Go hears a close call).
	socketSendBuffer = 16 << 20
	// socketReadCap is the longest frame the host reads at all (longer ones close the socket with 1009); frames
	// longer than maxBodyBytes and shorter than this reach Go as too large, without their bytes.
	socketReadCap = 64 << 20
	// socketCallsInFlight bounds the message calls of one socket running at once: the host reads its next frame
	// only when one ends (back-pressure on the client, not a queue in the host).
	socketCallsInFlight = 16
	// noCloseFrame is the reason of a close call for a connection that ended without a close frame: workerd's
	// words (seen in wrangler dev), so that both hosts' logs read alike.
	noCloseFrame = "WebSocket disconnected without sending Close frame."
	// closeSlowReader is the code of a socket closed for not reading (RFC 6455: internal error).
	closeSlowReader = 1011
)

// socket is a WebSocket a subs object accepted.
type socket struct {
	s                 *Server
	object, role, tag string

	attachment string // guarded by the table's mu
	open       bool   // in the table: Go may reach it

	mu          sync.Mutex // the writer's queue
	queue       [][]byte
	queued      int
	closing     bool // close after the queue: closeCode, closeReason
	closeCode   int
	closeReason string
	closeTell   bool // then tell Go (a close call), as workerd does with the peer's answering close frame
	wake        chan struct{}
	stopped     chan struct{} // the connection ended (or never came)
	stopOnce    sync.Once
}

func (k *socket) stop() { k.stopOnce.Do(func() { close(k.stopped) }) }

// enqueue queues a text frame; false when the socket has more than socketSendBuffer waiting.
func (k *socket) enqueue(frame []byte) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.closing {
		return true // it reaches nothing, as a send to a closing socket
	}
	if k.queued+len(frame) > socketSendBuffer {
		return false
	}
	k.queue = append(k.queue, frame)
	k.queued += len(frame)
	k.signal()
	return true
}

// closeWith closes the socket with code and reason once the frames queued before are written (drop: at once,
// the queue dropped); tell: Go then hears a close call.
func (k *socket) closeWith(code int, reason string, tell, drop bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.closing {
		return
	}
	k.closing, k.closeCode, k.closeReason, k.closeTell = true, code, reason, tell
	if drop {
		k.queue, k.queued = nil, 0
	}
	k.signal()
}

func (k *socket) signal() {
	select {
	case k.wake <- struct{}{}:
	default:
	}
}

// socketTable is the host's sockets by object id and tag.
type socketTable struct {
	s       *Server
	mu      sync.Mutex
	byObj   map[string]map[string]*socket
	writers atomic.Int64 // the sockets' writers running, which closeAll waits for
}

func newSocketTable(s *Server) *socketTable {
	return &socketTable{s: s, byObj: map[string]map[string]*socket{}}
}

// add registers a socket object accepted under tag; false when the object has an open socket with that tag.
func (t *socketTable) add(object, role, tag, attachment string) (*socket, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	m := t.byObj[object]
	if m == nil {
		m = map[string]*socket{}
		t.byObj[object] = m
	}
	if m[tag] != nil {
		return nil, false
	}
	k := &socket{s: t.s, object: object, role: role, tag: tag, attachment: attachment, open: true,
		wake: make(chan struct{}, 1), stopped: make(chan struct{})}
	m[tag] = k
	return k, true
}

// remove takes k out of the table; false when it was not there (Go or the host closed it already).
func (t *socketTable) remove(k *socket) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.removeLocked(k)
}

func (t *socketTable) removeLocked(k *socket) bool {
	if !k.open {
		return false
	}
	k.open = false
	m := t.byObj[k.object]
	delete(m, k.tag)
	if len(m) == 0 {
		delete(t.byObj, k.object)
	}
	return true
}

// abandon drops a socket whose client never got it (the handshake failed, the worker call went away): Go hears
// that it closed (1006).
func (t *socketTable) abandon(k *socket) {
	k.stop()
	if t.remove(k) {
		t.s.socketClosed(k, contract.CloseAbnormal, "", false)
		return
	}
	k.mu.Lock() // Go closed it before the client came: it hears of it all the same
	tell, code, reason := k.closing && k.closeTell, k.closeCode, k.closeReason
	k.closeTell = false
	k.mu.Unlock()
	if tell {
		t.s.socketClosed(k, code, reason, false)
	}
}

// count is the number of open sockets.
func (t *socketTable) count() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for _, m := range t.byObj {
		n += len(m)
	}
	return n
}

// closeAll closes every socket (the host is closing): 1001, going away, and waits a little for the close frames
// to go out. Go is not told: its runtime is ending.
func (t *socketTable) closeAll() {
	defer func() {
		for deadline := time.Now().Add(2 * time.Second); t.writers.Load() > 0 && time.Now().Before(deadline); {
			time.Sleep(5 * time.Millisecond)
		}
	}()
	t.mu.Lock()
	var all []*socket
	for _, m := range t.byObj {
		for _, k := range m {
			all = append(all, k)
		}
	}
	for _, k := range all {
		t.removeLocked(k)
	}
	t.mu.Unlock()
	for _, k := range all {
		k.closeWith(int(websocket.StatusGoingAway), "the host is closing", false, false)
	}
}

// op performs a socket operation of c, a subs object's call: its own object's sockets only. In c's handler.
func (t *socketTable) op(c *call, m *message) result {
	t.mu.Lock()
	objSocks := t.byObj[c.object]
	var slow []*socket
	n := 0
	switch m.call {
	case contract.SocketSend:
		var targets []*socket
		if m.all {
			for _, k := range objSocks {
				targets = append(targets, k)
			}
		} else {
			seen := map[string]bool{}
			for _, tag := range m.tags {
				if k := objSocks[tag]; k != nil && !seen[tag] {
					seen[tag] = true
					targets = append(targets, k)
				}
			}
		}
		for _, k := range targets {
			if k.enqueue(m.body) {
				n++
				continue
			}
			t.removeLocked(k)
			slow = append(slow, k)
		}
	case contract.SocketClose:
		if k := objSocks[m.tag]; k != nil {
			t.removeLocked(k)
			k.closeWith(m.code, m.reason, true, false)
			n = 1
		}
	case contract.SocketAttach:
		if k := objSocks[m.tag]; k != nil {
			k.attachment = m.attachment
			n = 1
		}
	case contract.SocketList:
		// In no particular order (workerd's getWebSockets is not in the order of acceptance): a map's, which
		// differs from one list to the next, so that Go cannot come to rely on one.
		entries := make([]string, 0, 2*len(objSocks))
		for _, k := range objSocks {
			entries = append(entries, k.tag, k.attachment)
		}
		t.mu.Unlock()
		return result{entries: entries, hasEntries: true}
	}
	t.mu.Unlock()
	for _, k := range slow {
		t.s.logf("socket %s of %s object %s: the client reads too slowly; closed (%d)", k.tag, k.role, k.object[:12], closeSlowReader)
		k.closeWith(closeSlowReader, "the client reads too slowly", true, true)
	}
	return result{count: n, hasCount: true}
}

// attachmentOf is k's attachment now.
func (t *socketTable) attachmentOf(k *socket) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return k.attachment
}

// serveSocket completes the WebSocket handshake of a worker call whose upgrade an object accepted, then reads
// the socket until it ends, each frame a message call of the object. On the worker call's connection goroutine.
func (s *Server) serveSocket(w http.ResponseWriter, r *http.Request, rc *http.ResponseController, k *socket) {
	// The connection's deadlines (ReadTimeout, the write stall) bound an HTTP exchange; a socket lives on.
	_ = rc.SetReadDeadline(time.Time{})
	_ = rc.SetWriteDeadline(time.Time{})
	// Origins are Go's to judge (it reads the origin header), as in workerd: no check here.
	conn, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
	if err != nil {
		s.logf("socket %s: handshake: %v", k.tag, err)
		s.socks.abandon(k)
		return
	}
	conn.SetReadLimit(socketReadCap)
	ctx, cancel := context.WithCancel(s.ctx)
	defer cancel()
	s.socks.writers.Add(1)
	go func() {
		defer s.socks.writers.Add(-1)
		k.write(ctx, conn, or(s.opts.WriteStallTimeout, DefaultWriteStallTimeout))
	}()
	defer k.stop()
	inFlight := make(chan struct{}, socketCallsInFlight)
	for {
		typ, rd, err := conn.Reader(ctx)
		if err != nil {
			code, reason, clean := contract.CloseAbnormal, noCloseFrame, false
			var ce websocket.CloseError
			if errors.As(err, &ce) {
				code, reason, clean = int(ce.Code), ce.Reason, true
				if code == int(websocket.StatusNoStatusRcvd) {
					code = 1005
				}
			}
			k.stop()
			if s.socks.remove(k) {
				s.socketClosed(k, code, reason, clean)
			}
			conn.CloseNow()
			return
		}
		maxBody := int64(0)
		if rt, err := s.objects.get(); err == nil {
			maxBody = rt.maxBody
		}
		data, err := io.ReadAll(io.LimitReader(rd, maxBody+1))
		tooLarge := int64(len(data)) > maxBody
		if err == nil && tooLarge {
			data = nil
			_, err = io.Copy(io.Discard, rd)
		}
		if err != nil {
			continue // the next Reader reports why the connection failed
		}
		frame := contract.FrameText
		if typ == websocket.MessageBinary {
			frame = contract.FrameBinary
		}
		if data == nil && !tooLarge {
			data = []byte{}
		}
		select {
		case inFlight <- struct{}{}:
		case <-ctx.Done():
			continue
		}
		large := ""
		if tooLarge {
			large = "1"
		}
		s.socketCall(k, contract.CallMessage, large, []string{k.tag, s.socks.attachmentOf(k), frame}, data, func() { <-inFlight })
	}
}

// write writes k's queued frames in order, then its close; it ends the connection when a write fails or stalls.
// A close Go asked for (or the host's for a slow reader) is told to Go however the connection ends.
func (k *socket) write(ctx context.Context, conn *websocket.Conn, stall time.Duration) {
	defer func() {
		k.mu.Lock()
		tell, code, reason := k.closing && k.closeTell, k.closeCode, k.closeReason
		k.closeTell = false
		k.mu.Unlock()
		if tell {
			k.s.socketClosed(k, code, reason, false)
		}
	}()
	for {
		k.mu.Lock()
		if len(k.queue) > 0 {
			frame := k.queue[0]
			k.queue[0] = nil
			k.queue = k.queue[1:]
			k.queued -= len(frame)
			k.mu.Unlock()
			wctx, cancel := context.WithTimeout(ctx, stall)
			err := conn.Write(wctx, websocket.MessageText, frame)
			cancel()
			if err != nil {
				conn.CloseNow()
				return
			}
			continue
		}
		if k.closing {
			code, reason, tell := k.closeCode, k.closeReason, k.closeTell
			k.closeTell = false
			k.mu.Unlock()
			err := conn.Close(websocket.StatusCode(code), reason)
			if tell {
				k.s.socketClosed(k, code, reason, err == nil)
			}
			return
		}
		k.mu.Unlock()
		select {
		case <-k.wake:
		case <-k.stopped:
			return
		case <-ctx.Done():
			conn.CloseNow()
			return
		}
	}
}

// socketClosed tells the object that k closed: a close call.
func (s *Server) socketClosed(k *socket, code int, reason string, clean bool) {
	c := ""
	if clean {
		c = "1"
	}
	s.socketCall(k, contract.CallClose, "", []string{k.tag, s.socks.attachmentOf(k), strconv.Itoa(code), reason, c}, nil, nil)
}

// socketCall begins a message or close call of k's object, in the objects runtime (started again if it ended).
func (s *Server) socketCall(k *socket, kind, tooLarge string, rest []string, body []byte, onEnd func()) {
	rt, err := s.objects.get()
	if err != nil {
		s.logf("objects runtime: %v", err)
		if onEnd != nil {
			onEnd()
		}
		return
	}
	s.objects.served.Add(1)
	inst := rt.instance(k.role, k.object)
	c := s.newCall(rt, inst.x, kind, k.role)
	c.object, c.instance, c.what = inst.id, inst.token, kind+" of "+k.role+" object "+inst.id[:12]
	c.onEnd = onEnd
	meta := append([]string{kind, k.role, inst.id, inst.token, "", "", tooLarge, "0"}, rest...)
	rt.beginCall(c, meta, body)
}

// EvictObjects ends the objects runtime as Cloudflare evicts a hibernated Durable Object: the Go memory of every
// instance is gone, while the sockets stay open with their tags and attachments; the next call (a frame, a
// request, an alarm) starts a new runtime, with new instance tokens. Like Cloudflare, which hibernates only an
// object with no call in flight, it waits for a moment with none (at most EvictWait; then the calls in flight
// fail, as in a crash) and reports whether it found one. For tests, and an operator's check of what survives.
func (s *Server) EvictObjects() (idle bool) {
	rt, _ := s.objects.current()
	if rt == nil {
		return true
	}
	idle = rt.closeIdle(EvictWait)
	rt.stop()
	s.objects.release(rt) // its linear memory is garbage now, as an evicted isolate's is gone
	return idle
}

// EvictWait bounds how long EvictObjects waits for the objects runtime to have no call in flight.
const EvictWait = 5 * time.Second
