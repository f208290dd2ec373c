package jsworld

import "sync"

// serial runs functions one after another on its own goroutine, in the order given. Storage calls go through
// it, so the calls of an instance apply in the order Go made them. add never blocks.
type serial struct {
	mu     sync.Mutex
	cond   *sync.Cond
	queue  []func()
	closed bool
}

func newSerial() *serial {
	s := &serial{}
	s.cond = sync.NewCond(&s.mu)
	go s.run()
	return s
}

func (s *serial) add(fn func()) {
	s.mu.Lock()
	s.queue = append(s.queue, fn)
	s.mu.Unlock()
	s.cond.Signal()
}

func (s *serial) run() {
	for {
		s.mu.Lock()
		for len(s.queue) == 0 && !s.closed {
			s.cond.Wait()
		}
		if len(s.queue) == 0 {
			s.mu.Unlock()
			return
		}
		fn := s.queue[0]
		s.queue[0] = nil
		s.queue = s.queue[1:]
		s.mu.Unlock()
		fn()
	}
}

// close lets the goroutine exit once the queue is empty.
func (s *serial) close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.cond.Signal()
}
