package server

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// serveWith runs Serve for a probe host with opts on a random port and returns its address.
func serveWith(t *testing.T, opts Options) string {
	t.Helper()
	return serveOn(t, opts, func(l net.Listener) net.Listener { return l })
}

// serveOn is serveWith on the listener wrap makes of the random port's.
func serveOn(t *testing.T, opts Options, wrap func(net.Listener) net.Listener) string {
	t.Helper()
	opts.WasmPath, opts.StateDir, opts.CacheDir, opts.Log = probe, t.TempDir(), cacheDir, io.Discard
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(wrap(l))
	return l.Addr().String()
}

// stall opens a connection and sends head, then nothing more.
func stall(t *testing.T, addr, head string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := io.WriteString(c, head); err != nil {
		t.Fatal(err)
	}
	return c
}

// released waits (at most 10 s) for the server to close c, reading and dropping whatever it answers first.
func released(c net.Conn) error {
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err := io.Copy(io.Discard, c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return errors.New("still open after 10 s")
	}
	return nil // EOF or reset: the server closed it
}

// quick is a client that opens a new connection per request.
var quick = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

const (
	// oneByte is a request whose body promises 100 bytes and sends one.
	oneByte = "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\na"
	// halfHead is a request whose headers never end.
	halfHead = "POST /echo HTTP/1.1\r\nHost: x\r\nX-Slow: "
)

// Connections that send one byte of a body, or half their headers, and stall do not hold up other clients, and
// the server closes them once ReadTimeout (or ReadHeaderTimeout) has passed.
func TestStalledClientsReleased(t *testing.T) {
	addr := serveWith(t, Options{ReadHeaderTimeout: 300 * time.Millisecond, ReadTimeout: 500 * time.Millisecond, MaxConns: 64})
	var stalled []net.Conn
	for i := range 40 {
		head := oneByte
		if i%4 == 0 {
			head = halfHead
		}
		stalled = append(stalled, stall(t, addr, head))
	}
	for range 5 {
		res, err := quick.Get("http://" + addr + "/roundtrip")
		if err != nil {
			t.Fatalf("normal traffic with 40 stalled connections: %v", err)
		}
		res.Body.Close()
		if res.StatusCode != 200 {
			t.Fatalf("normal traffic: %d", res.StatusCode)
		}
	}
	for i, c := range stalled {
		if err := released(c); err != nil {
			t.Fatalf("stalled connection %d: %v", i, err)
		}
	}
}

// With MaxConns connections open, the next client waits until one closes; it is then served.
func TestMaxConns(t *testing.T) {
	addr := serveWith(t, Options{ReadTimeout: time.Second, MaxConns: 4})
	var stalled []net.Conn
	for range 4 {
		stalled = append(stalled, stall(t, addr, oneByte))
	}
	opened := time.Now() // the four hold every slot until their ReadTimeout (1 s) closes them
	served := make(chan time.Time, 1)
	go func() {
		res, err := quick.Get("http://" + addr + "/roundtrip")
		if err == nil {
			res.Body.Close()
		}
		if err != nil || res.StatusCode != 200 {
			t.Errorf("the waiting client: %v", err)
		}
		served <- time.Now()
	}()
	for i, c := range stalled {
		if err := released(c); err != nil {
			t.Fatalf("stalled connection %d: %v", i, err)
		}
	}
	// Served only once a slot was freed, so not before the stalled ones' ReadTimeout. (Comparing with the time a
	// client notices its connection closed would race: the server frees the slot first.)
	if at := <-served; at.Sub(opened) < 900*time.Millisecond {
		t.Errorf("a fifth client was served %v after 4 connections (MaxConns) took every slot, before any was freed", at.Sub(opened))
	}
}

// A kept-alive connection with no next request is closed after IdleTimeout.
func TestIdleConnectionClosed(t *testing.T) {
	addr := serveWith(t, Options{IdleTimeout: 300 * time.Millisecond})
	c := stall(t, addr, "GET /roundtrip HTTP/1.1\r\nHost: x\r\n\r\n")
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("%v %v", res, err)
	}
	if err := released(c); err != nil {
		t.Fatalf("idle connection: %v", err)
	}
}

// Headers over MaxHeaderBytes are refused with 431.
func TestMaxHeaderBytes(t *testing.T) {
	addr := serveWith(t, Options{})
	req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/roundtrip", nil)
	req.Header.Set("X-Big", strings.Repeat("b", DefaultMaxHeaderBytes+4096))
	res, err := quick.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("status %d, want 431", res.StatusCode)
	}
}

// A client that stops reading a large answer is dropped after WriteStallTimeout; the answer is not kept waiting
// for it (there is no bound on the whole exchange, so long answers to clients that read are never cut).
func TestWriteStallDropsClient(t *testing.T) {
	if testing.Short() {
		t.Skip("16 MiB through the program")
	}
	closed := make(chan struct{}) // the server closed the (only) connection it accepted
	addr := serveOn(t, Options{WriteStallTimeout: 300 * time.Millisecond}, func(l net.Listener) net.Listener {
		return &closeNotifier{Listener: l, closed: closed}
	})
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		return rc.Control(func(fd uintptr) { syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 16<<10) })
	}}
	c, err := d.DialContext(context.Background(), "tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const size = 16 << 20 // far beyond what the kernel buffers between the two ends
	io.WriteString(c, "GET /big?bytes=16777216 HTTP/1.1\r\nHost: x\r\n\r\n")
	select { // not reading: the server's writes stall, and it drops the connection
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("the server still holds the stalled connection after 10 s")
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, err := io.Copy(io.Discard, c)
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout():
		t.Fatalf("the connection is still open after %d bytes", n)
	case n >= size:
		t.Fatalf("the whole answer (%d bytes) came through: the stalled client was not dropped", n)
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatal(err)
	}
}

// closeNotifier closes closed when the server closes the first connection it accepted.
type closeNotifier struct {
	net.Listener
	closed chan struct{}
	once   sync.Once
}

func (l *closeNotifier) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &notifyingConn{Conn: c, l: l}, nil
}

type notifyingConn struct {
	net.Conn
	l *closeNotifier
}

func (c *notifyingConn) Close() error {
	err := c.Conn.Close()
	c.l.once.Do(func() { close(c.l.closed) })
	return err
}
