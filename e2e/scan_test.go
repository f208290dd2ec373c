package e2e

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/gorilla/websocket"
)

// TestWSScan: the WebSocket scan finds a secret in a message, in a close frame's reason and across two reads
// once each, and nothing in a clean exchange.
func TestWSScan(t *testing.T) {
	const secret = "sk-live-0123456789abcdef"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		switch r.URL.Path {
		case "/message":
			_ = c.WriteMessage(websocket.TextMessage, []byte(`{"error":"`+secret+`"}`))
		case "/close":
			_ = c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(4000, "bad "+secret))
		case "/clean":
			_ = c.WriteMessage(websocket.TextMessage, []byte(`{"result":"0x1"}`))
		}
		_, _, _ = c.ReadMessage()
	}))
	defer srv.Close()
	for path, want := range map[string]int{"/message": 1, "/close": 1, "/clean": 0} {
		var mu sync.Mutex
		found := 0
		d := scanDialer(func() int { return len(secret) }, func(b []byte) {
			mu.Lock()
			defer mu.Unlock()
			found += bytes.Count(b, []byte(secret))
		})
		c, _, err := d.Dial("ws"+strings.TrimPrefix(srv.URL, "http")+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, _, _ = c.ReadMessage()
		c.Close()
		mu.Lock()
		if found != want {
			t.Errorf("%s: the secret found %d times, want %d", path, found, want)
		}
		mu.Unlock()
	}
	// A secret split between two reads is found once; one in a read's tail is not found again.
	a, b := net.Pipe()
	go func() {
		_, _ = b.Write([]byte("xx" + secret[:10]))
		_, _ = b.Write([]byte(secret[10:] + "yy"))
		_, _ = b.Write([]byte("zz"))
		b.Close()
	}()
	found := 0
	sc := &scanConn{Conn: a, longest: func() int { return len(secret) }, check: func(p []byte) { found += bytes.Count(p, []byte(secret)) }}
	if _, err := io.ReadAll(sc); err != nil {
		t.Fatal(err)
	}
	if found != 1 {
		t.Errorf("a secret split between reads found %d times, want 1", found)
	}
}
