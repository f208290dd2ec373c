package server

import (
	"sync"
	"sync/atomic"

	"github.com/evmlb/evmlb/internal/contract"
)

// call is one call of CONTRACT.md §3: a request to the worker or to an object, or an alarm. Go sends its
// messages through deliver, which runs on the runtime's loop and only queues them on the call's executor; the
// call's handler (whichever goroutine drains that executor) performs them and hands results back with
// complete. So every operation of a call is started, aborted and answered from the call's own handler: the
// wazero host's version of workerd's "the I/O of a request belongs to that request".
type call struct {
	s    *Server
	rt   *runtime
	x    *executor
	kind string
	role string
	// object and instance are the Durable Object's id and instance token ("" for worker calls).
	object, instance string
	// what names the call in log lines: never a body or a full URL.
	what string
	// host is a worker call's request host (URL host, port included): the only host its cache keys may name.
	host string
	// wsUpgrade: a worker call whose request is a GET with Upgrade: websocket (it may send upgrade);
	// fromUpgrade: a subs object's fetch call made by an upgrade (its response may accept a WebSocket).
	wsUpgrade, fromUpgrade bool

	// On the runtime's loop: the call's number (CONTRACT.md §3), its request body until Go takes it.
	num       uint32
	begun     bool
	reqBody   []byte
	bodyTaken bool
	goEnded   atomic.Bool // Go sent the call's last message (set on the loop before the message is queued)

	// Guarded by x.mu: Go sent done (or the call ended); any later message is a violation, unless the host
	// ended the call itself (its runtime died): Go may still be finishing what it began before it heard.
	doneSent, hostEnded bool

	// The handler's own state.
	ops      map[float64]*op
	answered bool   // a fetch call's answer went out
	failed   bool   // the host failed the call (a 500, or an alarm to retry)
	ended    bool   // done, or the runtime died
	alarmErr string // why an alarm call failed
	pending  []completion

	// answerTo hands a fetch call's answer to whoever asked: the HTTP client or an object operation.
	answerTo func(result)
	// onEnd runs (in the handler) when the call has ended.
	onEnd func()
}

// op is an operation of a call.
type op struct {
	done    bool
	cancel  func() // stops it; nil when there is nothing to stop
	upgrade bool   // an upgrade: its success answers the call's client
}

// completion is the result of an operation as it will be handed to Go: encoded in the handler, so that the
// loop only crosses into Go.
type completion struct {
	id   float64
	text string
	body []byte
}

// event is what a call's handler handles: a message from Go, the end of an operation, or the end of the call
// imposed from outside (the runtime died, begin failed, Go's complete threw).
type event struct {
	c         *call
	msg       *message
	res       *opResult
	dead      string // the call cannot go on: why
	violation string // a protocol violation found outside the handler
}

type opResult struct {
	id float64
	r  result
}

func (s *Server) newCall(rt *runtime, x *executor, kind, role string) *call {
	return &call{s: s, rt: rt, x: x, kind: kind, role: role, ops: map[float64]*op{}}
}

// handle handles one event. In the handler.
func (c *call) handle(e event) {
	if c.ended {
		if e.res != nil && e.res.r.sock != nil {
			c.s.socks.abandon(e.res.r.sock) // an upgrade's socket nobody will take
		}
		return // a late result, or news of a runtime the call no longer needs
	}
	switch {
	case e.dead != "":
		c.s.logf("%s failed: %s", c.what, e.dead)
		c.fail(e.dead)
		c.x.mu.Lock()
		c.hostEnded = !c.doneSent
		c.x.mu.Unlock()
		c.end()
	case e.violation != "":
		c.s.violation(c, "%s", e.violation)
	case e.res != nil:
		c.settle(e.res.id, e.res.r)
	case e.msg != nil:
		c.message(e.msg)
	}
}

// settle records the result of operation id, unless it already has one (it was aborted or timed out).
func (c *call) settle(id float64, r result) {
	o := c.ops[id]
	if o == nil || o.done {
		if r.sock != nil {
			c.s.socks.abandon(r.sock)
		}
		return
	}
	o.done, o.cancel = true, nil
	if o.upgrade && r.err == "" { // the object's answer answers the client as is; Go learns its status
		if c.answered {
			if r.sock != nil {
				c.s.socks.abandon(r.sock)
			}
			if !c.failed {
				c.s.violation(c, "response while an upgrade was running")
			}
		} else {
			c.answered = true
			c.answerTo(r)
		}
		r = result{upgraded: true, status: r.status}
	}
	text, body := r.encode()
	c.pending = append(c.pending, completion{id, text, body})
}

func (c *call) message(m *message) {
	if m.bad != "" {
		c.s.violation(c, "%s", m.bad)
		if m.hasID && c.ops[m.id] == nil { // answer it, so that Go does not wait for ever
			c.ops[m.id] = &op{}
			c.settle(m.id, errResult(contract.ErrInvalid, m.bad))
		}
		return
	}
	switch m.op {
	case contract.OpFetch, contract.OpObject, contract.OpStorage, contract.OpCache, contract.OpSleep, contract.OpUpgrade,
		contract.OpSocket:
		if _, used := c.ops[m.id]; used {
			c.s.violation(c, "operation id %v used twice", m.id)
			return
		}
		o := &op{}
		c.ops[m.id] = o
		c.start(o, m)
	case contract.OpAbort:
		o, ok := c.ops[m.target]
		if !ok {
			c.s.violation(c, "abort of unknown operation %v", m.target)
			return
		}
		if o.done {
			return
		}
		if o.cancel != nil {
			o.cancel()
		}
		c.settle(m.target, errResult(contract.ErrAborted, "the operation was aborted"))
	case contract.OpResponse:
		switch {
		case c.kind != contract.CallFetch:
			c.s.violation(c, "response in a %s call", c.kind)
		case m.accept && (c.role != contract.RoleSubs || !c.fromUpgrade):
			c.s.violation(c, "response accepting a WebSocket outside a %s object's call made by an upgrade", contract.RoleSubs)
		case c.answered && c.failed:
			// the host already answered 500
		case c.answered:
			c.s.violation(c, "second response")
		default:
			if why := m.responseProblem(); why != "" {
				c.s.violation(c, "%s", why) // answers 500
				break
			}
			r := result{resp: true, status: m.status, headers: m.headers, body: m.body}
			if m.accept {
				sock, ok := c.s.socks.add(c.object, c.role, m.tag, m.attachment)
				if !ok {
					c.s.violation(c, "accept: the tag %q is already open", m.tag)
					break
				}
				r.sock, r.body = sock, nil
			}
			c.answered = true
			c.answerTo(r)
		}
		if m.last { // done: true, the call's last message
			c.end()
		}
	case contract.OpDone:
		if c.kind == contract.CallFetch && !c.answered {
			c.s.violation(c, "done before response")
		}
		if (c.kind == contract.CallMessage || c.kind == contract.CallClose) && m.hasErr {
			c.s.logf("%s failed: %s", c.what, m.errText) // logged, never retried (CONTRACT.md §3)
		}
		if c.kind == contract.CallAlarm && m.hasErr && c.alarmErr == "" {
			c.alarmErr = m.errText
			if c.alarmErr == "" {
				c.alarmErr = "failed"
			}
		}
		c.end()
	}
}

// start performs a new operation.
func (c *call) start(o *op, m *message) {
	switch m.op {
	case contract.OpFetch:
		c.s.fetchOp(c, o, m)
	case contract.OpObject:
		c.s.objectOp(c, o, m)
	case contract.OpSleep:
		c.s.sleepOp(c, o, m)
	case contract.OpStorage:
		if c.role == contract.RoleWorker {
			c.s.violation(c, "storage operation from a worker call")
			c.settle(m.id, errResult(contract.ErrInvalid, "a worker call has no storage"))
			return
		}
		c.s.storageOp(c, o, m)
	case contract.OpUpgrade:
		if c.role != contract.RoleWorker || !c.wsUpgrade || c.answered {
			c.s.violation(c, "upgrade from a call that is not a worker's WebSocket upgrade awaiting its answer")
			c.settle(m.id, errResult(contract.ErrInvalid, "only a worker call of a WebSocket upgrade may upgrade"))
			return
		}
		o.upgrade = true
		c.s.upgradeOp(c, o, m)
	case contract.OpSocket:
		if c.role != contract.RoleSubs {
			c.s.violation(c, "socket operation from a %s call", c.role)
			c.settle(m.id, errResult(contract.ErrInvalid, "only a subs object's calls have sockets"))
			return
		}
		c.settle(m.id, c.s.socks.op(c, m))
	case contract.OpCache:
		if c.role != contract.RoleWorker {
			c.s.violation(c, "cache operation from a %s call", c.role)
			c.settle(m.id, errResult(contract.ErrInvalid, "only worker calls use the answer cache"))
			return
		}
		c.settle(m.id, c.s.edge.op(c.host, m))
	}
}

// fail makes the call fail: a fetch call not yet answered is answered 500; an alarm call will be retried.
func (c *call) fail(why string) {
	if c.failed {
		return
	}
	c.failed = true
	if c.kind == contract.CallFetch && !c.answered {
		c.answered = true
		c.answerTo(internalErrorResult())
	}
	if c.kind == contract.CallAlarm && c.alarmErr == "" {
		c.alarmErr = why
	}
}

// end ends the call: operations still running are stopped and their results dropped.
func (c *call) end() {
	c.ended = true
	c.pending = nil
	for _, o := range c.ops {
		if !o.done && o.cancel != nil {
			o.cancel()
		}
	}
	c.x.mu.Lock()
	c.doneSent = true
	c.x.mu.Unlock()
	c.rt.untrack(c)
	if !c.goEnded.Load() { // the host ended it (Go's last message frees the number on the loop itself)
		c.rt.loop.Post(func() {
			if c.rt.byNum[c.num] == c {
				delete(c.rt.byNum, c.num)
			}
		})
	}
	if c.onEnd != nil {
		c.onEnd()
	}
}

// flush hands Go the results gathered while handling a batch of events.
func (c *call) flush() {
	if len(c.pending) == 0 {
		return
	}
	items := c.pending
	c.pending = nil
	c.rt.completeOps(c, items)
}

// executor queues the events of one or more calls and has them handled one at a time, in order: a worker
// call has its own (drained by the goroutine serving the client until the answer is out), the calls of one
// Durable Object instance share one (drained by a goroutine started when events arrive).
type executor struct {
	mu      sync.Mutex
	queue   []event
	running bool          // a goroutine is draining the queue
	owned   bool          // the owner drains it: push only wakes it
	wake    chan struct{} // the owner's wake-up
}

// push queues e; it never blocks.
func (x *executor) push(e event) {
	x.mu.Lock()
	x.queue = append(x.queue, e)
	x.signal()
}

// pushMessage queues a message from Go, unless the call has already ended: late says it had, imposed that the
// host ended it (so the message is dropped, not a violation).
func (x *executor) pushMessage(c *call, m *message) (late, imposed bool) {
	x.mu.Lock()
	if c.doneSent {
		imposed = c.hostEnded
		x.mu.Unlock()
		return true, imposed
	}
	if m.ends() {
		c.doneSent = true
	}
	x.queue = append(x.queue, event{c: c, msg: m})
	x.signal()
	return false, false
}

// signal wakes whoever drains the queue, starting a goroutine if nobody does. Called with x.mu held; unlocks.
func (x *executor) signal() {
	if x.owned {
		x.mu.Unlock()
		select {
		case x.wake <- struct{}{}:
		default:
		}
		return
	}
	if x.running {
		x.mu.Unlock()
		return
	}
	x.running = true
	x.mu.Unlock()
	go x.drain()
}

func (x *executor) take() []event {
	x.mu.Lock()
	evs := x.queue
	x.queue = nil
	x.mu.Unlock()
	return evs
}

func (x *executor) drain() {
	for {
		x.mu.Lock()
		if len(x.queue) == 0 {
			x.running = false
			x.mu.Unlock()
			return
		}
		evs := x.queue
		x.queue = nil
		x.mu.Unlock()
		run(evs)
	}
}

// wait is the owner's: it returns the queued events, waiting for some; false when stop closes first.
func (x *executor) wait(stop <-chan struct{}) ([]event, bool) {
	for {
		if evs := x.take(); len(evs) > 0 {
			return evs, true
		}
		select {
		case <-x.wake:
		case <-stop:
			return nil, false
		}
	}
}

// release ends the owner's turn: from now on a goroutine drains the queue when events arrive.
func (x *executor) release() {
	x.mu.Lock()
	x.owned = false
	if len(x.queue) > 0 && !x.running {
		x.running = true
		x.mu.Unlock()
		go x.drain()
		return
	}
	x.mu.Unlock()
}

// run handles a batch of events, then hands Go the results each call gathered.
func run(evs []event) {
	var touched []*call
	for _, e := range evs {
		e.c.handle(e)
		if len(e.c.pending) > 0 && !contains(touched, e.c) {
			touched = append(touched, e.c)
		}
	}
	for _, c := range touched {
		c.flush()
	}
}

func contains(cs []*call, c *call) bool {
	for _, x := range cs {
		if x == c {
			return true
		}
	}
	return false
}
