// Package hostcall is the Go side of the call protocol of CONTRACT.md §4, in pure Go: a Call is one fetch or
// alarm the host handed to Go; every I/O the call needs (an outbound fetch, a Durable Object call, a storage
// call, a timer) is an Op that Go delivers to the host, which performs it in the call's own context and hands
// back a Result. Go therefore never touches an I/O object, from whatever JS callback its scheduler happens to
// run a goroutine in: workerd's rule holds by construction.
//
// worker/jsbind converts Ops and Results to and from JS values; everything else (ids, waiting, cancellation,
// background work, the end of a call) lives here and is tested natively.
package hostcall

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/evmlb/evmlb/internal/contract"
)

// Op is one message of a call to its host. Which fields count depends on Kind.
type Op struct {
	ID   uint64 // every kind but abort, response and done
	Kind string // one of contract's Op* kinds
	// fetch, object and response
	URL, Method string
	Header      http.Header
	Body        []byte // nil: no body
	Timeout     time.Duration
	Limit       int64 // fetch: the largest answer body accepted
	Status      int   // response
	// object
	Namespace, Name, Path string
	// storage: Call is one of contract's Storage* calls; cache: one of its Cache* calls, Key the entry's URL, TTL a
	// put's lifetime (whole seconds on the wire), Limit a match's largest entry
	Call    string
	Key     string
	Entries map[string]string
	Keys    []string
	Prefix  string
	Time    time.Time
	TTL     time.Duration
	// sleep
	Sleep time.Duration
	// abort
	Target uint64
	// done: an alarm's failure, "" when it succeeded
	Err string
	// response: the call's last message (it ended with its answer; no done follows)
	Last bool
	// response: accept a WebSocket (status 101, a subs object's fetch call made by an upgrade); nil: none
	Accept *Socket
	// socket: Call is one of contract's Socket* calls; send's Tags (or All) and its text in Body; close's Tag,
	// Code and Reason; attach's Tag and Attachment
	Tags       []string
	All        bool
	Tag        string
	Attachment string
	Code       int
	Reason     string
}

// Result is what the host answers to an Op.
type Result struct {
	// Err is "" on success, else one of contract's Err* kinds; Message says more (never a URL: the host's text).
	Err, Message string
	// fetch and object
	Status int
	Header http.Header
	Body   []byte
	// storage: get's value (Found false when there is none), list's entries, getAlarm's time (Found false: none);
	// cache: a match's entry is Body, Found false on a miss
	Value   string
	Found   bool
	Entries map[string]string
	Time    time.Time
	// socket: send's, close's and attach's count of sockets reached; list's sockets
	Count   int
	Sockets []Socket
}

// Error is a failed Result as a Go error. A timeout is also context.DeadlineExceeded (errors.Is), and an
// abort context.Canceled, so callers classify them as they would a native transport's.
type Error struct{ Kind, Message string }

func (e *Error) Error() string {
	if e.Message == "" {
		return "host: " + e.Kind
	}
	return "host: " + e.Kind + ": " + e.Message
}

func (e *Error) Is(target error) bool {
	return (e.Kind == contract.ErrTimeout && target == context.DeadlineExceeded) || (e.Kind == contract.ErrAborted && target == context.Canceled)
}

// ErrEnded is returned for an Op of a call that has already ended.
var ErrEnded = errors.New("hostcall: the call has ended")

// Call is one call of the host into Go. Make it with New; it is safe for concurrent use.
type Call struct {
	// Object is the Durable Object instance the call runs for ("" for the Worker): its storage is the only one
	// the call may use.
	Object  string
	deliver func(Op)

	mu       sync.Mutex
	accept   *Socket // Accept's: the answer accepts a WebSocket
	next     uint64
	waiting  map[uint64]waiter
	bg       int  // background functions running
	ending   bool // Finish was called: no new background work
	ended    bool // done was delivered
	idle     chan struct{}
	response bool
	doneErr  string
}

// New makes a call whose messages go to deliver. deliver may be called from any goroutine, one call at a time;
// it must only queue the message (CONTRACT.md §4).
func New(object string, deliver func(Op)) *Call {
	return &Call{Object: object, deliver: deliver, waiting: map[uint64]waiter{}}
}

// waiter is an operation waiting for its result: the channel it comes on, and what the operation was (its kind,
// or a storage operation's call), which says how to read the result.
type waiter struct {
	ch   chan Result
	kind string
}

// Kind is what the waiting operation id is: its kind, or for a storage operation its call (contract.StorageGet, …).
func (c *Call) Kind(id uint64) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	w, ok := c.waiting[id]
	return w.kind, ok
}

type ctxKey struct{}

// With returns ctx carrying c: the platform's I/O functions find their call there.
func With(ctx context.Context, c *Call) context.Context { return context.WithValue(ctx, ctxKey{}, c) }

// From returns the call ctx carries, or nil.
func From(ctx context.Context) *Call {
	c, _ := ctx.Value(ctxKey{}).(*Call)
	return c
}

// send delivers a message under the lock, so that messages leave in the order they were made.
func (c *Call) send(op Op) {
	c.deliver(op)
}

// Do delivers op (its ID is set here) and waits for its result. When ctx ends first, an operation that can be
// aborted (fetch, object, sleep) is aborted; Do returns ctx.Err() at once, and the call stays open until the host
// has answered the aborted operation.
func (c *Call) Do(ctx context.Context, op Op) (Result, error) {
	if err := ctx.Err(); err != nil {
		return Result{}, err
	}
	ch := make(chan Result, 1)
	c.mu.Lock()
	if c.ended {
		c.mu.Unlock()
		return Result{}, ErrEnded
	}
	c.next++
	op.ID = c.next
	kind := op.Kind
	switch kind {
	case contract.OpStorage:
		kind = op.Call
	case contract.OpSocket:
		kind = socketKind(op.Call)
	}
	c.waiting[op.ID] = waiter{ch: ch, kind: kind}
	c.send(op)
	c.mu.Unlock()
	select {
	case r := <-ch:
		if r.Err != "" {
			return r, &Error{Kind: r.Err, Message: r.Message}
		}
		if op.Kind == contract.OpUpgrade { // the object's answer answered the client: Go's own goes nowhere
			c.mu.Lock()
			c.response = true
			c.mu.Unlock()
		}
		return r, nil
	case <-ctx.Done():
		if op.Kind == contract.OpFetch || op.Kind == contract.OpObject || op.Kind == contract.OpSleep {
			c.mu.Lock()
			if _, open := c.waiting[op.ID]; open && !c.ended {
				c.send(Op{Kind: contract.OpAbort, Target: op.ID})
			}
			c.mu.Unlock()
		}
		return Result{}, ctx.Err()
	}
}

// Complete hands the host's result of operation id to the waiting Do. An unknown id (never issued, or answered
// already) is an error: the host broke the protocol.
func (c *Call) Complete(id uint64, r Result) error {
	c.mu.Lock()
	w, ok := c.waiting[id]
	delete(c.waiting, id)
	c.mu.Unlock()
	if !ok {
		return fmt.Errorf("hostcall: result for operation %d, which is not waiting", id)
	}
	w.ch <- r
	c.maybeEnd()
	return nil
}

// Respond delivers the answer of a fetch call; a second answer is ignored.
func (c *Call) Respond(status int, header http.Header, body []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.response || c.ended {
		return
	}
	c.response = true
	op := Op{Kind: contract.OpResponse, Status: status, Header: header, Body: body}
	c.withAccept(&op)
	c.send(op)
}

// withAccept makes a response accept the WebSocket Accept asked for: status 101, no body. Under c.mu.
func (c *Call) withAccept(op *Op) {
	if c.accept != nil {
		op.Accept, op.Status, op.Body = c.accept, 101, nil
	}
}

// RespondAndFinish is Respond then Finish(""), the handler having returned: when nothing else is running, the
// answer goes as the call's last message (Op.Last), and no done follows.
func (c *Call) RespondAndFinish(status int, header http.Header, body []byte) <-chan struct{} {
	c.mu.Lock()
	if !c.response && !c.ended && c.bg == 0 && len(c.waiting) == 0 {
		c.response, c.ending, c.ended = true, true, true
		c.idle = make(chan struct{})
		close(c.idle)
		op := Op{Kind: contract.OpResponse, Status: status, Header: header, Body: body, Last: true}
		c.withAccept(&op)
		c.send(op)
		c.mu.Unlock()
		return c.idle
	}
	c.mu.Unlock()
	c.Respond(status, header, body)
	return c.Finish("")
}

// Go runs fn on its own goroutine as background work of the call: the call does not end before fn returns, and
// fn's context keeps the call (not its cancellation). It reports false, and runs nothing, once the call is ending.
func (c *Call) Go(ctx context.Context, fn func(context.Context)) bool {
	c.mu.Lock()
	if c.ending {
		c.mu.Unlock()
		return false
	}
	c.bg++
	c.mu.Unlock()
	go func() {
		defer func() {
			c.mu.Lock()
			c.bg--
			c.mu.Unlock()
			c.maybeEnd()
		}()
		fn(context.WithoutCancel(ctx))
	}()
	return true
}

// Finish is called once the handler has returned: the call ends (done is delivered, carrying errMsg) as soon as
// its background work has returned and every operation has been answered. done returns a channel closed then.
func (c *Call) Finish(errMsg string) <-chan struct{} {
	c.mu.Lock()
	c.ending = true
	if c.idle == nil {
		c.idle = make(chan struct{})
	}
	idle := c.idle
	c.mu.Unlock()
	c.endErr(errMsg)
	return idle
}

func (c *Call) endErr(errMsg string) {
	c.mu.Lock()
	c.doneErr = errMsg
	c.mu.Unlock()
	c.maybeEnd()
}

// maybeEnd delivers done when the call is ending, idle and has not ended yet.
func (c *Call) maybeEnd() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.ending || c.ended || c.bg > 0 || len(c.waiting) > 0 {
		return
	}
	c.ended = true
	c.send(Op{Kind: contract.OpDone, Err: c.doneErr})
	close(c.idle)
}
