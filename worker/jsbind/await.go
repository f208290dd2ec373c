//go:build js && wasm

// Package jsbind implements the balancer's platform (internal/platform) over syscall/js, as CONTRACT.md
// describes it: the same code runs in workerd (through worker/shim) and in the wazero host (host/).
package jsbind

import (
	"context"
	"errors"
	"syscall/js"
)

// settled is the outcome of a JS promise.
type settled struct {
	value js.Value
	err   error
}

// await waits for a JS promise. If ctx ends first it returns ctx.Err(); the callbacks stay registered until the
// promise settles, and are released then.
func await(ctx context.Context, promise js.Value) (js.Value, error) {
	ch := make(chan settled, 1)
	var onOK, onErr js.Func
	release := func() { onOK.Release(); onErr.Release() }
	onOK = js.FuncOf(func(_ js.Value, args []js.Value) any {
		defer release()
		v := js.Undefined()
		if len(args) > 0 {
			v = args[0]
		}
		ch <- settled{value: v}
		return nil
	})
	onErr = js.FuncOf(func(_ js.Value, args []js.Value) any {
		defer release()
		ch <- settled{err: jsError(args)}
		return nil
	})
	promise.Call("then", onOK, onErr)
	select {
	case s := <-ch:
		return s.value, s.err
	case <-ctx.Done():
		return js.Undefined(), ctx.Err()
	}
}

// jsError turns a rejection reason into a Go error carrying only the reason's message.
func jsError(args []js.Value) error {
	if len(args) == 0 {
		return errors.New("promise rejected")
	}
	r := args[0]
	if r.Type() == js.TypeObject {
		if m := r.Get("message"); m.Type() == js.TypeString {
			return errors.New(m.String())
		}
	}
	if r.Type() == js.TypeString {
		return errors.New(r.String())
	}
	return errors.New("promise rejected")
}

// catch runs fn and turns a panic (syscall/js panics when a JS call throws) into an error carrying only the JS
// error's message. Every goroutine jsbind starts runs its JS calls under catch: an unrecovered panic outside a
// request handler would end the Go runtime and with it every request of the isolate.
func catch(fn func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			if e, ok := r.(js.Error); ok {
				err = jsError([]js.Value{e.Value})
				return
			}
			err = errors.New("panic in a JS call")
		}
	}()
	return fn()
}

// newPromise returns a JS promise settled by run, which runs on its own goroutine; it resolves with undefined.
func newPromise(run func() error) js.Value {
	return newValuePromise(func() (js.Value, error) { return js.Undefined(), run() })
}

// newValuePromise returns a JS promise settled by run, which runs on its own goroutine. A panic in run (a JS
// exception included) rejects the promise instead of ending the runtime.
func newValuePromise(run func() (js.Value, error)) js.Value {
	var executor js.Func
	executor = js.FuncOf(func(_ js.Value, args []js.Value) any {
		defer executor.Release()
		resolve, reject := args[0], args[1]
		go func() {
			v := js.Undefined()
			err := catch(func() error {
				var err error
				v, err = run()
				return err
			})
			if err != nil {
				reject.Invoke(js.Global().Get("Error").New(err.Error()))
				return
			}
			resolve.Invoke(v)
		}()
		return nil
	})
	return js.Global().Get("Promise").New(executor)
}
