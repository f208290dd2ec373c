// Package jsworld is the JavaScript world of the host contract (CONTRACT.md section 2) for the wazero host:
// fs and process (for Go's syscall package; fd 1 and 2 go to the log) and `context` with the environment, the
// host's kind and the binding Go fills. Nothing in it performs I/O: since contract version 3 every fetch, object
// call, storage call and timer is a message of a call (package server).
//
// The I/O globals of earlier versions (fetch, Request, Response, Headers, streams, AbortController, timers,
// context.host.state, the Durable Object namespaces in context.env) are traps: calling or constructing one logs
// a protocol violation and throws `I/O outside the call protocol`, so that a regression fails loudly in tests.
//
// A World belongs to the goroutine running its realm's loop.
package jsworld

import (
	"io"
	"sort"

	"github.com/evmlb/evmlb/host/internal/jsrt"
	"github.com/evmlb/evmlb/internal/contract"
)

// Config is what a World is made of.
type Config struct {
	// Env holds the variables and secrets of context.env (strings).
	Env map[string]string
	// Log receives fd 1 and 2 and console output.
	Log io.Writer
	// Kind is context.host.kind; "wazero" when empty.
	Kind string
	// MemoryBytes is context.host.memoryBytes(): the program's linear memory now. Called on the loop.
	MemoryBytes func() uint32
	// Violation is called (on the loop) when the program touches a trapped global; what names it.
	Violation func(what string)
}

// World is one JS world: the globals Go sees.
type World struct {
	cfg     Config
	realm   *jsrt.Realm
	binding *jsrt.Plain
}

// ErrOutsideProtocol is the message of what a trap throws.
const ErrOutsideProtocol = "I/O outside the call protocol"

// trapped are the globals of earlier contract versions (and the web platform's other I/O) that Go must not use.
var trapped = []string{
	"fetch", "Request", "Response", "Headers", "ReadableStream", "WritableStream", "TransformStream",
	"AbortController", "AbortSignal", "setTimeout", "setInterval", "clearTimeout", "clearInterval",
	"caches", "WebSocket",
}

// New installs the world's globals in realm.
func New(realm *jsrt.Realm, cfg Config) *World {
	if cfg.Log == nil {
		cfg.Log = io.Discard
	}
	if cfg.Kind == "" {
		cfg.Kind = contract.HostWazero
	}
	if cfg.Violation == nil {
		cfg.Violation = func(string) {}
	}
	w := &World{cfg: cfg, realm: realm}
	g := realm.Global
	for _, name := range trapped {
		g.Set(name, w.trap(name))
	}
	g.Set("fs", w.newFS())
	g.Set("process", w.newProcess())

	env := realm.NewObject()
	keys := make([]string, 0, len(cfg.Env))
	for k := range cfg.Env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		env.Set(k, cfg.Env[k])
	}
	for _, ns := range []string{contract.BindingChain, contract.BindingUpstream, contract.BindingSubs, contract.BindingBudget} {
		env.Set(ns, w.trap("context.env."+ns))
	}
	w.binding = realm.NewObject()
	host := realm.NewObject("kind", cfg.Kind, "state", w.trap("context.host.state"))
	if cfg.MemoryBytes != nil {
		host.Set("memoryBytes", jsrt.Method("memoryBytes", func([]jsrt.Value) (jsrt.Value, error) {
			return float64(cfg.MemoryBytes()), nil
		}))
	}
	g.Set("context", realm.NewObject("env", env, "binding", w.binding, "host", host))
	return w
}

// Realm is the world's realm.
func (w *World) Realm() *jsrt.Realm { return w.realm }

// Binding is context.binding, which Go fills.
func (w *World) Binding() *jsrt.Plain { return w.binding }

// Trap is a global Go must not use: reading its properties yields more traps; calling or constructing any of
// them reports a violation and throws.
type Trap struct {
	jsrt.Base
	w    *World
	name string
}

func (w *World) trap(name string) *Trap { return &Trap{w: w, name: name} }

// Get implements jsrt.Object.
func (t *Trap) Get(key string) jsrt.Value {
	if v, ok := t.Base.Own(key); ok {
		return v
	}
	return t.w.trap(t.name + "." + key)
}

// Call implements jsrt.Callable.
func (t *Trap) Call(jsrt.Value, []jsrt.Value) (jsrt.Value, error) {
	return nil, t.spring(t.name + "()")
}

// Construct implements jsrt.Constructor.
func (t *Trap) Construct([]jsrt.Value) (jsrt.Value, error) {
	return nil, t.spring("new " + t.name + "()")
}

func (t *Trap) spring(what string) error {
	msg := ErrOutsideProtocol + ": " + what
	t.w.cfg.Violation(msg)
	return jsrt.Throw(t.w.realm.NewTypeError(msg))
}

// Every host object must be a jsrt.Object, or Go could not see its properties.
var (
	_ jsrt.Object      = (*Trap)(nil)
	_ jsrt.Callable    = (*Trap)(nil)
	_ jsrt.Constructor = (*Trap)(nil)
	_ jsrt.Object      = (*fsObject)(nil)
)
