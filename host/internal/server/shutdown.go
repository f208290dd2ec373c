package server

import (
	"context"
	"time"
)

// ShutdownWait is how long `evmlb serve` gives Shutdown on SIGTERM or SIGINT.
const ShutdownWait = 5 * time.Second

// Shutdown stops the host without losing the work in flight, as workerd lets a request's waitUntil work finish:
//
//  1. no new connections; the client requests in flight get their answers;
//  2. no alarm fires any more (armed ones stay stored and fire after a restart);
//  3. each Worker runtime is asked to send what it holds: the sleep operations its background work waits on
//     (the plane's report of outcomes and counts to the chain objects, a budget lease's renewal with the day's
//     count) end now, and any sleep it begins from then on ends at once (CONTRACT.md §4, sleep);
//  4. the background work and the object calls in flight (a chain object storing a report) end;
//  5. Close.
//
// ctx bounds steps 1 to 4 (serve gives ShutdownWait): what still runs then is cut, as Close cuts it. One log
// line per step.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if s.closed || s.stopping {
		s.mu.Unlock()
		return s.Close()
	}
	s.stopping = true
	servers := s.servers
	s.servers = nil
	s.mu.Unlock()
	start := time.Now()

	cut := false
	for _, hs := range servers {
		if hs.Shutdown(ctx) != nil {
			cut = true
			hs.Close()
		}
	}
	if cut {
		s.logf("shutdown: no new connections; client requests still running at the deadline are cut")
	} else {
		s.logf("shutdown: no new connections; the client requests in flight were answered (%v)", since(start))
	}

	s.stopAlarms()
	s.logf("shutdown: alarms stopped (armed ones stay stored)")

	s.sleepMu.Lock()
	s.draining = true
	sleeps := make([]*workerSleep, 0, len(s.sleeps))
	for w := range s.sleeps {
		sleeps = append(sleeps, w)
	}
	clear(s.sleeps)
	s.sleepMu.Unlock()
	for _, w := range sleeps {
		w.wake()
	}
	s.logf("shutdown: %d Worker runtimes asked to send what they hold (%d background waits ended early)", len(s.workers), len(sleeps))

	for {
		n := s.callsInFlight()
		if n == 0 {
			s.logf("shutdown: background work and object calls ended (%v)", since(start))
			break
		}
		if ctx.Err() != nil {
			s.logf("shutdown: %d calls still running at the deadline are cut", n)
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(5 * time.Millisecond):
		}
	}

	err := s.Close()
	s.logf("shutdown: runtimes stopped, state closed (%v)", since(start))
	return err
}

// callsInFlight counts the calls begun and not ended in every live runtime.
func (s *Server) callsInFlight() (n int) {
	for _, sl := range append(append([]*slot(nil), s.workers...), s.objects) {
		if rt, _ := sl.current(); rt != nil && !rt.isDead() {
			rt.mu.Lock()
			n += len(rt.calls)
			rt.mu.Unlock()
		}
	}
	return n
}

func since(t time.Time) time.Duration { return time.Since(t).Round(time.Millisecond) }

// stopAlarms stops the armed alarms' timers and arms no more.
func (s *Server) stopAlarms() {
	s.objMu.Lock()
	defer s.objMu.Unlock()
	s.alarmsOff = true
	for id, a := range s.alarms {
		a.timer.Stop()
		delete(s.alarms, id)
	}
}

// workerSleep is a Worker call's sleep operation waiting for its time.
type workerSleep struct {
	wake func() // ends it now (nothing if it already ended)
}

// workerSleep starts a Worker call's sleep of d; done completes the operation. Once Shutdown drains, it ends at
// once: the Worker's background work then sends what it holds rather than wait for a time the host will not see.
func (s *Server) workerSleep(o *op, d time.Duration, done func()) {
	s.sleepMu.Lock()
	defer s.sleepMu.Unlock()
	if s.draining {
		done()
		return
	}
	w := &workerSleep{}
	t := s.clock.AfterFunc(d, func() {
		s.forgetSleep(w)
		done()
	})
	w.wake = func() {
		if t.Stop() {
			done()
		}
	}
	s.sleeps[w] = struct{}{}
	o.cancel = func() {
		t.Stop()
		s.forgetSleep(w)
	}
}

func (s *Server) forgetSleep(w *workerSleep) {
	s.sleepMu.Lock()
	delete(s.sleeps, w)
	s.sleepMu.Unlock()
}
