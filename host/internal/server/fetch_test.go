package server

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// upstream is a test server for fetch operations.
func upstream(t *testing.T, h http.HandlerFunc) *httptest.Server {
	t.Helper()
	ts := httptest.NewServer(h)
	t.Cleanup(ts.Close)
	return ts
}

func fetchPath(u string, params ...string) string {
	q := url.Values{"url": {u}}
	for i := 0; i+1 < len(params); i += 2 {
		q.Set(params[i], params[i+1])
	}
	return "/fetch?" + q.Encode()
}

func TestFetch(t *testing.T) {
	up := upstream(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "text/x-test")
		fmt.Fprintf(w, "%s %s probe=%s body=%s", r.Method, r.URL.Path, r.Header.Get("X-Probe"), b)
	})
	h := newHost(t, Options{})
	if got := h.ok(fetchPath(up.URL + "/a")); got != "status=200 location= type=text/x-test body=GET /a probe=1 body=" {
		t.Fatal(got)
	}
	if got := h.ok(fetchPath(up.URL+"/b", "method", "POST", "body", "hello")); !strings.HasSuffix(got, "body=POST /b probe=1 body=hello") {
		t.Fatal(got)
	}
	// As fetch does: a GET cannot carry a body.
	if got := h.ok(fetchPath(up.URL, "method", "GET", "body", "x")); !strings.HasPrefix(got, "error=invalid ") {
		t.Fatal(got)
	}
	if got := h.ok(fetchPath("ftp://127.0.0.1/")); !strings.HasPrefix(got, "error=invalid ") {
		t.Fatal(got)
	}
}

func TestFetchDoesNotFollowRedirects(t *testing.T) {
	var followed atomic.Bool
	up := upstream(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/elsewhere" {
			followed.Store(true)
		}
		http.Redirect(w, r, "/elsewhere", http.StatusTemporaryRedirect)
	})
	h := newHost(t, Options{})
	if got := h.ok(fetchPath(up.URL + "/start")); !strings.HasPrefix(got, "status=307 location=/elsewhere ") {
		t.Fatal(got)
	}
	if followed.Load() {
		t.Fatal("the host followed the redirect")
	}
}

func TestFetchTimeout(t *testing.T) {
	canceled := make(chan struct{})
	up := upstream(t, func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
		close(canceled)
	})
	h := newHost(t, Options{})
	start := time.Now()
	if got := h.ok(fetchPath(up.URL, "timeout", "150")); !strings.HasPrefix(got, "error=timeout ") {
		t.Fatal(got)
	}
	if d := time.Since(start); d < 150*time.Millisecond || d > 3*time.Second {
		t.Fatalf("a 150 ms timeout took %v", d)
	}
	select {
	case <-canceled:
	case <-time.After(5 * time.Second):
		t.Fatal("the upstream request was not canceled")
	}
}

func TestFetchLimit(t *testing.T) {
	body := strings.Repeat("z", 2000)
	up := upstream(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/chunked" { // no Content-Length: the host must count
			w.Write([]byte(body[:1000]))
			w.(http.Flusher).Flush()
			w.Write([]byte(body[1000:]))
			return
		}
		io.WriteString(w, body)
	})
	h := newHost(t, Options{})
	for _, path := range []string{"/known", "/chunked"} {
		if got := h.ok(fetchPath(up.URL+path, "limit", "1000")); !strings.HasPrefix(got, "error=too_large ") {
			t.Fatalf("%s: %s", path, got)
		}
		if got := h.ok(fetchPath(up.URL+path, "limit", "2000")); !strings.HasSuffix(got, "body="+body) {
			t.Fatalf("%s at the limit: %.60s", path, got)
		}
	}
}

func TestFetchAbortCancelsRequest(t *testing.T) {
	canceled := make(chan struct{})
	up := upstream(t, func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
		close(canceled)
	})
	h := newHost(t, Options{})
	if got := h.ok("/fetch-abort?url=" + url.QueryEscape(up.URL)); got != "error=aborted" {
		t.Fatal(got)
	}
	select {
	case <-canceled:
	case <-time.After(5 * time.Second):
		t.Fatal("the upstream request was not canceled")
	}
}

func TestFetchNetworkError(t *testing.T) {
	up := httptest.NewServer(http.NotFoundHandler())
	addr := up.URL
	up.Close()
	h := newHost(t, Options{})
	got := h.ok(fetchPath(addr + "/secret-path?key=k"))
	if !strings.HasPrefix(got, "error=network ") || strings.Contains(got, "secret-path") {
		t.Fatal(got)
	}
}

// TestBackgroundAfterResponse: the client has its answer while the call still runs operations.
func TestBackgroundAfterResponse(t *testing.T) {
	release := make(chan struct{})
	reached := make(chan struct{}, 1)
	up := upstream(t, func(w http.ResponseWriter, r *http.Request) {
		reached <- struct{}{}
		<-release
		io.WriteString(w, "late")
	})
	h := newHost(t, Options{})
	if got := h.ok("/background?name=bg&url=" + url.QueryEscape(up.URL)); got != "answered" {
		t.Fatal(got)
	}
	select {
	case <-reached:
	case <-time.After(5 * time.Second):
		t.Fatal("the background fetch never came")
	}
	if got := h.ok("/do?name=bg&op=get&k=bg"); got != "<none>" {
		t.Fatalf("background went on before its fetch ended: %s", got)
	}
	close(release)
	deadline := time.Now().Add(5 * time.Second)
	for h.ok("/do?name=bg&op=get&k=bg") != "done" {
		if time.Now().After(deadline) {
			t.Fatal("the background object call never came")
		}
		time.Sleep(10 * time.Millisecond)
	}
	h.settled()
}
