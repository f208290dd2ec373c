package server

import (
	"container/list"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/evmlb/evmlb/host/internal/clock"
	"github.com/evmlb/evmlb/internal/contract"
)

// DefaultEdgeCacheBytes is the default bound of the answer cache the host gives its Worker runtimes
// (Options.EdgeCacheBytes, serve's -edge-cache-mb).
const DefaultEdgeCacheBytes = 64 << 20

// edgeCache is the host's answer cache, what caches.default is in workerd (one per data centre): one for all the
// Worker runtimes of the host, so that an answer one runtime stored is a hit in every other. It holds at most max
// bytes of keys and entries, evicting the least recently used; an entry expires ttl seconds after its put, on the
// host's clock. An entry larger than max is not stored. Safe for concurrent use: each call's handler performs
// its cache operations itself, in its own goroutine.
type edgeCache struct {
	clock clock.Clock
	max   int64 // < 0: nothing is stored

	mu    sync.Mutex
	used  int64
	lru   list.List // of *edgeEntry, the most recently used first
	byKey map[string]*list.Element
}

type edgeEntry struct {
	key     string
	body    []byte
	expires time.Time
}

func (e *edgeEntry) size() int64 { return int64(len(e.key) + len(e.body)) }

// newEdgeCache makes the cache: bound 0 is DefaultEdgeCacheBytes, a negative bound stores nothing.
func newEdgeCache(c clock.Clock, bound int64) *edgeCache {
	if bound == 0 {
		bound = DefaultEdgeCacheBytes
	}
	return &edgeCache{clock: c, max: bound, byKey: map[string]*list.Element{}}
}

// op performs a cache operation of a worker call whose request came to host (CONTRACT.md §4).
func (e *edgeCache) op(host string, m *message) result {
	if why := keyProblem(host, m.key); why != "" {
		return errResult(contract.ErrInvalid, "cache: "+why)
	}
	switch m.call {
	case contract.CacheMatch:
		body, ok := e.get(m.key)
		if !ok {
			return result{}
		}
		if m.limit > 0 && float64(len(body)) > m.limit {
			return errResult(contract.ErrTooLarge, fmt.Sprintf("the entry is longer than %.0f bytes", m.limit))
		}
		return result{hit: true, body: body}
	case contract.CachePut:
		e.put(m.key, m.body, time.Duration(m.ttl)*time.Second)
	case contract.CacheDelete:
		e.remove(m.key)
	}
	return result{}
}

// keyProblem says why key cannot be a cache key of a request to host ("" when it can): it must be an absolute
// https URL on that host (as workerd's URL compares hosts: case aside), with no user and no fragment.
func keyProblem(host, key string) string {
	u, err := url.Parse(key)
	switch {
	case err != nil || !u.IsAbs() || u.Opaque != "":
		return "the key is not an absolute URL"
	case u.Scheme != "https" || host == "" || !strings.EqualFold(u.Host, host) || u.User != nil || strings.Contains(key, "#"):
		return "the key is not an https URL on the Worker's host"
	}
	return ""
}

// get returns the live entry of key and marks it used; an expired one is dropped.
func (e *edgeCache) get(key string) ([]byte, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	el, ok := e.byKey[key]
	if !ok {
		return nil, false
	}
	ent := el.Value.(*edgeEntry)
	if !e.clock.Now().Before(ent.expires) {
		e.drop(el)
		return nil, false
	}
	e.lru.MoveToFront(el)
	return ent.body, true
}

// put stores body under key for ttl, replacing what key held, evicting the least recently used entries until it
// fits (an expired entry goes when it is read, or in its turn: no sweep costs a put the whole list). An entry larger than the bound is not stored, and what key held is dropped: a put
// never leaves an older answer in its place.
func (e *edgeCache) put(key string, body []byte, ttl time.Duration) {
	ent := &edgeEntry{key: key, body: body, expires: e.clock.Now().Add(ttl)}
	e.mu.Lock()
	defer e.mu.Unlock()
	if el, ok := e.byKey[key]; ok {
		e.drop(el)
	}
	if ent.size() > e.max {
		return
	}
	for e.used+ent.size() > e.max {
		e.drop(e.lru.Back())
	}
	e.byKey[key] = e.lru.PushFront(ent)
	e.used += ent.size()
}

func (e *edgeCache) remove(key string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if el, ok := e.byKey[key]; ok {
		e.drop(el)
	}
}

// drop removes an entry; e.mu is held.
func (e *edgeCache) drop(el *list.Element) {
	ent := e.lru.Remove(el).(*edgeEntry)
	delete(e.byKey, ent.key)
	e.used -= ent.size()
}

// stats are the cache's entries and the bytes they hold.
func (e *edgeCache) stats() (entries int, bytes int64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.lru.Len(), e.used
}
