package server

import (
	goruntime "runtime"

	"github.com/tetratelabs/wazero/api"

	"github.com/evmlb/evmlb/internal/contract"
)

// bridge is the host side of the import module evmlb (CONTRACT.md §1): Go hands over its messages, and takes the
// texts and bodies of begin and complete, by address and length in its memory. On the loop, inside Go.
type bridge struct{ rt *runtime }

// pendingEvent is what begin or complete hands Go through take: set on the loop around the call into Go.
type pendingEvent struct {
	text string
	body []byte // nil: none
}

func (b bridge) violation(format string, args ...any) {
	b.rt.s.violation(nil, format+" (runtime %s)", append(args, b.rt.name)...)
}

// view returns the n bytes at p in Go's memory, not copied.
func view(mem api.Memory, p uint32, n int32) ([]byte, bool) {
	if n < 0 {
		return nil, false
	}
	return mem.Read(p, uint32(n))
}

func (b bridge) Deliver(mem api.Memory, num, msg uint32, msgLen int32, body uint32, bodyLen int32) {
	tv, ok := view(mem, msg, msgLen)
	text := string(tv) // the one copy of the text
	var bb []byte
	if ok && bodyLen != contract.NoBody {
		var bv []byte
		if bv, ok = view(mem, body, bodyLen); ok {
			bb = append(make([]byte, 0, len(bv)), bv...)
		}
	}
	if !ok {
		b.violation("deliver: the message or its body is not in Go's memory")
		return
	}
	c := b.rt.call(num)
	if c == nil {
		b.violation("deliver for call %d, which is not running", num)
		return
	}
	m := decode(text, bb)
	if m.ends() && b.rt.byNum[num] == c { // Go ended the call: its number is free, without a task on the loop
		delete(b.rt.byNum, num)
		b.rt.recent[num%uint32(len(b.rt.recent))] = c
		c.goEnded.Store(true)
	}
	if late, imposed := c.x.pushMessage(c, m); late && !imposed {
		c.s.violation(nil, "message %q after done (%s)", m.op, c.what)
		return
	}
	// The handler just woken waits in this goroutine's run queue slot until Go's event returns (tens of µs more
	// of wasm). When no other task waits for the loop, yield, so that the handler starts the operation, or
	// writes the answer, while Go finishes (RATIONALE.md, "Why does deliver yield?"). Under load, tasks wait, and
	// yielding would only add switches. Not while profiling (Options.Listener).
	if b.rt.s.opts.Listener == nil && !b.rt.loop.Waiting() {
		goruntime.Gosched()
	}
}

func (b bridge) Take(mem api.Memory, text, body uint32) {
	p := b.rt.pending
	if p == nil {
		b.violation("take outside begin and complete")
		return
	}
	b.rt.pending = nil // once per event: a second take, or one from another goroutine, is a violation
	ok := len(p.text) == 0 || mem.WriteString(text, p.text)
	if body != 0 && len(p.body) > 0 {
		ok = ok && mem.Write(body, p.body)
	}
	if !ok {
		b.violation("take: the text or body does not fit in Go's memory there")
	}
}

func (b bridge) Body(mem api.Memory, num, dst uint32) {
	c := b.rt.byNum[num]
	if c == nil || c.bodyTaken {
		b.violation("body for call %d, which has none to take", num)
		return
	}
	c.bodyTaken = true
	body := c.reqBody
	c.reqBody = nil
	if len(body) > 0 && !mem.Write(dst, body) {
		b.violation("body: the body does not fit in Go's memory there")
	}
}

// call returns the running call num, or one Go ended lately (so that a message after its end is named as such).
func (rt *runtime) call(num uint32) *call {
	if c := rt.byNum[num]; c != nil {
		return c
	}
	if c := rt.recent[num%uint32(len(rt.recent))]; c != nil && c.num == num {
		return c
	}
	return nil
}
