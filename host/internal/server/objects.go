package server

import (
	"crypto/sha256"
	"encoding/hex"
	"sync"
	"time"

	"github.com/evmlb/evmlb/host/internal/clock"
	"github.com/evmlb/evmlb/host/internal/store"
	"github.com/evmlb/evmlb/internal/contract"
)

// IDFromName is the id of name in class: hex(sha256(class + "\x00" + name)), deterministic across restarts.
func IDFromName(class, name string) string {
	sum := sha256.Sum256([]byte(class + "\x00" + name))
	return hex.EncodeToString(sum[:])
}

// serialQueue runs functions one after another, in the order added, on a goroutine started when there is
// work. add never blocks.
type serialQueue struct {
	mu      sync.Mutex
	fns     []func()
	running bool
}

func (q *serialQueue) add(fn func()) {
	q.mu.Lock()
	q.fns = append(q.fns, fn)
	if q.running {
		q.mu.Unlock()
		return
	}
	q.running = true
	q.mu.Unlock()
	go q.run()
}

func (q *serialQueue) run() {
	for {
		q.mu.Lock()
		if len(q.fns) == 0 {
			q.running = false
			q.mu.Unlock()
			return
		}
		fn := q.fns[0]
		q.fns[0] = nil
		q.fns = q.fns[1:]
		q.mu.Unlock()
		fn()
	}
}

// storageQueue is the queue of object id's storage calls (it outlives runtime restarts).
func (s *Server) storageQueue(id string) *serialQueue {
	s.objMu.Lock()
	defer s.objMu.Unlock()
	q := s.queues[id]
	if q == nil {
		q = &serialQueue{}
		s.queues[id] = q
	}
	return q
}

// armedAlarm is an alarm waiting for its time.
type armedAlarm struct {
	alarm store.Alarm
	timer clock.Timer
}

// arm (re)schedules the alarm of a.ObjectID.
func (s *Server) arm(a store.Alarm) {
	s.objMu.Lock()
	defer s.objMu.Unlock()
	if s.alarmsOff {
		return
	}
	if old := s.alarms[a.ObjectID]; old != nil {
		old.timer.Stop()
	}
	armed := &armedAlarm{alarm: a}
	armed.timer = s.clock.AfterFunc(time.UnixMilli(a.At).Sub(s.clock.Now()), func() { s.fire(armed) })
	s.alarms[a.ObjectID] = armed
}

func (s *Server) disarm(id string) {
	s.objMu.Lock()
	defer s.objMu.Unlock()
	if a := s.alarms[id]; a != nil {
		a.timer.Stop()
		delete(s.alarms, id)
	}
}

// armPersisted arms the alarms found in the store.
func (s *Server) armPersisted() error {
	alarms, err := s.db.Alarms()
	if err != nil {
		return err
	}
	for _, a := range alarms {
		s.arm(a)
	}
	return nil
}

// fire runs an alarm whose time came: the host deletes it, then begins an alarm call (CONTRACT.md §4).
func (s *Server) fire(armed *armedAlarm) {
	a := armed.alarm
	s.objMu.Lock()
	if s.alarms[a.ObjectID] != armed || s.alarmsOff {
		s.objMu.Unlock()
		return
	}
	delete(s.alarms, a.ObjectID)
	s.objMu.Unlock()
	s.storageQueue(a.ObjectID).add(func() {
		if err := s.db.DeleteAlarm(a.ObjectID); err != nil {
			s.logf("alarm of %s %s: %v", a.Role, a.ObjectID[:12], err)
		}
		s.beginAlarm(a)
	})
}

func (s *Server) beginAlarm(a store.Alarm) {
	rt, err := s.objects.get()
	if err != nil {
		s.alarmFailed(a, err.Error())
		return
	}
	s.objects.served.Add(1)
	inst := rt.instance(a.Role, a.ObjectID)
	c := s.newCall(rt, inst.x, contract.CallAlarm, inst.role)
	c.object, c.instance, c.what = inst.id, inst.token, "alarm of "+inst.role+" object "+inst.id[:12]
	c.onEnd = func() {
		if c.alarmErr != "" {
			s.alarmFailed(a, c.alarmErr)
		}
	}
	rt.beginCall(c, callMeta(contract.CallAlarm, inst.role, inst.id, inst.token, "", "", false, a.Retry, nil), nil)
}

// alarmFailed retries a failed alarm with exponential back-off (2 s, 4 s, …) at most AlarmMaxRetries times,
// unless Go has set a new alarm meanwhile. Retries are persisted like alarms, so they survive a restart.
func (s *Server) alarmFailed(a store.Alarm, why string) {
	s.objMu.Lock()
	_, reset := s.alarms[a.ObjectID]
	off := s.alarmsOff
	s.objMu.Unlock()
	if off {
		return
	}
	if reset || a.Retry >= contract.AlarmMaxRetries {
		s.logf("alarm of %s %s failed: %s", a.Role, a.ObjectID[:12], why)
		return
	}
	next := store.Alarm{ObjectID: a.ObjectID, Role: a.Role, Retry: a.Retry + 1,
		At: s.clock.Now().Add(contract.AlarmBackoff(a.Retry)).UnixMilli()}
	s.storageQueue(a.ObjectID).add(func() {
		if err := s.db.SetAlarm(next); err != nil {
			s.logf("alarm of %s %s: %v", a.Role, a.ObjectID[:12], err)
		}
		s.arm(next)
	})
}
