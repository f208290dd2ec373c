package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/evmlb/evmlb/host/internal/gojs"
	"github.com/evmlb/evmlb/host/internal/jsrt"
	"github.com/evmlb/evmlb/host/internal/jsworld"
	"github.com/evmlb/evmlb/internal/contract"
	"github.com/tetratelabs/wazero/experimental"
)

// runtime is one Go runtime: an event loop, the JS world on it and the program instance. Everything in the
// world belongs to the loop's goroutine; calls reach it with Post. The worker pool has several runtimes, the
// Durable Objects one; nothing is shared between them but messages (byte copies).
type runtime struct {
	s     *Server
	name  string
	loop  *jsrt.Loop
	realm *jsrt.Realm
	world *jsworld.World
	gort  *gojs.Runtime

	// On the loop: calls by number (CONTRACT.md §3), the last number given, the event Go may take() from.
	byNum   map[uint32]*call
	recent  [64]*call // calls Go ended lately, by number modulo 64
	lastNum uint32
	pending *pendingEvent

	// Set on the loop before the runtime is handed out, read-only afterwards.
	begin, complete jsrt.Callable
	maxBody         int64
	requestHeaders  []string // binding.requestHeaders: the only request headers Go gets, sorted

	deadOnce sync.Once
	dead     chan struct{}
	released chan struct{} // closed once the loop ended and the module instance is closed

	mu        sync.Mutex
	closed    bool                 // dead: no new calls
	calls     map[*call]struct{}   // calls begun and not ended, told when the runtime dies
	instances map[string]*instance // the objects runtime: live Durable Object instances by id
}

// instance is a live Durable Object instance of the objects runtime. Its calls share one executor, so their
// messages are handled in the order Go sent them, as an object's are in workerd.
type instance struct {
	id, role, token string
	x               *executor
}

func (rt *runtime) isDead() bool {
	select {
	case <-rt.dead:
		return true
	default:
		return false
	}
}

// die marks the runtime dead, tells its calls (they fail) and stops the loop after the current task.
func (rt *runtime) die() {
	rt.deadOnce.Do(func() {
		rt.mu.Lock()
		rt.closed = true
		calls := rt.calls
		rt.calls = nil
		rt.mu.Unlock()
		close(rt.dead)
		rt.loop.Post(rt.loop.Stop)
		for c := range calls {
			c.x.push(event{c: c, dead: "Go runtime exited"})
		}
	})
}

// closeIdle closes the runtime to new calls at a moment when none is in flight, waiting at most max for one (a
// call begun meanwhile fails as it would a moment later, at the stop), and reports whether it found one.
func (rt *runtime) closeIdle(max time.Duration) bool {
	deadline := time.Now().Add(max)
	for {
		rt.mu.Lock()
		idle := len(rt.calls) == 0
		if idle || time.Now().After(deadline) {
			rt.closed = true
			rt.mu.Unlock()
			return idle
		}
		rt.mu.Unlock()
		time.Sleep(2 * time.Millisecond)
	}
}

// stop ends the runtime and waits for its loop, and for its module instance to be closed (its linear memory
// released).
func (rt *runtime) stop() {
	rt.die()
	<-rt.loop.Done()
	<-rt.released
}

func (rt *runtime) track(c *call) bool {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if rt.closed {
		return false
	}
	rt.calls[c] = struct{}{}
	return true
}

func (rt *runtime) untrack(c *call) {
	rt.mu.Lock()
	delete(rt.calls, c)
	rt.mu.Unlock()
}

// instance returns the live instance id, constructing it (with a new token) on first use.
func (rt *runtime) instance(role, id string) *instance {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if inst, ok := rt.instances[id]; ok {
		return inst
	}
	var b [16]byte
	_, _ = rand.Read(b[:])
	inst := &instance{id: id, role: role, token: hex.EncodeToString(b[:]), x: &executor{}}
	rt.instances[id] = inst
	return inst
}

// beginCall starts c in Go with begin(call, textLen, bodyLen): meta are the call's fields (CONTRACT.md §3),
// encoded here, off the loop. Go's messages, and anything going wrong, reach c's handler as events.
func (rt *runtime) beginCall(c *call, meta []string, body []byte) {
	text := contract.Strings(meta...)
	if !rt.track(c) || !rt.loop.Post(func() {
		c.num = rt.newNum()
		c.reqBody, c.bodyTaken = body, body == nil
		rt.byNum[c.num] = c
		err := rt.event(rt.begin, text, nil, float64(c.num), float64(len(text)), bodyLen(body))
		if err != nil {
			delete(rt.byNum, c.num)
			c.x.push(event{c: c, dead: "begin threw: " + thrownMessage(rt.realm, err)})
			rt.thrown("begin", err)
			return
		}
		c.begun = true
	}) {
		c.x.push(event{c: c, dead: "Go runtime is not running"})
	}
}

// completeOps hands Go the results of c's operations, in order, on the loop; none after Go sent done (deliver
// runs on the loop too, so this is exact).
func (rt *runtime) completeOps(c *call, items []completion) {
	rt.loop.Post(func() {
		if !c.begun {
			return
		}
		r := rt.realm
		for _, it := range items {
			c.x.mu.Lock()
			ended := c.doneSent
			c.x.mu.Unlock()
			if ended {
				return
			}
			err := rt.event(rt.complete, it.text, it.body, float64(c.num), it.id, float64(len(it.text)), bodyLen(it.body))
			if err != nil {
				if exited, _ := rt.gort.Exited(); exited {
					return // the runtime's death tells the call
				}
				c.x.push(event{c: c, violation: fmt.Sprintf("complete(%v, %v) threw: %s", c.num, it.id, thrownMessage(r, err))})
				rt.thrown("complete", err)
				return
			}
		}
	})
}

// thrown ends a runtime through whose Go code an exception was thrown (by begin or complete): Go was stopped
// mid-execution, its scheduler and heap in an unknown state, so nothing more runs on it. Its calls fail with the
// internal error (500, -32603) and the next call starts a new runtime, as the shim does in workerd. On the loop.
func (rt *runtime) thrown(where string, err error) {
	rt.s.logf("Go runtime %s: %s threw (%s): the runtime is ended, the next call starts a new one", rt.name, where, thrownMessage(rt.realm, err))
	rt.die()
}

// event calls fn (begin or complete) as a plain function with numbers, the text and body waiting for Go's take.
// On the loop.
func (rt *runtime) event(fn jsrt.Callable, text string, body []byte, args ...jsrt.Value) error {
	rt.pending = &pendingEvent{text: text, body: body}
	_, err := fn.Call(jsrt.Undefined, args)
	rt.pending = nil
	return err
}

// newNum returns a call number no running call has (CONTRACT.md §3). On the loop.
func (rt *runtime) newNum() uint32 {
	for {
		rt.lastNum++
		if rt.lastNum >= 1<<31 {
			rt.lastNum = 1
		}
		if rt.byNum[rt.lastNum] == nil {
			return rt.lastNum
		}
	}
}

// bodyLen is a body's length as begin and complete give it: NoBody for none.
func bodyLen(b []byte) float64 {
	if b == nil {
		return contract.NoBody
	}
	return float64(len(b))
}

func thrownMessage(r *jsrt.Realm, err error) string {
	v := jsrt.ThrownValue(r, err)
	if m, ok := jsrt.Get(v, "message").(string); ok {
		return m
	}
	return jsrt.ToString(v)
}

// start starts a runtime and waits until Go is ready and speaks our contract version.
func (s *Server) start(name string) (*runtime, error) {
	rt := &runtime{s: s, name: name, loop: jsrt.NewLoop(s.clock), dead: make(chan struct{}), released: make(chan struct{}),
		calls: map[*call]struct{}{}, instances: map[string]*instance{}, byNum: map[uint32]*call{}}
	rt.loop.OnPanic = func(v any) {
		s.logf("runtime %s failed: %v", name, v)
		rt.die()
	}
	go func() {
		defer close(rt.released)
		rt.loop.Run()
		rt.die()
		if rt.gort != nil {
			rt.gort.Close()
		}
	}()
	ready := make(chan error, 1)
	rt.loop.Post(func() {
		rt.realm = jsrt.NewRealm(rt.loop, s.log)
		rt.world = jsworld.New(rt.realm, jsworld.Config{Env: s.opts.Env, Log: s.log, MemoryBytes: func() uint32 {
			if rt.gort == nil {
				return 0
			}
			return rt.gort.MemoryBytes()
		}, Violation: func(what string) {
			s.violation(nil, "%s (runtime %s)", what, name)
		}})
		ctx := context.Background()
		if s.opts.Listener != nil {
			ctx = experimental.WithFunctionListenerFactory(ctx, s.opts.Listener)
		}
		gort, err := gojs.Start(ctx, s.wz, s.compiled, gojs.Options{
			Realm:  rt.realm,
			Log:    s.log,
			Bridge: bridge{rt},
			OnReady: func() {
				select { // a second ready() is ignored
				case ready <- rt.checkContract():
				default:
				}
			},
			OnExit: func(err error) {
				if !errors.Is(err, gojs.ErrClosed) {
					s.logf("Go runtime %s exited: %v", name, err)
				}
				rt.die()
				select {
				case ready <- fmt.Errorf("Go program exited before it was ready: %v", err):
				default:
				}
			},
		})
		rt.gort = gort
		if err != nil {
			ready <- err
		}
	})
	timeout := s.opts.StartTimeout
	if timeout == 0 {
		timeout = 60 * time.Second
	}
	var err error
	select {
	case err = <-ready:
	case <-time.After(timeout):
		err = errors.New("Go program did not call workers.ready")
	}
	if err != nil {
		rt.stop()
		return nil, err
	}
	return rt, nil
}

// checkContract reads what Go registered on context.binding (CONTRACT.md §3). On the loop.
func (rt *runtime) checkContract() error {
	b := rt.world.Binding()
	v := b.Get(contract.BindingContractVersion)
	if f, ok := v.(float64); !ok || f != contract.Version {
		return fmt.Errorf("%w: app.wasm implements host contract %s, this host %d",
			ErrContractVersion, jsrt.ToString(v), contract.Version)
	}
	var ok bool
	if rt.begin, ok = b.Get(contract.BindingBegin).(jsrt.Callable); !ok {
		return fmt.Errorf("%w: binding.begin is not a function", ErrContractVersion)
	}
	if rt.complete, ok = b.Get(contract.BindingComplete).(jsrt.Callable); !ok {
		return fmt.Errorf("%w: binding.complete is not a function", ErrContractVersion)
	}
	n, ok := b.Get(contract.BindingMaxBodyBytes).(float64)
	if !ok || n < 0 || n != math.Trunc(n) || n > 1<<40 {
		return fmt.Errorf("%w: binding.maxBodyBytes is not a byte count", ErrContractVersion)
	}
	rt.maxBody = int64(n)
	names, ok := b.Get(contract.BindingRequestHeaders).(*jsrt.Array)
	if !ok {
		return fmt.Errorf("%w: binding.requestHeaders is not an array", ErrContractVersion)
	}
	for _, v := range names.Elems {
		name, ok := v.(string)
		if !ok || name != strings.ToLower(name) || name == "" {
			return fmt.Errorf("%w: binding.requestHeaders holds %s, not a lower-case header name", ErrContractVersion, jsrt.ToString(v))
		}
		rt.requestHeaders = append(rt.requestHeaders, name)
	}
	sort.Strings(rt.requestHeaders)
	return nil
}

// slot holds one runtime of the pool (or the objects runtime) and starts a new one after a crash.
type slot struct {
	s    *Server
	name string

	mu     sync.Mutex
	cur    *runtime
	starts int

	calls  atomic.Int64 // worker calls begun and not ended, for routing
	served atomic.Int64 // calls begun
}

// get returns the live runtime, starting one if there is none.
func (sl *slot) get() (*runtime, error) {
	sl.mu.Lock()
	defer sl.mu.Unlock()
	if sl.cur != nil && !sl.cur.isDead() {
		return sl.cur, nil
	}
	if sl.s.isClosed() {
		return nil, errors.New("server closed")
	}
	rt, err := sl.s.start(sl.name)
	if err != nil {
		return nil, err
	}
	sl.cur = rt
	sl.starts++
	return rt, nil
}

// release lets go of rt if it is the slot's runtime, so that a runtime stopped on purpose (an eviction) is
// garbage at once rather than at the next call.
func (sl *slot) release(rt *runtime) {
	sl.mu.Lock()
	defer sl.mu.Unlock()
	if sl.cur == rt {
		sl.cur = nil
	}
}

func (sl *slot) current() (*runtime, int) {
	sl.mu.Lock()
	defer sl.mu.Unlock()
	return sl.cur, sl.starts
}
