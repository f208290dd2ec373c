package memplatform

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"

	"github.com/evmlb/evmlb/internal/contract"
	"github.com/evmlb/evmlb/internal/platform"
)

// The host's WebSockets (CONTRACT.md §7), in memory: a Conn is both the host's socket (tag, attachment, kept by
// the Host, not by the app: Restart keeps them, as eviction does in the real hosts) and the client's end, which
// the test drives (Send, Frames, Close). Message and close calls run the bound handler's Socket method
// synchronously in the sender's goroutine, in order.

// SocketHandler is what a handler implements to receive the message and close calls of its subs objects.
type SocketHandler interface {
	Socket(ctx context.Context, ev platform.SocketEvent) error
}

type objectKey struct{}
type acceptKey struct{}
type dialKey struct{}

// withObject marks ctx as a call of the object id (socket operations act on its sockets).
func withObject(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, objectKey{}, id)
}

func objectOf(ctx context.Context) string {
	id, _ := ctx.Value(objectKey{}).(string)
	return id
}

// acceptSlot is where a subs object's fetch call made by an upgrade puts its Accept.
type acceptSlot struct {
	mu       sync.Mutex
	accepted *platform.Socket
}

// dialSlot receives what a Dial's upgrade made: the socket, or the object's refusal.
type dialSlot struct {
	conn   *Conn
	status int
	body   []byte
}

// Conn is one WebSocket: the host's record of it and the client's end.
type Conn struct {
	h      *Host
	object string
	tag    string

	mu         sync.Mutex
	attachment string
	open       bool
	frames     [][]byte // text frames sent to the client, in order
	code       int      // the close code, once closed
	reason     string
}

// Tag is the socket's tag, Attachment its attachment now.
func (c *Conn) Tag() string { return c.tag }

// Attachment is the socket's attachment now.
func (c *Conn) Attachment() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.attachment
}

// Frames returns the text frames the client received so far and forgets them.
func (c *Conn) Frames() [][]byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	f := c.frames
	c.frames = nil
	return f
}

// Closed reports whether the socket is closed, with the code and reason.
func (c *Conn) Closed() (closed bool, code int, reason string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return !c.open, c.code, c.reason
}

// Send delivers a text frame from the client: a message call, returned when it ended.
func (c *Conn) Send(text string) error {
	return c.message(platform.SocketEvent{Data: []byte(text)})
}

// SendBinary delivers a binary frame; SendTooLarge a frame over the host's bound (its bytes are not delivered).
func (c *Conn) SendBinary(b []byte) error {
	return c.message(platform.SocketEvent{Binary: true, Data: b})
}

// SendTooLarge delivers a frame longer than maxBodyBytes, without its bytes, as the hosts do.
func (c *Conn) SendTooLarge() error { return c.message(platform.SocketEvent{TooLarge: true}) }

func (c *Conn) message(ev platform.SocketEvent) error {
	c.mu.Lock()
	if !c.open {
		c.mu.Unlock()
		return errors.New("memplatform: the socket is closed")
	}
	ev.Kind, ev.Attachment = contract.CallMessage, c.attachment
	c.mu.Unlock()
	return c.h.deliver(c, ev)
}

// Close closes the socket from the client's side with code and reason: a close call follows.
func (c *Conn) Close(code int, reason string) error {
	c.mu.Lock()
	if !c.open {
		c.mu.Unlock()
		return errors.New("memplatform: the socket is closed")
	}
	c.open, c.code, c.reason = false, code, reason
	att := c.attachment
	c.mu.Unlock()
	c.h.forget(c)
	return c.h.deliver(c, platform.SocketEvent{Kind: contract.CallClose, Attachment: att, Code: code, Reason: reason, Clean: true})
}

func (h *Host) deliver(c *Conn, ev platform.SocketEvent) error {
	ev.Role, ev.Object, ev.Tag = contract.RoleSubs, c.object, c.tag
	h.mu.Lock()
	if in := h.instances[c.object]; in != nil {
		ev.Instance = in.token
	}
	handler := h.handler
	h.mu.Unlock()
	sh, ok := handler.(SocketHandler)
	if !ok {
		return nil // the host ends the call at once
	}
	return sh.Socket(withObject(context.Background(), c.object), ev)
}

func (h *Host) forget(c *Conn) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if m := h.sockets[c.object]; m[c.tag] == c {
		delete(m, c.tag)
	}
}

// Dial makes a WebSocket upgrade request of path through the Worker entry (ServeHTTP) with header: the socket
// when the subs object accepted it, else nil with the answer's status and body (the object's refusal, or the
// Worker's own answer).
func (h *Host) Dial(path string, header http.Header) (*Conn, int, []byte) {
	slot := &dialSlot{}
	r, _ := http.NewRequestWithContext(context.WithValue(context.Background(), dialKey{}, slot), http.MethodGet, "https://evmlb.test"+path, nil)
	for k, v := range header {
		r.Header[k] = v
	}
	if r.Header.Get("Upgrade") == "" {
		r.Header.Set("Upgrade", "websocket")
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	if slot.conn != nil || slot.status != 0 {
		return slot.conn, slot.status, slot.body
	}
	return nil, rec.Code, rec.Body.Bytes()
}

// Sockets returns the open sockets of the SUBS object name.
func (h *Host) Sockets(name string) []*Conn {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []*Conn
	for _, c := range h.sockets[ObjectID(contract.RoleSubs, name)] {
		out = append(out, c)
	}
	return out
}

// memSockets is platform.Sockets of the Host.
type memSockets struct{ h *Host }

var errNotSubs = errors.New("memplatform: socket operation outside a subs object's call")

func (s memSockets) Upgrade(ctx context.Context, name, path string, header http.Header) (int, error) {
	if objectOf(ctx) != "" {
		return 0, errors.New("memplatform: upgrade from an object's call")
	}
	if !strings.EqualFold(header.Get("Upgrade"), "websocket") {
		return 0, errors.New("memplatform: upgrade without Upgrade: websocket")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+contract.BindingSubs+path, nil)
	if err != nil {
		return 0, err
	}
	req.Header = header.Clone()
	slot := &acceptSlot{}
	resp, err := namespace{s.h, contract.RoleSubs}.Fetch(context.WithValue(ctx, acceptKey{}, slot), name, req)
	if err != nil {
		return 0, err
	}
	body, _ := io.ReadAll(resp.Body)
	dial, _ := ctx.Value(dialKey{}).(*dialSlot)
	slot.mu.Lock()
	acc := slot.accepted
	slot.mu.Unlock()
	if acc == nil {
		if dial != nil {
			dial.status, dial.body = resp.StatusCode, body
		}
		return resp.StatusCode, nil
	}
	id := ObjectID(contract.RoleSubs, name)
	c := &Conn{h: s.h, object: id, tag: acc.Tag, attachment: acc.Attachment, open: true}
	s.h.mu.Lock()
	if s.h.sockets == nil {
		s.h.sockets = map[string]map[string]*Conn{}
	}
	if s.h.sockets[id] == nil {
		s.h.sockets[id] = map[string]*Conn{}
	}
	if s.h.sockets[id][acc.Tag] != nil {
		s.h.mu.Unlock()
		return 0, fmt.Errorf("memplatform: tag %q accepted twice", acc.Tag)
	}
	s.h.sockets[id][acc.Tag] = c
	s.h.mu.Unlock()
	if dial != nil {
		dial.conn, dial.status = c, http.StatusSwitchingProtocols
	}
	return http.StatusSwitchingProtocols, nil
}

func (s memSockets) Accept(ctx context.Context, tag, attachment string) error {
	slot, _ := ctx.Value(acceptKey{}).(*acceptSlot)
	if slot == nil {
		return errors.New("memplatform: accept outside a fetch call made by an upgrade")
	}
	if tag == "" || len(tag) > contract.MaxTagBytes || len(attachment) > contract.MaxAttachmentBytes {
		return errors.New("memplatform: tag or attachment outside the contract's limits")
	}
	slot.mu.Lock()
	defer slot.mu.Unlock()
	slot.accepted = &platform.Socket{Tag: tag, Attachment: attachment}
	return nil
}

// conns returns the open sockets of ctx's object with one of tags (all when all).
func (s memSockets) conns(ctx context.Context, all bool, tags ...string) ([]*Conn, error) {
	id := objectOf(ctx)
	s.h.mu.Lock()
	defer s.h.mu.Unlock()
	if in := s.h.instances[id]; in == nil || in.role != contract.RoleSubs {
		return nil, errNotSubs
	}
	var out []*Conn
	m := s.h.sockets[id]
	if all {
		for _, c := range m {
			out = append(out, c)
		}
		return out, nil
	}
	for _, t := range tags {
		if c := m[t]; c != nil {
			out = append(out, c)
		}
	}
	return out, nil
}

func (s memSockets) Send(ctx context.Context, text []byte, tags ...string) (int, error) {
	cs, err := s.conns(ctx, false, tags...)
	n := 0
	for _, c := range cs {
		c.mu.Lock()
		if c.open {
			c.frames = append(c.frames, append([]byte(nil), text...))
			n++
		}
		c.mu.Unlock()
	}
	return n, err
}

func (s memSockets) Close(ctx context.Context, tag string, code int, reason string) (int, error) {
	if !contract.ValidCloseCode(code) || len(reason) > contract.MaxCloseReasonBytes {
		return 0, errors.New("memplatform: close code or reason outside the contract's limits")
	}
	cs, err := s.conns(ctx, false, tag)
	if err != nil || len(cs) == 0 {
		return 0, err
	}
	c := cs[0]
	c.mu.Lock()
	c.open, c.code, c.reason = false, code, reason
	att := c.attachment
	c.mu.Unlock()
	s.h.forget(c)
	// The peer's answering close frame comes as a close call, after this call (CONTRACT.md §7).
	s.h.background(ctx, func(context.Context) {
		_ = s.h.deliver(c, platform.SocketEvent{Kind: contract.CallClose, Attachment: att, Code: code, Reason: reason, Clean: true})
	})
	return 1, nil
}

func (s memSockets) Attach(ctx context.Context, tag, attachment string) (int, error) {
	if len(attachment) > contract.MaxAttachmentBytes {
		return 0, errors.New("memplatform: attachment over the contract's limit")
	}
	cs, err := s.conns(ctx, false, tag)
	if err != nil || len(cs) == 0 {
		return 0, err
	}
	cs[0].mu.Lock()
	cs[0].attachment = attachment
	cs[0].mu.Unlock()
	return 1, nil
}

func (s memSockets) List(ctx context.Context) ([]platform.Socket, error) {
	cs, err := s.conns(ctx, true)
	var out []platform.Socket
	for _, c := range cs {
		c.mu.Lock()
		out = append(out, platform.Socket{Tag: c.tag, Attachment: c.attachment})
		c.mu.Unlock()
	}
	return out, err
}
