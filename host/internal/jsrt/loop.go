package jsrt

import (
	"container/heap"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/evmlb/evmlb/host/internal/clock"
)

// Loop is an event loop: one goroutine (the one in Run) owns the realm and everything in it. Other goroutines
// hand it work with Post. After each task the microtask queue is drained, as in JavaScript.
type Loop struct {
	clock  clock.Clock
	mu     sync.Mutex
	posted []func()
	closed bool
	wake   chan struct{}
	done   chan struct{}

	micro  []func()
	timers timerHeap
	byID   map[int]*timer
	nextID int
	stop   bool
	rest   int // tasks of the batch being run still to run after the current one

	// OnPanic is called (on the loop) when a task panics; the loop stops afterwards. Nil re-panics.
	OnPanic func(v any)
}

// NewLoop returns a loop whose timers run on c (nil: the real clock); start it with Run.
func NewLoop(c clock.Clock) *Loop {
	return &Loop{clock: clock.Or(c), wake: make(chan struct{}, 1), done: make(chan struct{}), byID: map[int]*timer{}}
}

// Now is the loop's clock's time (Date reads it).
func (l *Loop) Now() time.Time { return l.clock.Now() }

// poke wakes Run; a wake-up that finds nothing due costs one turn.
func (l *Loop) poke() {
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// Post queues fn to run on the loop. It never blocks; false means the loop has stopped and fn will not run.
func (l *Loop) Post(fn func()) bool {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return false
	}
	l.posted = append(l.posted, fn)
	l.mu.Unlock()
	l.poke()
	return true
}

// Microtask queues fn to run before the next task. Loop goroutine only.
func (l *Loop) Microtask(fn func()) { l.micro = append(l.micro, fn) }

// SetTimeout runs fn after d; the id cancels it with ClearTimeout. Loop goroutine only.
func (l *Loop) SetTimeout(d time.Duration, fn func()) int {
	l.nextID++
	t := &timer{id: l.nextID, when: l.clock.Now().Add(d), fn: fn}
	l.byID[t.id] = t
	heap.Push(&l.timers, t)
	return t.id
}

// ClearTimeout cancels a timer; unknown ids are ignored. Loop goroutine only.
func (l *Loop) ClearTimeout(id int) {
	if t, ok := l.byID[id]; ok {
		delete(l.byID, id)
		heap.Remove(&l.timers, t.index)
	}
}

// Timers is the number of pending timers. Loop goroutine only.
func (l *Loop) Timers() int { return len(l.byID) }

// Waiting reports whether a posted task waits to run after the current one. Loop goroutine only.
func (l *Loop) Waiting() bool {
	if l.rest > 0 {
		return true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.posted) > 0
}

// Stop makes Run return after the current task. Loop goroutine only; use Post(l.Stop) from elsewhere.
func (l *Loop) Stop() { l.stop = true }

// Done is closed when Run has returned.
func (l *Loop) Done() <-chan struct{} { return l.done }

// Run runs tasks, timers and microtasks until Stop.
func (l *Loop) Run() {
	defer func() {
		l.mu.Lock()
		l.closed = true
		l.posted = nil
		l.mu.Unlock()
		close(l.done)
	}()
	idle := l.clock.AfterFunc(time.Hour, l.poke) // wakes the loop when its first timer is due
	defer idle.Stop()
	for {
		l.drain()
		if l.stop {
			return
		}
		if len(l.timers) > 0 && !l.timers[0].when.After(l.clock.Now()) {
			t := heap.Pop(&l.timers).(*timer)
			delete(l.byID, t.id)
			l.run(t.fn)
			continue
		}
		l.mu.Lock()
		tasks := l.posted
		l.posted = nil
		l.mu.Unlock()
		if len(tasks) > 0 {
			for i, fn := range tasks {
				l.rest = len(tasks) - i - 1
				l.run(fn)
				if l.stop {
					l.requeue(tasks[i+1:])
					break
				}
				l.drain()
			}
			l.rest = 0
			continue
		}
		if len(l.timers) > 0 {
			idle.Reset(l.timers[0].when.Sub(l.clock.Now()))
		}
		<-l.wake
	}
}

func (l *Loop) requeue(tasks []func()) {
	l.mu.Lock()
	l.posted = append(tasks, l.posted...)
	l.mu.Unlock()
}

func (l *Loop) drain() {
	for len(l.micro) > 0 && !l.stop {
		fn := l.micro[0]
		l.micro[0] = nil
		l.micro = l.micro[1:]
		l.run(fn)
	}
	if len(l.micro) == 0 {
		l.micro = nil
	}
}

func (l *Loop) run(fn func()) {
	defer func() {
		if v := recover(); v != nil {
			if l.OnPanic == nil {
				panic(v)
			}
			l.stop = true
			l.OnPanic(v)
		}
	}()
	fn()
}

// Do runs fn on the loop and waits for it. It fails if the loop stops first.
func (l *Loop) Do(fn func()) error {
	ran := make(chan struct{})
	if !l.Post(func() { fn(); close(ran) }) {
		return ErrStopped
	}
	select {
	case <-ran:
		return nil
	case <-l.done:
		select {
		case <-ran:
			return nil
		default:
			return ErrStopped
		}
	}
}

// ErrStopped is returned for work handed to a loop that has stopped.
var ErrStopped = errors.New("event loop stopped")

type timer struct {
	id    int
	when  time.Time
	fn    func()
	index int
}

type timerHeap []*timer

func (h timerHeap) Len() int { return len(h) }
func (h timerHeap) Less(i, j int) bool {
	if h[i].when.Equal(h[j].when) {
		return h[i].id < h[j].id
	}
	return h[i].when.Before(h[j].when)
}
func (h timerHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}
func (h *timerHeap) Push(x any) {
	t := x.(*timer)
	t.index = len(*h)
	*h = append(*h, t)
}
func (h *timerHeap) Pop() any {
	old := *h
	t := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return t
}

// PanicError describes a panic on the loop.
func PanicError(v any) error { return fmt.Errorf("panic on event loop: %v", v) }
