package memplatform

import (
	"context"
	"testing"
	"time"
)

// TestEdgeCache: the platform's Cache is set; put then match is a hit with a copy; the ttl, rounded up to whole
// seconds as the hosts store it, runs on the fake clock; delete; keys the hosts refuse are errors; an ended
// context fails the operation.
func TestEdgeCache(t *testing.T) {
	h, _ := setup()
	c := h.Platform().Cache
	if c == nil {
		t.Fatal("the platform has no Cache")
	}
	ctx := context.Background()
	const key = "https://lb.example/__evmlb/cache/eth/0/k"
	if b, ok, err := c.Match(ctx, key); b != nil || ok || err != nil {
		t.Fatalf("miss: %q %v %v", b, ok, err)
	}
	body := []byte("answer")
	if err := c.Put(ctx, key, body, 1500*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	body[0] = 'X' // the cache kept its own copy
	b, ok, err := c.Match(ctx, key)
	if string(b) != "answer" || !ok || err != nil {
		t.Fatalf("hit: %q %v %v", b, ok, err)
	}
	b[0] = 'Y'
	if b, _, _ := c.Match(ctx, key); string(b) != "answer" {
		t.Fatalf("the caller changed the entry: %q", b)
	}
	h.Clock().Advance(1999 * time.Millisecond) // 1.5 s is stored as 2 s
	if _, ok, _ := c.Match(ctx, key); !ok {
		t.Fatal("expired before its ttl")
	}
	h.Clock().Advance(time.Millisecond)
	if _, ok, _ := c.Match(ctx, key); ok {
		t.Fatal("a hit after its ttl")
	}
	if err := c.Put(ctx, key, []byte("v"), time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := c.Delete(ctx, key); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := c.Match(ctx, key); ok {
		t.Fatal("a hit after delete")
	}
	if err := c.Put(ctx, key, []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := c.Match(ctx, key); ok {
		t.Fatal("a put with no ttl was stored")
	}
	for _, bad := range []string{"http://lb.example/k", "/k", "https://lb.example/k#f", "https://u@lb.example/k"} {
		if err := c.Put(ctx, bad, []byte("v"), time.Minute); err == nil {
			t.Errorf("put %q: no error", bad)
		}
		if _, ok, err := c.Match(ctx, bad); ok || err == nil {
			t.Errorf("match %q: %v %v", bad, ok, err)
		}
	}
	ended, cancel := context.WithCancel(ctx)
	cancel()
	if err := c.Put(ended, key, []byte("v"), time.Minute); err == nil {
		t.Fatal("a put with an ended context")
	}
	if st := h.Cache().Stats(); st.Entries != 0 || st.Puts != 2 {
		t.Fatalf("%+v", st)
	}
}
