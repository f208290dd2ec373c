package cache

import (
	"context"
	"sync"
)

// Flights is a group of calls in flight by key: the first caller of a key leads (it makes the upstream attempt),
// the callers that join while it is in flight wait for its result, each in its own context. The zero value is
// ready to use; safe for concurrent use.
type Flights[T any] struct {
	mu sync.Mutex
	m  map[string]*Flight[T]
}

// Flight is one call in flight.
type Flight[T any] struct {
	done    chan struct{}
	val     T
	waiters int
}

// Join returns the flight of key and whether the caller leads it. A leader must call Finish, whatever happens.
func (f *Flights[T]) Join(key string) (*Flight[T], bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if fl := f.m[key]; fl != nil {
		fl.waiters++
		return fl, false
	}
	if f.m == nil {
		f.m = map[string]*Flight[T]{}
	}
	fl := &Flight[T]{done: make(chan struct{})}
	f.m[key] = fl
	return fl, true
}

// Finish ends the leader's flight of key with val: its waiters get val, and the next caller of key leads a new
// flight. It returns how many waiters joined.
func (f *Flights[T]) Finish(key string, fl *Flight[T], val T) int {
	f.mu.Lock()
	if f.m[key] == fl {
		delete(f.m, key)
	}
	n := fl.waiters
	f.mu.Unlock()
	fl.val = val
	close(fl.done)
	return n
}

// Wait waits for the leader's result; false when ctx ended first (the caller stops waiting: it answers its own
// timeout or goes away, and the leader goes on for the others).
func (fl *Flight[T]) Wait(ctx context.Context) (T, bool) {
	select {
	case <-fl.done:
		return fl.val, true
	case <-ctx.Done():
		var zero T
		return zero, false
	}
}

// Waiting is the number of callers that joined the flights in the air (those that stopped waiting included).
func (f *Flights[T]) Waiting() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, fl := range f.m {
		n += fl.waiters
	}
	return n
}
