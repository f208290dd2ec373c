//go:build js && wasm

package jsbind

import (
	"context"
	"errors"
	"net/http"
	"syscall/js"

	"github.com/evmlb/evmlb/internal/platform"
)

// namespace is a Durable Object namespace binding of context.env (CONTRACT.md §2).
type namespace struct{ binding string }

var _ platform.Namespace = namespace{}

// Namespace returns the Durable Object namespace bound to the environment name binding.
func Namespace(binding string) platform.Namespace { return namespace{binding: binding} }

// Fetch sends req to the instance named name: env[binding].get(env[binding].idFromName(name)).fetch(request). A
// context that ends first makes Fetch return ctx.Err(); the request's AbortController is signalled.
func (n namespace) Fetch(ctx context.Context, name string, req *http.Request) (*http.Response, error) {
	var stub js.Value
	err := catch(func() error {
		ns := js.Global().Get("context").Get("env").Get(n.binding)
		if ns.Type() != js.TypeObject {
			return errors.New("durable object binding " + n.binding + " is missing")
		}
		stub = ns.Call("get", ns.Call("idFromName", name))
		return nil
	})
	if err != nil {
		return nil, err
	}
	// Whole: an object's answer is the balancer's own, already bounded by EVMLB_MAX_RESPONSE_BYTES.
	return roundTrip(req.WithContext(ctx), true, func(url string, init js.Value) js.Value {
		return stub.Call("fetch", js.Global().Get("Request").New(url, init))
	})
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
