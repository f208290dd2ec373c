package server

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestSyumaiWorkersProgram runs a program built like the balancer (github.com/syumai/workers, net/http's fetch
// transport, Durable Object stubs).
func TestSyumaiWorkersProgram(t *testing.T) {
	s, log := newServer(t, "workers", "", nil)
	if got := expectOK(t, s, "/hello"); got != "hello GET role=worker" {
		t.Fatal(got)
	}
	if _, got := do(t, s, "POST", "/echo", strings.NewReader("payload")); got != "payload" {
		t.Fatal(got)
	}
	got := expectOK(t, s, "/do?name=x")
	if !strings.HasPrefix(got, "role=chain object=") || !strings.HasSuffix(got, " instance=32") {
		t.Fatal(got)
	}
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("from upstream")) }))
	defer up.Close()
	if got := expectOK(t, s, "/upstream?url="+up.URL); got != "from upstream" {
		t.Fatal(got)
	}
	expectOK(t, s, "/log")
	deadline := time.Now().Add(2 * time.Second)
	for !strings.Contains(log.String(), "log line from go\n") && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if !strings.Contains(log.String(), "log line from go\n") {
		t.Fatalf("log: %q", log)
	}
}
