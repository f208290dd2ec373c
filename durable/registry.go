package durable

import "sync"

// registry keeps the live objects of one class by object id. One Go runtime serves every instance of its isolate,
// so objects are looked up per call; a new instance token means the host re-created the instance, and its
// object starts afresh from storage.
type registry[T any] struct {
	mu    sync.Mutex
	slots map[string]slot[T]
	make  func(objectID string) *T
}

type slot[T any] struct {
	instance string
	obj      *T
}

func newRegistry[T any](make func(objectID string) *T) *registry[T] {
	return &registry[T]{slots: map[string]slot[T]{}, make: make}
}

// get returns the object for objectID. An empty instance (an alarm, which carries none) reuses any live object.
func (r *registry[T]) get(objectID, instance string) *T {
	r.mu.Lock()
	defer r.mu.Unlock()
	s, ok := r.slots[objectID]
	if !ok || (instance != "" && instance != s.instance) {
		s = slot[T]{instance: instance, obj: r.make(objectID)}
		r.slots[objectID] = s
	}
	return s.obj
}

// forget drops the object, so that the next call starts afresh from storage.
func (r *registry[T]) forget(objectID string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.slots, objectID)
}
