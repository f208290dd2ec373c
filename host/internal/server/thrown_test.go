package server

import (
	"errors"
	"strings"
	"testing"

	"github.com/evmlb/evmlb/host/internal/jsrt"
	"github.com/evmlb/evmlb/internal/contract"
)

// throwing stands for Go's complete when an exception unwinds through it (in workerd, V8's "Maximum call stack
// size exceeded" inside the wasm).
type throwing struct{}

func (throwing) Call(jsrt.Value, []jsrt.Value) (jsrt.Value, error) {
	return nil, errors.New("Maximum call stack size exceeded")
}

// TestThrownThroughGoEndsTheRuntime: a runtime whose Go code had an exception thrown through it is in an unknown
// state: its call fails with the internal error (500), the runtime ends, and the next call starts a new one.
func TestThrownThroughGoEndsTheRuntime(t *testing.T) {
	h := newHost(t, Options{WorkerRuntimes: 1})
	h.ok("/echo")
	rt, starts := h.workers[0].current()
	set := make(chan struct{})
	rt.loop.Post(func() {
		rt.complete = throwing{}
		close(set)
	})
	<-set
	if code, body := h.do("GET", "/sleep-op?ms=1", nil); code != 500 || body != contract.InternalErrorBody {
		t.Errorf("the call through which complete threw: %d %s, want 500 and the internal error", code, body)
	}
	h.expectViolation("complete(")
	if !rt.isDead() {
		t.Fatal("the runtime lives on after an exception was thrown through its Go code")
	}
	h.ok("/echo")
	if next, n := h.workers[0].current(); next == rt || n != starts+1 {
		t.Errorf("runtime %p (start %d) after the throw, want a new one (start %d)", next, n, starts+1)
	}
	if !strings.Contains(h.log.String(), "complete threw (Maximum call stack size exceeded): the runtime is ended") {
		t.Errorf("log lacks the runtime's end:\n%s", h.log)
	}
}
