//go:build js && wasm

package jsbind

import (
	"context"
	"errors"
	"net/http"
	"syscall/js"

	"github.com/evmlb/evmlb/internal/platform"
	"github.com/syumai/workers/cloudflare"
)

// namespace is a Durable Object namespace binding, reached through github.com/syumai/workers.
type namespace struct{ binding string }

var _ platform.Namespace = namespace{}

// Namespace returns the Durable Object namespace bound to the environment name binding.
func Namespace(binding string) platform.Namespace { return namespace{binding: binding} }

// Fetch sends req to the instance named name. syumai/workers' stub has no cancellation, so when ctx ends first
// Fetch returns ctx.Err() and a late response's body is closed.
func (n namespace) Fetch(ctx context.Context, name string, req *http.Request) (*http.Response, error) {
	ns, err := cloudflare.NewDurableObjectNamespace(n.binding)
	if err != nil {
		return nil, errors.New("durable object binding " + n.binding + " is missing")
	}
	stub, err := ns.Get(ns.IdFromName(name))
	if err != nil {
		return nil, err
	}
	type result struct {
		res *http.Response
		err error
	}
	ch := make(chan result, 1)
	go func() {
		var r result
		r.err = catch(func() error {
			var err error
			r.res, err = stub.Fetch(req)
			return err
		})
		ch <- r
	}()
	select {
	case r := <-ch:
		return r.res, r.err
	case <-ctx.Done():
		go func() {
			if r := <-ch; r.res != nil {
				_ = catch(r.res.Body.Close)
			}
		}()
		return nil, ctx.Err()
	}
}

// Getenv reads a string variable or secret from context.env; "" when unset or not a string.
func Getenv(name string) string {
	v := js.Global().Get("context").Get("env").Get(name)
	if v.Type() != js.TypeString {
		return ""
	}
	return v.String()
}

// HostKind is context.host.kind ("workerd", "wazero").
func HostKind() string {
	v := js.Global().Get("context").Get("host").Get("kind")
	if v.Type() != js.TypeString {
		return "unknown"
	}
	return v.String()
}

// RegisterAlarm sets binding.handleAlarm(role, objectId, retryCount) to call fn; and binding.contractVersion.
func RegisterAlarm(version int, fn func(ctx context.Context, role, objectID string, retryCount int) error) {
	b := js.Global().Get("context").Get("binding")
	b.Set("contractVersion", version)
	b.Set("handleAlarm", js.FuncOf(func(_ js.Value, args []js.Value) any {
		if len(args) < 2 {
			return js.Global().Get("Promise").Call("reject", js.Global().Get("Error").New("handleAlarm(role, objectId, retryCount)"))
		}
		role, id := args[0].String(), args[1].String()
		retry := 0
		if len(args) > 2 && args[2].Type() == js.TypeNumber {
			retry = args[2].Int()
		}
		return newPromise(func() error { return fn(context.Background(), role, id, retry) })
	}))
}
