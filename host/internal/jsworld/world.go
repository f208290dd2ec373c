// Package jsworld is the JavaScript world of the host contract (CONTRACT.md section 2) for the wazero host:
// Headers, Request, Response, ReadableStream, AbortController, fetch (over net/http), fs and process (for Go's
// syscall package; fd 1 and 2 go to the log), and `context` with the environment, the Durable Object
// namespaces, their instances' storage (package store) and alarms.
//
// A World belongs to the goroutine running its realm's loop. Network and storage I/O run on other goroutines
// and post their completions back to the loop.
package jsworld

import (
	"context"
	"io"
	"net/http"
	"sort"

	"github.com/evmlb/evmlb/host/internal/jsrt"
	"github.com/evmlb/evmlb/host/internal/store"
)

// Config is what a World is made of.
type Config struct {
	// Env holds the variables and secrets of context.env (strings).
	Env map[string]string
	// DB persists Durable Object storage and alarms. Nil disables storage (state(id).storage rejects).
	DB *store.DB
	// Log receives fd 1 and 2, console output and the host's own lines.
	Log io.Writer
	// Client sends fetch requests; nil means a default client.
	Client *http.Client
	// Kind is context.host.kind; "wazero" when empty.
	Kind string
}

// World is one JS world: the globals Go sees, and the Durable Object instances living in it.
type World struct {
	cfg    Config
	realm  *jsrt.Realm
	loop   *jsrt.Loop
	ctx    context.Context
	cancel context.CancelFunc
	io     *serial

	binding *jsrt.Plain
	env     *jsrt.Plain

	headersCtor, requestCtor, responseCtor, streamCtor, abortCtor *jsrt.Func

	instances map[string]*instance // live Durable Object instances by id
	alarms    map[string]*armedAlarm
}

// New installs the world's globals in realm.
func New(realm *jsrt.Realm, cfg Config) *World {
	if cfg.Client == nil {
		cfg.Client = &http.Client{}
	}
	if cfg.Log == nil {
		cfg.Log = io.Discard
	}
	if cfg.Kind == "" {
		cfg.Kind = "wazero"
	}
	w := &World{
		cfg:       cfg,
		realm:     realm,
		loop:      realm.Loop,
		io:        newSerial(),
		instances: map[string]*instance{},
		alarms:    map[string]*armedAlarm{},
	}
	w.ctx, w.cancel = context.WithCancel(context.Background())
	g := realm.Global

	w.headersCtor = &jsrt.Func{Name: "Headers", New: func(a []jsrt.Value) (jsrt.Value, error) { return w.headersFrom(jsrt.Arg(a, 0)) }}
	w.requestCtor = &jsrt.Func{Name: "Request", New: w.newRequest}
	w.responseCtor = &jsrt.Func{Name: "Response", New: w.newResponse}
	w.streamCtor = &jsrt.Func{Name: "ReadableStream", New: func(a []jsrt.Value) (jsrt.Value, error) {
		return w.NewStream(jsSource{w: w, obj: jsrt.Arg(a, 0)}), nil
	}}
	w.abortCtor = &jsrt.Func{Name: "AbortController", New: w.newAbortController}
	for _, c := range []*jsrt.Func{w.headersCtor, w.requestCtor, w.responseCtor, w.streamCtor, w.abortCtor} {
		g.Set(c.Name, c)
	}
	g.Set("fetch", jsrt.Method("fetch", w.fetch))
	g.Set("fs", w.newFS())
	g.Set("process", w.newProcess())

	w.env = realm.NewObject()
	keys := make([]string, 0, len(cfg.Env))
	for k := range cfg.Env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		w.env.Set(k, cfg.Env[k])
	}
	w.env.Set(bindingChain, w.newNamespace(classChain, roleChain))
	w.env.Set(bindingUpstream, w.newNamespace(classUpstream, roleUpstream))
	w.binding = realm.NewObject()
	host := realm.NewObject("kind", cfg.Kind)
	host.Set("state", jsrt.Method("state", func(a []jsrt.Value) (jsrt.Value, error) {
		if inst, ok := w.instances[jsrt.ToString(jsrt.Arg(a, 0))]; ok {
			return inst.state, nil
		}
		return jsrt.Undefined, nil
	}))
	g.Set("context", realm.NewObject("env", w.env, "ctx", jsrt.Undefined, "binding", w.binding, "host", host))
	return w
}

// Realm is the world's realm.
func (w *World) Realm() *jsrt.Realm { return w.realm }

// Binding is context.binding, which Go fills.
func (w *World) Binding() *jsrt.Plain { return w.binding }

// Logf writes one line to the log.
func (w *World) Logf(line string) { io.WriteString(w.cfg.Log, line+"\n") }

// HandleRequest hands req to Go's binding.handleRequest and returns the promise of its Response.
func (w *World) HandleRequest(req *Request) *jsrt.Promise {
	res, err := jsrt.Invoke(w.realm, w.binding, "handleRequest", req)
	if err != nil {
		return w.realm.RejectedWith(jsrt.ThrownValue(w.realm, err))
	}
	return w.realm.Resolved(res)
}

// Close cancels outbound requests and stops the storage worker; pending storage calls still complete.
func (w *World) Close() {
	w.cancel()
	for id, a := range w.alarms {
		w.loop.ClearTimeout(a.timer)
		delete(w.alarms, id)
	}
	w.io.close()
}
