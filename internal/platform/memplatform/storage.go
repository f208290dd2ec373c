package memplatform

import (
	"context"
	"fmt"
	"maps"
	"strings"
	"sync"
	"time"

	"github.com/evmlb/evmlb/internal/contract"
	"github.com/evmlb/evmlb/internal/platform"
)

// Storage is one instance's in-memory storage and alarm.
type Storage struct {
	host *Host
	id   string

	mu      sync.Mutex
	kv      map[string]string
	alarm   time.Time // zero: none
	retries int       // retry count of the pending alarm
	failPut bool      // FailPuts: every Put fails
}

// FailPuts makes every Put fail (true) until called with false: a storage that cannot write.
func (s *Storage) FailPuts(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failPut = on
}

var _ platform.Storage = (*Storage)(nil)

func newStorage(h *Host, id string) *Storage {
	return &Storage{host: h, id: id, kv: map[string]string{}}
}

func (s *Storage) Get(_ context.Context, key string) (string, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.kv[key]
	return v, ok, nil
}

// Put and Delete enforce contract.MaxKeys, as the hosts do, to catch misuse.
func (s *Storage) Put(_ context.Context, entries map[string]string) error {
	if len(entries) > contract.MaxKeys {
		return fmt.Errorf("put of %d keys, at most %d", len(entries), contract.MaxKeys)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failPut {
		return fmt.Errorf("storage: put failed (FailPuts)")
	}
	maps.Copy(s.kv, entries)
	return nil
}

func (s *Storage) Delete(_ context.Context, keys ...string) error {
	if len(keys) > contract.MaxKeys {
		return fmt.Errorf("delete of %d keys, at most %d", len(keys), contract.MaxKeys)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, k := range keys {
		delete(s.kv, k)
	}
	return nil
}

func (s *Storage) List(_ context.Context, prefix string) (map[string]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]string{}
	for k, v := range s.kv {
		if strings.HasPrefix(k, prefix) {
			out[k] = v
		}
	}
	return out, nil
}

func (s *Storage) DeleteAll(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.kv = map[string]string{}
	return nil
}

func (s *Storage) GetAlarm(context.Context) (time.Time, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.alarm, !s.alarm.IsZero(), nil
}

func (s *Storage) SetAlarm(_ context.Context, at time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.alarm, s.retries = at, 0
	return nil
}

func (s *Storage) DeleteAlarm(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.alarm, s.retries = time.Time{}, 0
	return nil
}

// Keys returns a copy of the stored entries (for tests).
func (s *Storage) Keys() map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.kv)
}
