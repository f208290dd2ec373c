package memplatform

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/evmlb/evmlb/internal/platform"
)

// EdgeCache is the host's answer cache (platform.EdgeCache: caches.default in workerd) in memory, every entry
// expiring on the host's fake clock. Like the real hosts it copies what crosses, refuses a key that is not an
// absolute https URL (an error: a miss to the caller), and fails an operation whose context has ended.
type EdgeCache struct {
	clock *Clock

	mu                  sync.Mutex
	entries             map[string]edgeEntry
	matches, hits, puts int
}

type edgeEntry struct {
	body    []byte
	expires time.Time
}

var _ platform.EdgeCache = (*EdgeCache)(nil)

// errKey is the error for a key the real hosts refuse (contract.ErrInvalid there).
var errKey = errors.New("memplatform: the cache key is not an absolute https URL")

func cacheKeyOK(key string) bool {
	u, err := url.Parse(key)
	return err == nil && u.Scheme == "https" && u.Host != "" && u.Opaque == "" && u.User == nil && !strings.Contains(key, "#")
}

// Match returns the live entry of key; (nil, false, nil) on a miss.
func (c *EdgeCache) Match(ctx context.Context, key string) ([]byte, bool, error) {
	if err := ctx.Err(); err != nil {
		return nil, false, err
	}
	if !cacheKeyOK(key) {
		return nil, false, errKey
	}
	now := c.clock.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.matches++
	e, ok := c.entries[key]
	if !ok {
		return nil, false, nil
	}
	if !now.Before(e.expires) {
		delete(c.entries, key)
		return nil, false, nil
	}
	c.hits++
	return append([]byte{}, e.body...), true, nil
}

// Put stores a copy of body under key for ttl (rounded up to whole seconds, as the hosts store it); a ttl of
// zero or less stores nothing.
func (c *EdgeCache) Put(ctx context.Context, key string, body []byte, ttl time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if !cacheKeyOK(key) {
		return errKey
	}
	if ttl <= 0 {
		return nil
	}
	ttl = (ttl + time.Second - 1) / time.Second * time.Second
	expires := c.clock.Now().Add(ttl)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.puts++
	if c.entries == nil {
		c.entries = map[string]edgeEntry{}
	}
	c.entries[key] = edgeEntry{body: append([]byte{}, body...), expires: expires}
	return nil
}

// Delete removes the entry of key.
func (c *EdgeCache) Delete(ctx context.Context, key string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if !cacheKeyOK(key) {
		return errKey
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.entries, key)
	return nil
}

// EdgeCacheStats are a test's view of the cache: operations so far and entries held (expired ones included
// until they are read).
type EdgeCacheStats struct{ Matches, Hits, Puts, Entries int }

// Stats reports the cache's counts.
func (c *EdgeCache) Stats() EdgeCacheStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return EdgeCacheStats{Matches: c.matches, Hits: c.hits, Puts: c.puts, Entries: len(c.entries)}
}

// Clear empties the cache, as a new data centre would be.
func (c *EdgeCache) Clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.entries = nil
}
