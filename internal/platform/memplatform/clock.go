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

	mu        sync.Mutex
	now       time.Time
	timers    []timer
	deadlines map[*deadlineCtx]struct{} // WithTimeout's contexts not yet ended
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

// fireTimers closes the channels of the timers that are due and ends the WithTimeout contexts that are.
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
	var due []*deadlineCtx
	for d := range c.deadlines {
		if !d.deadline.After(c.now) {
			due = append(due, d)
			delete(c.deadlines, d)
		}
	}
	c.mu.Unlock()
	for _, d := range due {
		d.end(context.DeadlineExceeded)
	}
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
		if err := c.host.bound().Alarm(withObject(context.Background(), id), role, id, retry); err != nil && retry < contract.AlarmMaxRetries {
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

// WithTimeout is platform.Platform.WithTimeout on the fake clock: the context's deadline is the clock's time plus
// d (or its parent's, when earlier), and it ends with context.DeadlineExceeded once the clock is advanced to it,
// as the rest of the host's time does. It ends with its parent too, and with context.Canceled on cancel.
func (c *Clock) WithTimeout(parent context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	dl := c.Now().Add(d)
	if pd, ok := parent.Deadline(); ok && pd.Before(dl) {
		dl = pd
	}
	ctx := &deadlineCtx{Context: parent, deadline: dl, done: make(chan struct{})}
	stop := context.AfterFunc(parent, func() { ctx.end(parent.Err()) })
	c.mu.Lock()
	if c.deadlines == nil {
		c.deadlines = map[*deadlineCtx]struct{}{}
	}
	c.deadlines[ctx] = struct{}{}
	c.mu.Unlock()
	c.fireTimers() // d <= 0: due now
	return ctx, func() {
		stop()
		c.mu.Lock()
		delete(c.deadlines, ctx)
		c.mu.Unlock()
		ctx.end(context.Canceled)
	}
}

// deadlineCtx is a context whose deadline is on the fake clock. It has its own Done channel, so that contexts
// derived from it see its own Err (context.DeadlineExceeded), not its parent's.
type deadlineCtx struct {
	context.Context // the parent: values
	deadline        time.Time
	done            chan struct{}

	mu  sync.Mutex
	err error
}

func (c *deadlineCtx) Deadline() (time.Time, bool) { return c.deadline, true }
func (c *deadlineCtx) Done() <-chan struct{}       { return c.done }

func (c *deadlineCtx) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

func (c *deadlineCtx) end(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err == nil {
		c.err = err
		close(c.done)
	}
}

// realDeadline hides a context's deadline from the real network stack (a dialer would take the fake clock's time
// for the real one); its cancellation, and so the fake deadline's end, still reaches the request.
type realDeadline struct{ context.Context }

func (realDeadline) Deadline() (time.Time, bool) { return time.Time{}, false }
