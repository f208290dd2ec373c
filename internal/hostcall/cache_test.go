package hostcall

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/evmlb/evmlb/internal/contract"
	"github.com/evmlb/evmlb/internal/platform"
)

// TestEncodeCacheOps: the cache operation's wire form (CONTRACT.md §4), field by field.
func TestEncodeCacheOps(t *testing.T) {
	const key = "https://lb.example/__evmlb/cache/eth/1/k"
	for _, tc := range []struct {
		op   Op
		text string
		body []byte
	}{
		{Op{ID: 3, Kind: contract.OpCache, Call: contract.CacheMatch, Key: key, Limit: 1024},
			`{"op":"cache","id":3,"call":"match","key":"` + key + `","limit":1024}`, nil},
		{Op{ID: 4, Kind: contract.OpCache, Call: contract.CachePut, Key: key, TTL: 1500 * time.Millisecond, Body: []byte("v")},
			`{"op":"cache","id":4,"call":"put","key":"` + key + `","ttl":2}`, []byte("v")},
		{Op{ID: 5, Kind: contract.OpCache, Call: contract.CachePut, Key: key, TTL: time.Millisecond, Body: []byte{}},
			`{"op":"cache","id":5,"call":"put","key":"` + key + `","ttl":1}`, []byte{}},
		{Op{ID: 6, Kind: contract.OpCache, Call: contract.CacheDelete, Key: key},
			`{"op":"cache","id":6,"call":"delete","key":"` + key + `"}`, nil},
	} {
		text, body := EncodeOp(tc.op)
		if string(text) != tc.text || !bytes.Equal(body, tc.body) || (body == nil) != (tc.body == nil) {
			t.Errorf("%s: %s %q, want %s %q", tc.op.Call, text, body, tc.text, tc.body)
		}
	}
}

// TestDecodeCacheResult: a match that hit carries a body (an empty entry is a body of no bytes); a miss none.
func TestDecodeCacheResult(t *testing.T) {
	if r := DecodeResult(contract.OpCache, `["",""]`, []byte("entry")); r.Err != "" || !r.Found || string(r.Body) != "entry" {
		t.Errorf("hit: %+v", r)
	}
	if r := DecodeResult(contract.OpCache, `["",""]`, []byte{}); !r.Found || r.Body == nil || len(r.Body) != 0 {
		t.Errorf("empty hit: %+v", r)
	}
	if r := DecodeResult(contract.OpCache, `["",""]`, nil); r.Found || r.Body != nil {
		t.Errorf("miss: %+v", r)
	}
	if r := DecodeResult(contract.OpCache, `["storage","the cache failed"]`, nil); r.Err != contract.ErrStorage || r.Found {
		t.Errorf("error: %+v", r)
	}
}

// cacheHost answers the cache operations of a call from a map, as a host would.
func cacheHost(t *testing.T, h *fakeHost, c *Call, entries map[string][]byte, stop <-chan struct{}) {
	t.Helper()
	go func() {
		for {
			select {
			case <-stop:
				return
			case op := <-h.got:
				if op.Kind != contract.OpCache {
					t.Errorf("op %+v", op)
					continue
				}
				var r Result
				switch op.Call {
				case contract.CacheMatch:
					if b, ok := entries[op.Key]; ok {
						r.Body, r.Found = b, true
					}
				case contract.CachePut:
					entries[op.Key] = op.Body
				case contract.CacheDelete:
					delete(entries, op.Key)
				}
				if err := c.Complete(op.ID, r); err != nil {
					t.Error(err)
				}
			}
		}
	}()
}

func TestEdgeCache(t *testing.T) {
	h := newFakeHost()
	c := New("", h.deliver)
	ctx := With(context.Background(), c)
	entries := map[string][]byte{}
	stop := make(chan struct{})
	defer close(stop)
	cacheHost(t, h, c, entries, stop)
	e := EdgeCache{Limit: 8}
	const key = "https://lb.example/k"
	if b, ok, err := e.Match(ctx, key); b != nil || ok || err != nil {
		t.Fatalf("miss: %q %v %v", b, ok, err)
	}
	if err := e.Put(ctx, key, []byte("answer"), time.Minute); err != nil {
		t.Fatal(err)
	}
	if b, ok, err := e.Match(ctx, key); string(b) != "answer" || !ok || err != nil {
		t.Fatalf("hit: %q %v %v", b, ok, err)
	}
	if err := e.Delete(ctx, key); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := e.Match(ctx, key); ok {
		t.Fatal("a hit after delete")
	}
	// Over the limit: not stored; and an entry over it that the host hands back anyway is a miss.
	if err := e.Put(ctx, key, []byte("123456789"), time.Minute); err != nil || entries[key] != nil {
		t.Fatalf("%v %q", err, entries[key])
	}
	entries[key] = []byte("123456789")
	if b, ok, err := e.Match(ctx, key); b != nil || ok || !errors.Is(err, platform.ErrTooLarge) {
		t.Fatalf("over the limit: %q %v %v", b, ok, err)
	}
	// No ttl: nothing stored, nothing sent.
	if err := e.Put(ctx, "https://lb.example/none", []byte("x"), 0); err != nil || entries["https://lb.example/none"] != nil {
		t.Fatal(err)
	}
	// Outside a call: an error, never a crash.
	if _, _, err := e.Match(context.Background(), key); !errors.Is(err, errNoCall) {
		t.Fatal(err)
	}
}

// TestEdgeCacheHonoursContext: a match whose context ends returns at once (a miss to the caller), and a host
// error is an error (a miss), not a hit.
func TestEdgeCacheHonoursContext(t *testing.T) {
	h := newFakeHost()
	c := New("", h.deliver)
	ctx, cancel := context.WithCancel(With(context.Background(), c))
	errc := make(chan error, 1)
	go func() {
		_, ok, err := EdgeCache{}.Match(ctx, "https://lb.example/k")
		if ok {
			err = errors.New("a hit")
		}
		errc <- err
	}()
	op := h.next(t) // the host holds the match
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("%v", err)
	}
	if err := c.Complete(op.ID, Result{Found: true, Body: []byte("late")}); err != nil {
		t.Fatal(err) // the host still answers it; nobody waits
	}

	ctx = With(context.Background(), c)
	go func() {
		_, ok, err := EdgeCache{}.Match(ctx, "https://lb.example/k")
		if ok {
			err = errors.New("a hit")
		}
		errc <- err
	}()
	op = h.next(t)
	if err := c.Complete(op.ID, Result{Err: contract.ErrStorage, Message: "the cache failed"}); err != nil {
		t.Fatal(err)
	}
	var he *Error
	if err := <-errc; !errors.As(err, &he) || he.Kind != contract.ErrStorage {
		t.Fatalf("%v", err)
	}
}

func TestTTLSeconds(t *testing.T) {
	for d, want := range map[time.Duration]int64{time.Nanosecond: 1, time.Second: 1, 1001 * time.Millisecond: 2, time.Hour: 3600} {
		if got := TTLSeconds(d); got != want {
			t.Errorf("%v: %d, want %d", d, got, want)
		}
	}
}
