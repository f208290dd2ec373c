package cache

import (
	"container/list"
	"sync"
	"time"
)

// entryOverhead is what an entry costs beyond its key's and its answer's bytes (the map slot, the list element,
// the entry itself), counted in Memory's bound.
const entryOverhead = 160

// Memory is the isolate's memory tier: an LRU of answers bounded in bytes (keys and answers and a fixed overhead
// per entry). A wasm program's memory never shrinks and an isolate has 128 MB, so the bound is a global setting
// (EVMLB_CACHE_MEMORY_BYTES) and no single answer may take more than an eighth of it. Entries expire by their
// TTL on the caller's clock. Safe for concurrent use.
type Memory struct {
	mu      sync.Mutex
	max     int64
	held    int64
	byChain map[string]int64
	entries map[string]*list.Element
	lru     list.List // front: most recently used
}

type entry struct {
	key     string
	chain   string
	body    []byte
	expires time.Time
	size    int64
}

// NewMemory makes a memory tier holding at most max bytes.
func NewMemory(max int64) *Memory {
	return &Memory{max: max, entries: map[string]*list.Element{}, byChain: map[string]int64{}}
}

// Max is the tier's bound in bytes.
func (m *Memory) Max() int64 { return m.max }

// Limit is the largest entry (key and answer) the tier takes: an eighth of its bound.
func (m *Memory) Limit() int64 { return m.max / 8 }

// Get is the answer kept under key, if it has not expired at now.
func (m *Memory) Get(key string, now time.Time) ([]byte, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	el := m.entries[key]
	if el == nil {
		return nil, false
	}
	e := el.Value.(*entry)
	if !now.Before(e.expires) {
		m.remove(el)
		return nil, false
	}
	m.lru.MoveToFront(el)
	return e.body, true
}

// Put keeps body under key (of chain) until now+ttl, evicting the least recently used entries past the bound. An
// entry over Limit is not kept. body must not be changed afterwards.
func (m *Memory) Put(chain, key string, body []byte, now time.Time, ttl time.Duration) bool {
	size := int64(len(key)+len(body)) + entryOverhead
	if size > m.Limit() || ttl <= 0 {
		return false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if el := m.entries[key]; el != nil {
		m.remove(el)
	}
	for m.held+size > m.max && m.lru.Len() > 0 {
		m.remove(m.lru.Back())
	}
	e := &entry{key: key, chain: chain, body: body, expires: now.Add(ttl), size: size}
	m.entries[key] = m.lru.PushFront(e)
	m.held += size
	m.byChain[chain] += size
	return true
}

func (m *Memory) remove(el *list.Element) {
	e := el.Value.(*entry)
	m.lru.Remove(el)
	delete(m.entries, e.key)
	m.held -= e.size
	if m.byChain[e.chain] -= e.size; m.byChain[e.chain] == 0 {
		delete(m.byChain, e.chain)
	}
}

// Purge drops every entry of chain ("" for all).
func (m *Memory) Purge(chain string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for el := m.lru.Front(); el != nil; {
		next := el.Next()
		if e := el.Value.(*entry); chain == "" || e.chain == chain {
			m.remove(el)
		}
		el = next
	}
}

// Held is the bytes the tier holds now (Limit's measure), and its entries.
func (m *Memory) Held() (bytes int64, entries int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.held, m.lru.Len()
}

// HeldBy is the bytes the tier holds for chain's answers.
func (m *Memory) HeldBy(chain string) int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.byChain[chain]
}
