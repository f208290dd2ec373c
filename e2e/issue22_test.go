package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/evmlb/evmlb/e2e/internal/rpc"
	"github.com/evmlb/evmlb/e2e/internal/target"
)

func TestLimitJudge(t *testing.T) {
	_, data := echoCall(7)
	ok := `{"jsonrpc":"2.0","id":7,"result":"` + data + `"}`
	limited := `{"jsonrpc":"2.0","id":7,"error":{"code":-32005,"message":"limit exceeded: this key's requests per second"}}`
	hdr := func(ra string) http.Header {
		h := http.Header{}
		if ra != "" {
			h.Set("Retry-After", ra)
		}
		return h
	}
	for _, c := range []struct {
		name              string
		status            int
		ra, body          string
		accepted, refused bool
	}{
		{"accepted", 200, "", ok, true, false},
		{"refused", 429, "1", limited, false, true},
		{"refused, Retry-After 3", 429, "3", limited, false, true},
		{"429 without Retry-After", 429, "", limited, false, false},
		{"429 with Retry-After 0", 429, "0", limited, false, false},
		{"429 with Retry-After as a date", 429, "Wed, 21 Oct 2015 07:28:00 GMT", limited, false, false},
		{"429 of another code", 429, "1", strings.Replace(limited, "-32005", "-32070", 1), false, false},
		{"-32005 with 200", 200, "1", limited, false, false},
		{"another call's result", 200, "", strings.Replace(ok, data, "0x00", 1), false, false},
		{"another id", 200, "", strings.Replace(ok, `"id":7`, `"id":8`, 1), false, false},
		{"503", 503, "", `{"jsonrpc":"2.0","id":7,"error":{"code":-32070,"message":"no upstream"}}`, false, false},
		{"not JSON", 200, "", "<html>", false, false},
	} {
		v := judge(&rpc.Response{Status: c.status, Header: hdr(c.ra), Body: []byte(c.body)}, nil, 7, data)
		if v.accepted != c.accepted || v.refused != c.refused || (v.problem == "") != (c.accepted || c.refused) {
			t.Errorf("%s: %+v", c.name, v)
		}
	} // wrangler dev's own 503 when it restarts its runtime mid-request: neither, and no problem of the balancer's;
	// the same text under another status, or a JSON-RPC 503, is a problem.
	reload := "Your worker restarted mid-request. Please try sending the request again. Only GET or HEAD requests are retried automatically."
	if v := judge(&rpc.Response{Status: 503, Header: hdr(""), Body: []byte(reload)}, nil, 7, data); !v.devReload || v.problem != "" || v.accepted || v.refused {
		t.Errorf("wrangler dev's restart: %+v", v)
	}
	if v := judge(&rpc.Response{Status: 200, Header: hdr(""), Body: []byte(reload)}, nil, 7, data); v.devReload || v.problem == "" {
		t.Errorf("the restart text with 200: %+v", v)
	}
}

// keyedStandIn answers as a balancer with two keys, "evmlb_a" and "evmlb_b" (Bearer), each limited to 50 req/s with
// a burst of 10 by a token bucket, echoing the identity precompile's answer; retryAfter is its Retry-After.
func keyedStandIn(retryAfter string) http.Handler {
	type bucket struct {
		tokens float64
		last   time.Time
	}
	var mu sync.Mutex
	buckets := map[string]*bucket{}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			ID     json.RawMessage   `json:"id"`
			Params []json.RawMessage `json:"params"`
		}
		b, _ := io.ReadAll(r.Body)
		_ = json.Unmarshal(b, &req)
		key := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		if key != "evmlb_a" && key != "evmlb_b" {
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = io.WriteString(w, `{"jsonrpc":"2.0","id":`+string(req.ID)+`,"error":{"code":-32064,"message":"unauthorized"}}`)
			return
		}
		mu.Lock()
		bk := buckets[key]
		now := time.Now()
		if bk == nil {
			bk = &bucket{tokens: 10, last: now}
			buckets[key] = bk
		}
		bk.tokens = min(10, bk.tokens+50*now.Sub(bk.last).Seconds())
		bk.last = now
		take := bk.tokens >= 1
		if take {
			bk.tokens--
		}
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if !take {
			if retryAfter != "" {
				w.Header().Set("Retry-After", retryAfter)
			}
			w.WriteHeader(http.StatusTooManyRequests)
			_, _ = io.WriteString(w, `{"jsonrpc":"2.0","id":`+string(req.ID)+`,"error":{"code":-32005,"message":"limit exceeded"}}`)
			return
		}
		var call struct {
			Data string `json:"data"`
		}
		if len(req.Params) > 0 {
			_ = json.Unmarshal(req.Params[0], &call)
		}
		_, _ = io.WriteString(w, `{"jsonrpc":"2.0","id":`+string(req.ID)+`,"result":"`+call.Data+`"}`)
	})
}

// The load of client-key-limit against a stand-in that keeps the limits: its schedule offers what it says, the
// tally counts per second, and the row's bounds hold; the same stand-in without Retry-After makes every refusal a
// problem.
func TestLimitLoadPlumbing(t *testing.T) {
	s := newS(t, wazeroHost)
	srv := httptest.NewServer(keyedStandIn("1"))
	defer srv.Close()
	b := &Balancer{s: s, Inst: &target.Instance{URL: srv.URL, Host: "stand-in"}}
	const d = 5 * time.Second
	auth := func(k string) map[string]string { return map[string]string{"Authorization": "Bearer " + k} }
	tallies := b.offerLoad(d, []stream{
		{name: "key a", rate: 200, path: "/ethereum", header: auth("evmlb_a"), conns: 8},
		{name: "key b", rate: 40, path: "/ethereum", header: auth("evmlb_b"), conns: 4},
	}, nil)
	ta, tb := tallies[0], tallies[1]
	t.Logf("%s\n%s\nper second %v %v", ta.figures(d), tb.figures(d), ta.accepted, ta.refused)
	if ta.offered != 1000 || tb.offered != 200 {
		t.Errorf("offered %d and %d, want 1000 and 200", ta.offered, tb.offered)
	}
	if rate := float64(sum(ta.accepted)) / ta.elapsed.Seconds(); rate < 45 || rate > 55 {
		t.Errorf("key a: %.1f req/s accepted by a 50 req/s bucket", rate)
	}
	if sum(ta.accepted)+sum(ta.refused) != ta.offered || ta.nProblems != 0 || ta.retryAfter[1] != sum(ta.refused) {
		t.Errorf("key a: %d accepted, %d refused, %d problems %v, Retry-After %v", sum(ta.accepted), sum(ta.refused), ta.nProblems, ta.problems, ta.retryAfter)
	}
	if sum(tb.refused) != 0 || sum(tb.accepted) != tb.offered {
		t.Errorf("key b at 40 req/s: %d refused", sum(tb.refused))
	}
	if lo, hi := spread(ta.accepted[:int(ta.elapsed/time.Second)]); lo < 40 || hi > 70 {
		t.Errorf("key a per second %v: the schedule or the tally is off", ta.accepted)
	}

	noRA := httptest.NewServer(keyedStandIn(""))
	defer noRA.Close()
	b = &Balancer{s: s, Inst: &target.Instance{URL: noRA.URL, Host: "stand-in"}}
	ta = b.offerLoad(2*time.Second, []stream{{name: "key a", rate: 100, path: "/ethereum", header: auth("evmlb_a"), conns: 4}}, nil)[0]
	if ta.nProblems == 0 || sum(ta.refused) != 0 || !strings.Contains(strings.Join(ta.problems, " "), "Retry-After") {
		t.Errorf("429 without Retry-After: %d problems %v, %d refused", ta.nProblems, ta.problems, sum(ta.refused))
	}
}
