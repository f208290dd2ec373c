package forward

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
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

// TestCredentials: the parts of a provider URL that may be keys, as written and unescaped, longest first; scheme,
// host, port and short or word-like segments are not.
func TestCredentials(t *testing.T) {
	for _, tc := range []struct {
		url  string
		want []string
	}{
		{"https://eth-mainnet.g.alchemy.com/v2/Abc123def456ghi789jkl012mno345pq", []string{"Abc123def456ghi789jkl012mno345pq"}},
		{"https://mainnet.infura.io/v3/0123456789abcdef0123456789abcdef", []string{"0123456789abcdef0123456789abcdef"}},
		{"https://user:s3cretPassw0rd@node.example:8545/rpc?apikey=k3y%2Fwith%2Fslash99&network=mainnet#frag12345678",
			[]string{"k3y%2Fwith%2Fslash99", "k3y/with/slash99", "s3cretPassw0rd", "frag12345678"}},
		{"https://rpc.ankr.com/eth", nil},
		{"https://polygon-mainnet.example/ethereum-mainnet-archive", []string{"ethereum-mainnet-archive"}}, // 20+: kept to be safe
		{"::not a url", nil},
	} {
		if got := Credentials(tc.url); !slices.Equal(got, tc.want) {
			t.Errorf("Credentials(%q) = %q, want %q", tc.url, got, tc.want)
		}
	}
}

// TestDoRedactsEcho: a provider's refusal that quotes its key (in an error's message, its data, the URL it was
// sent to) reaches the caller with the key replaced, as JSON still; an answer without an error is left alone, and
// a non-2xx body is redacted too (it is logged).
func TestDoRedactsEcho(t *testing.T) {
	const key = "Zq8Xk2LmN4pR7sT1vW3yB5cD6fG9hJ0a"
	var answer atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a := answer.Load().([2]string)
		w.WriteHeader(map[string]int{"401": 401, "200": 200}[a[0]])
		_, _ = io.WriteString(w, strings.ReplaceAll(a[1], "URL", "https://"+r.Host+r.URL.String()))
	}))
	defer srv.Close()
	tg := target(srv.URL + "/v2/" + key + "?token=" + key + "x")
	tg.MaxBytes = 1 << 16
	for _, tc := range []struct {
		status, body string
		redacted     bool
	}{
		{"200", `{"jsonrpc":"2.0","id":"x","error":{"code":-32000,"message":"invalid API key ` + key + `","data":"URL"}}`, true},
		{"401", `{"error":"Unauthorized: key ` + key + ` is not valid"}`, true},
		{"200", `{"jsonrpc":"2.0","id":"x","result":"` + key + `"}`, false},
	} {
		answer.Store([2]string{tc.status, tc.body})
		r := Do(context.Background(), tg, []byte(body))
		leaked := bytes.Contains(r.Body, []byte(key))
		if leaked == tc.redacted {
			t.Errorf("%s %s: answer %s", tc.status, tc.body, r.Body)
		}
		if tc.redacted && (!bytes.Contains(r.Body, []byte(Redacted)) || !json.Valid(r.Body)) {
			t.Errorf("%s: not redacted as JSON: %s", tc.status, r.Body)
		}
	}
}

// BenchmarkRedactAnswer: what an error answer (an eth_call's revert, the common one) costs more since answers are
// searched for the URL's credentials: one provider URL with a key in its path and its query, nothing found.
func BenchmarkRedactAnswer(b *testing.B) {
	const u = "https://eth-mainnet.example/v2/Abc123def456ghi789jkl012mno345pq?apikey=Zq8Xk2LmN4pR7sT1"
	answer := []byte(`{"jsonrpc":"2.0","id":7,"error":{"code":3,"message":"execution reverted: ERC20: transfer amount exceeds balance","data":"0x08c379a00000000000000000000000000000000000000000000000000000000000000020"}}`)
	RedactAnswer(answer, u) // the URL's credentials worked out once, as on a runtime's first error answer
	b.ReportAllocs()
	for b.Loop() {
		RedactAnswer(answer, u)
	}
}
