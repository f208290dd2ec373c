package memplatform

import (
	"context"
	"sync"
	"time"

	"github.com/evmlb/evmlb/internal/contract"
)

// Clock is a fake clock. Advance moves it forward and fires the alarms that come due, in time order, each with
// the clock set to its time; an alarm that fails is retried as the contract says (back-off from 2 s, at most 6
// retries).
type Clock struct {
	host *Host
	// fire serialises Advance calls.
	fire sync.Mutex

	mu     sync.Mutex
	now    time.Time
	timers []timer
}

// timer is a pending After of the platform: ch is closed once the clock reaches at.
type timer struct {
	at         time.Time
	ch         chan struct{}
	background bool // made by background work: Host.Wait does not wait for it
}

// After returns a channel closed once the clock has been advanced by d (platform.Platform.After): hedges, waits
// and flushes run on the fake clock in tests, as alarms do.
func (c *Clock) After(ctx context.Context, d time.Duration) <-chan struct{} {
	ch := make(chan struct{})
	bg := ctx.Value(backgroundKey{}) != nil
	if bg {
		c.host.sleeping(1)
	}
	c.mu.Lock()
	c.timers = append(c.timers, timer{at: c.now.Add(d), ch: ch, background: bg})
	c.mu.Unlock()
	if d <= 0 {
		c.fireTimers()
	}
	return ch
}

// fireTimers closes the channels of the timers that are due.
func (c *Clock) fireTimers() {
	c.mu.Lock()
	keep := c.timers[:0]
	woken := 0
	for _, t := range c.timers {
		if t.at.After(c.now) {
			keep = append(keep, t)
			continue
		}
		close(t.ch)
		if t.background {
			woken++
		}
	}
	c.timers = keep
	c.mu.Unlock()
	if woken > 0 {
		c.host.sleeping(-woken)
	}
}

// Timers is the number of pending timers (a test can wait for a request to start waiting on one).
func (c *Clock) Timers() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.timers)
}

// Now is the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *Clock) set(t time.Time) {
	c.mu.Lock()
	if t.After(c.now) {
		c.now = t
	}
	c.mu.Unlock()
	c.fireTimers()
}

// Advance moves the clock by d (0: fire what is due now) and runs the alarms due on the way.
func (c *Clock) Advance(d time.Duration) {
	c.fire.Lock()
	defer c.fire.Unlock()
	end := c.Now().Add(d)
	for {
		id, s, at := c.host.nextAlarm(end)
		if s == nil {
			break
		}
		c.set(at)
		s.mu.Lock()
		retry := s.retries
		s.alarm, s.retries = time.Time{}, 0 // the host deletes the alarm before the call
		s.mu.Unlock()
		role := c.host.role(id)
		if err := c.host.bound().Alarm(context.Background(), role, id, retry); err != nil && retry < contract.AlarmMaxRetries {
			s.mu.Lock()
			if s.alarm.IsZero() {
				s.alarm = at.Add(contract.AlarmBackoff(retry))
				s.retries = retry + 1
			}
			s.mu.Unlock()
		}
	}
	c.set(end)
}

// nextAlarm finds the earliest alarm at or before end.
func (h *Host) nextAlarm(end time.Time) (id string, s *Storage, at time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for oid, in := range h.instances {
		in.storage.mu.Lock()
		a := in.storage.alarm
		in.storage.mu.Unlock()
		if !a.IsZero() && !a.After(end) && (s == nil || a.Before(at) || a.Equal(at) && oid < id) {
			id, s, at = oid, in.storage, a
		}
	}
	return id, s, at
}

func (h *Host) role(objectID string) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.instances[objectID].role
}
