package server

import (
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/evmlb/evmlb/host/internal/clock"
	"github.com/evmlb/evmlb/internal/contract"
)

// cacheOp runs one cache operation through the probe (a worker call to example.com, httptest's host) and returns
// its outcome ("hit=…", "miss", "ok", "error=…") and the runtime that made it.
func (h *testHost) cacheOp(params ...string) (string, string) {
	h.t.Helper()
	q := url.Values{}
	for i := 0; i+1 < len(params); i += 2 {
		q.Set(params[i], params[i+1])
	}
	got := h.ok("/cache?" + q.Encode())
	res, rt, ok := strings.Cut(got, " runtime=")
	if !ok {
		h.t.Fatalf("probe answered %q", got)
	}
	return res, rt
}

const testKey = "https://example.com/__evmlb/cache/eth/0/eth_getBlockByNumber/finalized/abcd"

// TestEdgeCacheOp: put, then match in another request (a hit), a miss for another key, delete; the ttl runs on
// the host's clock; a match's limit.
func TestEdgeCacheOp(t *testing.T) {
	c := clock.NewFake(time.Now())
	h := newHost(t, Options{Clock: c, WorkerRuntimes: 1})
	if res, _ := h.cacheOp("call", "match", "key", testKey); res != "miss" {
		t.Fatal(res)
	}
	if res, _ := h.cacheOp("call", "put", "key", testKey, "ttl", "60", "body", `{"number":"0x10"}`); res != "ok" {
		t.Fatal(res)
	}
	if res, _ := h.cacheOp("call", "match", "key", testKey); res != `hit={"number":"0x10"}` {
		t.Fatal(res)
	}
	if res, _ := h.cacheOp("call", "match", "key", testKey+"ef"); res != "miss" {
		t.Fatal(res)
	}
	// An entry over the match's limit is refused, not handed over.
	if res, _ := h.cacheOp("call", "match", "key", testKey, "limit", "4"); !strings.HasPrefix(res, "error=too_large ") {
		t.Fatal(res)
	}
	// An empty entry is a hit of no bytes, not a miss.
	if res, _ := h.cacheOp("call", "put", "key", testKey+"/empty", "ttl", "60", "body", ""); res != "ok" {
		t.Fatal(res)
	}
	if res, _ := h.cacheOp("call", "match", "key", testKey+"/empty"); res != "hit=" {
		t.Fatal(res)
	}
	// The ttl, on the host's clock: alive one second before, gone at it.
	c.Advance(59 * time.Second)
	if res, _ := h.cacheOp("call", "match", "key", testKey); !strings.HasPrefix(res, "hit=") {
		t.Fatal(res)
	}
	c.Advance(time.Second)
	if res, _ := h.cacheOp("call", "match", "key", testKey); res != "miss" {
		t.Fatal("after its ttl:", res)
	}
	// Delete.
	h.cacheOp("call", "put", "key", testKey, "ttl", "60", "body", "again")
	if res, _ := h.cacheOp("call", "delete", "key", testKey); res != "ok" {
		t.Fatal(res)
	}
	if res, _ := h.cacheOp("call", "match", "key", testKey); res != "miss" {
		t.Fatal("after delete:", res)
	}
	if st := h.settled(); st.EdgeEntries != 1 || st.EdgeBytes != int64(len(testKey+"/empty")) {
		t.Fatalf("%d entries, %d bytes", st.EdgeEntries, st.EdgeBytes)
	}
}

// TestEdgeCacheSharedByRuntimes: what one Worker runtime stored is a hit in another, as caches.default is one per
// data centre for every isolate.
func TestEdgeCacheSharedByRuntimes(t *testing.T) {
	h := newHost(t, Options{WorkerRuntimes: 2})
	_, putter := h.cacheOp("call", "put", "key", testKey, "ttl", "60", "body", "shared")
	for range 8 { // requests go to the least busy runtime, ties in turn: the other one comes
		res, rt := h.cacheOp("call", "match", "key", testKey)
		if res != "hit=shared" {
			t.Fatalf("runtime %s: %s", rt, res)
		}
		if rt != putter {
			return
		}
	}
	t.Fatal("every match ran on the runtime that stored the entry")
}

// TestEdgeCacheBound: the cache holds at most its bound in bytes (keys and entries), evicting the least recently
// used; an entry larger than the bound is not stored and leaves no older answer under its key; a negative bound
// stores nothing.
func TestEdgeCacheBound(t *testing.T) {
	c := clock.NewFake(time.Now())
	key := func(i int) string { return fmt.Sprintf("https://h/%d", i) } // 11 bytes
	e := newEdgeCache(c, 100)
	for i := range 4 {
		e.put(key(i), make([]byte, 14), time.Minute) // 25 bytes each: 4 fill it
	}
	if n, b := e.stats(); n != 4 || b != 100 {
		t.Fatalf("%d entries, %d bytes", n, b)
	}
	if _, ok := e.get(key(0)); !ok { // 0 is now the most recently used: 1 goes next
		t.Fatal("0 missing")
	}
	e.put(key(4), make([]byte, 14), time.Minute)
	if _, ok := e.get(key(1)); ok {
		t.Fatal("1, the least recently used, was not evicted")
	}
	for _, i := range []int{0, 2, 3, 4} {
		if _, ok := e.get(key(i)); !ok {
			t.Fatalf("%d evicted", i)
		}
	}
	if n, b := e.stats(); n != 4 || b != 100 {
		t.Fatalf("%d entries, %d bytes", n, b)
	}
	// Larger than the whole bound: not stored, and the key's older answer is gone too.
	e.put(key(2), make([]byte, 90), time.Minute)
	if _, ok := e.get(key(2)); ok {
		t.Fatal("an entry over the bound, or the older answer under its key, is served")
	}
	if _, ok := e.get(key(0)); !ok {
		t.Fatal("an entry over the bound evicted the others")
	}
	// A put that replaces its key counts its bytes once.
	e.put(key(3), make([]byte, 5), time.Minute)
	if n, b := e.stats(); n != 3 || b != 25+16+25 {
		t.Fatalf("%d entries, %d bytes", n, b)
	}
	off := newEdgeCache(c, -1)
	off.put(key(0), []byte("x"), time.Minute)
	if _, ok := off.get(key(0)); ok {
		t.Fatal("a cache with a negative bound stored an entry")
	}
	if d := newEdgeCache(c, 0); d.max != DefaultEdgeCacheBytes {
		t.Fatal(d.max)
	}
}

// TestEdgeCacheKeys: a key that is not an https URL on the request's host is refused (invalid), not a
// violation: the op was well formed.
func TestEdgeCacheKeys(t *testing.T) {
	h := newHost(t, Options{WorkerRuntimes: 1})
	for _, key := range []string{
		"http://example.com/k",       // not https
		"https://other.example/k",    // another host
		"https://example.com:8443/k", // another port
		"https://user@example.com/k", // a user
		"https://example.com/k#frag", // a fragment
		"/__evmlb/cache/k",           // not absolute
		"https:example.com/k",        // opaque
		"https://exa mple.com/k",     // not a URL
		"",                           // empty
	} {
		for _, call := range []string{contract.CacheMatch, contract.CachePut, contract.CacheDelete} {
			if res, _ := h.cacheOp("call", call, "key", key, "body", "x"); !strings.HasPrefix(res, "error=invalid message=cache: ") {
				t.Errorf("%s %q: %s", call, key, res)
			}
		}
	}
	// The host's case does not matter (URL hosts are lower-cased in workerd).
	if res, _ := h.cacheOp("call", "put", "key", "https://EXAMPLE.com/k", "body", "x"); res != "ok" {
		t.Fatal(res)
	}
	if st := h.settled(); st.EdgeEntries != 1 {
		t.Fatalf("%d entries: a refused key was stored", st.EdgeEntries)
	}
}

// TestEdgeCacheViolations: a cache message that breaks the contract (no body on a put, no key, an unknown call,
// a ttl that is not whole seconds) and a cache operation from a Durable Object are violations: logged, counted,
// the call failed.
func TestEdgeCacheViolations(t *testing.T) {
	h := newHost(t, Options{})
	for _, tc := range []struct{ path, violation string }{
		{"/cache-put-no-body", "cache: a put without a body (request GET /cache-put-no-body)"},
		{"/cache-no-key", "cache: no key (request GET /cache-no-key)"},
		{"/cache-unknown-call", `cache: unknown cache call "peek" (request GET /cache-unknown-call)`},
		{"/cache-bad-ttl", "cache: ttl is not a whole number of seconds (request GET /cache-bad-ttl)"},
		{"/do?name=a&op=cache", "cache operation from a chain call (chain object "},
	} {
		code, body := h.do("GET", tc.path, nil)
		if code != 500 || body != contract.InternalErrorBody {
			t.Errorf("%s: %d %s", tc.path, code, body)
		}
		h.expectViolation(tc.violation)
	}
}
