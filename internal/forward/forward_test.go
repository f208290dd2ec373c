package forward

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/evmlb/evmlb/internal/evmtest"
	"github.com/evmlb/evmlb/internal/platform"
	"github.com/evmlb/evmlb/internal/retry"
)

// noFollow is a client that follows no redirect, as every host's fetch.
var noFollow = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func target(u string) Target {
	var ticks atomic.Int64 // a fake clock that moves 7 ms per reading
	return Target{
		Post: postWith(noFollow, "application/json"), URL: u, Timeout: 300 * time.Millisecond, MaxBytes: 1 << 10,
		Now: func() time.Time { return time.Unix(0, ticks.Add(1)*int64(7*time.Millisecond)) },
	}
}

const body = `{"jsonrpc":"2.0","id":"x","method":"eth_call","params":[]}`

func TestDo(t *testing.T) {
	for _, tc := range []struct {
		name      string
		fault     evmtest.Fault
		url       func(*evmtest.Node) string
		max       int64
		unchecked bool
		class     retry.Class
		status    int
	}{
		{name: "ok", class: retry.OK, status: 200},
		{name: "refused", url: func(*evmtest.Node) string { return evmtest.RefusingURL(t) }, class: retry.Refused},
		{name: "500", fault: evmtest.Status500, class: retry.HTTP5xx, status: 500},
		{name: "429", fault: evmtest.Status429, class: retry.HTTP429, status: 429},
		{name: "non-JSON", fault: evmtest.NonJSON, class: retry.NonJSON, status: 200},
		{name: "non-JSON unchecked", fault: evmtest.NonJSON, unchecked: true, class: retry.OK, status: 200},
		{name: "hang", fault: evmtest.Hang, class: retry.Timeout},
		{name: "user-info in URL", url: func(n *evmtest.Node) string { return strings.Replace(n.URL, "http://", "http://x:y@", 1) }, class: retry.OK, status: 200},
		{name: "too large", max: 10, class: retry.TooLarge, status: 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := evmtest.NewNode(t, "n", 1, 5)
			n.SetFault(tc.fault)
			tg := target(n.URL)
			if tc.url != nil {
				tg.URL = tc.url(n)
			}
			if tc.max != 0 {
				tg.MaxBytes = tc.max
			}
			tg.Unchecked = tc.unchecked
			r := Do(context.Background(), tg, []byte(body))
			if r.Class != tc.class || r.Status != tc.status {
				t.Fatalf("class %q status %d (%s), want %q %d", r.Class, r.Status, r.Detail, tc.class, tc.status)
			}
			if r.Latency != 7*time.Millisecond {
				t.Errorf("latency %v", r.Latency)
			}
			if strings.Contains(r.Detail, evmtest.Secret) {
				t.Errorf("detail %q holds the secret", r.Detail)
			}
			if tc.class == retry.OK && !tc.unchecked && string(r.Body) != `{"jsonrpc":"2.0", "id":"x" ,"result":{"node":"n","method":"eth_call"}}` {
				t.Errorf("body %s", r.Body)
			}
		})
	}
}

// postWith is a platform.Platform.Post over c, as memplatform's, sending contentType ("": none).
func postWith(c *http.Client, contentType string) func(context.Context, string, []byte, int64) (int, []byte, error) {
	return func(ctx context.Context, u string, body []byte, limit int64) (int, []byte, error) {
		return post(ctx, c, contentType, u, body, limit)
	}
}

func post(ctx context.Context, c *http.Client, contentType, u string, body []byte, limit int64) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	return resp.StatusCode, b, err
}

// TestDoPostTooLarge: a host that enforces the answer limit itself fails with platform.ErrTooLarge.
func TestDoPostTooLarge(t *testing.T) {
	tg := target("http://unused.example/")
	tg.Post = func(context.Context, string, []byte, int64) (int, []byte, error) { return 0, nil, platform.ErrTooLarge }
	if r := Do(context.Background(), tg, []byte(body)); r.Class != retry.TooLarge {
		t.Fatalf("%+v", r)
	}
}

func TestDoHTTPOther(t *testing.T) {
	n := evmtest.NewNode(t, "n", 1, 5)
	tg := target(n.URL)
	tg.Post = postWith(noFollow, "") // evmtest nodes answer 415 to a body without Content-Type
	if r := Do(context.Background(), tg, []byte(body)); r.Class != retry.HTTPOther || r.Status != http.StatusUnsupportedMediaType {
		t.Errorf("class %q status %d", r.Class, r.Status)
	}
}

// A 3xx is a failure of its own class, never followed: the server it points to receives nothing.
func TestDoRedirect(t *testing.T) {
	trap := evmtest.NewTrap(t)
	n := evmtest.NewNode(t, "n", 1, 5)
	n.SetRedirect(trap.URL)
	r := Do(context.Background(), target(n.URL), []byte(body))
	if r.Class != retry.HTTPRedirect || r.Status != http.StatusTemporaryRedirect || trap.Hits() != 0 {
		t.Fatalf("class %q status %d, trap hit %d times", r.Class, r.Status, trap.Hits())
	}
	if strings.Contains(string(r.Body), evmtest.TrapMarker) {
		t.Errorf("body %s is the redirect target's", r.Body)
	}
}

func TestDoCanceled(t *testing.T) {
	n := evmtest.NewNode(t, "n", 1, 5)
	n.SetFault(evmtest.Hang)
	ctx, cancel := context.WithCancel(context.Background())
	go func() { // the client goes away once the node has the request
		for n.Calls() == 0 {
			time.Sleep(time.Millisecond)
		}
		cancel()
	}()
	if r := Do(ctx, target(n.URL), []byte(body)); r.Class != retry.Canceled {
		t.Errorf("class %q", r.Class)
	}
}

func TestScrub(t *testing.T) {
	raw := "https://user:pa55@rpc.example.com/v3/KEY123?apikey=QQQ#frag"
	err := &url.Error{Op: "Post", URL: raw, Err: errors.New("dial tcp: lookup rpc.example.com: no such host")}
	got := Scrub(err, raw)
	if got != "dial tcp: lookup rpc.example.com: no such host" {
		t.Errorf("got %q", got)
	}
	inner := errors.New("TypeError: fetch failed for " + raw + " (path /v3/KEY123, key apikey=QQQ, pass pa55)")
	got = Scrub(&url.Error{Op: "Post", URL: raw, Err: inner}, raw)
	for _, s := range []string{"KEY123", "QQQ", "pa55", "user:", "frag"} {
		if strings.Contains(got, s) {
			t.Errorf("%q holds %q", got, s)
		}
	}
	if !strings.Contains(got, "https://rpc.example.com") {
		t.Errorf("%q lost the host", got)
	}
}
