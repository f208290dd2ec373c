// Package gojs runs a GOOS=js GOARCH=wasm program on wazero: it implements Go's `gojs` import module (what
// Go's lib/wasm/wasm_exec.js gives the program: runtime.* and syscall/js.*), the reference table that names
// JS values for Go, and the `_pendingEvent`/`resume` protocol through which JS calls Go functions (js.FuncOf).
//
// A Runtime belongs to the goroutine that runs its realm's jsrt.Loop: Start, every call into Go and every
// timer run there. The JS values Go sees are those of the realm (package jsrt); which globals exist is up to the
// caller (package jsworld).
package gojs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/sys"

	"github.com/evmlb/evmlb/host/internal/jsrt"
)

// Options configure a Runtime.
type Options struct {
	Realm *jsrt.Realm
	// Log receives what the Go runtime itself writes (runtime.wasmWrite: panics, println).
	Log io.Writer
	// OnReady is called when Go calls the import workers.ready.
	OnReady func()
	// OnExit is called once, on the loop, when the program exits or traps. The runtime is dead afterwards.
	OnExit func(err error)
	// Bridge receives the calls of the import module evmlb; nil ignores them.
	Bridge Bridge
}

// Runtime is one instance of a Go wasm program.
type Runtime struct {
	opts  Options
	realm *jsrt.Realm
	ctx   context.Context
	mod   api.Module
	refs  *refTable
	goObj *goObject

	fns       map[fnKey]api.Function // exports by nesting depth: a call engine must not be re-entered
	depth     int
	reentries uint64 // counts calls into Go, so imports know when Go's stack may have moved

	epoch       time.Time     // the loop's clock when the runtime started: nanotime1 counts from it
	timeouts    map[int32]int // Go's timeout ids → loop timer ids
	nextTimeout int32

	exited  bool
	exitErr error
}

type fnKey struct {
	name  string
	depth int
}

type ctxKey struct{}

// ErrExited is returned for calls into a program that has exited.
var ErrExited = errors.New("Go program has already exited")

// ErrClosed is the exit error of a runtime the host closed.
var ErrClosed = errors.New("runtime closed")

// Start instantiates compiled (whose host modules were set up with Install) and runs the program until it first
// waits for events. Call it on the realm's loop.
func Start(ctx context.Context, r wazero.Runtime, compiled wazero.CompiledModule, opts Options) (*Runtime, error) {
	rt := &Runtime{
		opts:     opts,
		realm:    opts.Realm,
		epoch:    opts.Realm.Loop.Now(),
		fns:      map[fnKey]api.Function{},
		timeouts: map[int32]int{},
	}
	rt.goObj = &goObject{rt: rt}
	rt.refs = newRefTable(opts.Realm.Global, rt.goObj)
	rt.ctx = context.WithValue(ctx, ctxKey{}, rt)
	mod, err := r.InstantiateModule(rt.ctx, compiled, wazero.NewModuleConfig().WithName("").WithStartFunctions())
	if err != nil {
		return nil, fmt.Errorf("instantiate: %w", err)
	}
	rt.mod = mod
	argc, argv, err := writeArgs(mod.Memory())
	if err != nil {
		mod.Close(ctx)
		return nil, err
	}
	rt.reentries++
	if _, err := rt.call("run", uint64(argc), uint64(argv)); err != nil {
		rt.exit(err)
	}
	return rt, nil
}

// writeArgs writes argv ["js"] and an empty environment where wasm_exec.js puts them.
func writeArgs(mem api.Memory) (argc, argv uint32, err error) {
	const base = 4096
	ok := mem.Write(base, []byte("js\x00\x00\x00\x00\x00\x00"))
	argv = base + 8
	for i, p := range []uint64{base, 0, 0} { // argv[0], end of argv, end of environment
		ok = ok && mem.WriteUint64Le(argv+uint32(i)*8, p)
	}
	if !ok {
		return 0, 0, errors.New("memory too small for arguments")
	}
	return 1, argv, nil
}

// call calls an export, with a separate function instance per nesting depth.
func (rt *Runtime) call(name string, params ...uint64) ([]uint64, error) {
	k := fnKey{name, rt.depth}
	fn := rt.fns[k]
	if fn == nil {
		fn = rt.mod.ExportedFunction(name)
		if fn == nil {
			return nil, fmt.Errorf("module does not export %s: not a GOOS=js program", name)
		}
		rt.fns[k] = fn
	}
	rt.depth++
	defer func() { rt.depth-- }()
	return fn.Call(rt.ctx, params...)
}

// resume lets Go handle the pending event or expired timers.
func (rt *Runtime) resume() error {
	if rt.exited {
		return ErrExited
	}
	rt.reentries++
	if _, err := rt.call("resume"); err != nil {
		rt.exit(err)
	}
	if rt.exited {
		return rt.exitErr
	}
	return nil
}

// exit marks the runtime dead and reports it once.
func (rt *Runtime) exit(err error) {
	if rt.exited {
		return
	}
	var ee *sys.ExitError
	if errors.As(err, &ee) {
		err = fmt.Errorf("Go program exited with code %d", ee.ExitCode())
	}
	rt.exited, rt.exitErr = true, err
	for id, t := range rt.timeouts {
		rt.realm.Loop.ClearTimeout(t)
		delete(rt.timeouts, id)
	}
	if rt.opts.OnExit != nil {
		rt.opts.OnExit(err)
	}
}

// Exited reports whether the program has exited, and why.
func (rt *Runtime) Exited() (bool, error) { return rt.exited, rt.exitErr }

// LiveRefs is the number of JS values Go currently holds references to (beyond the predefined ones).
func (rt *Runtime) LiveRefs() int { return rt.refs.live() }

// RefsMade counts the references Go was given to JS values it held none to, since the start: each costs Go a
// finalizer and several crossings.
func (rt *Runtime) RefsMade() uint64 { return rt.refs.made }

// MemoryBytes is the size of the program's linear memory.
func (rt *Runtime) MemoryBytes() uint32 {
	if rt.exited {
		return 0
	}
	return rt.mod.Memory().Size()
}

// Close releases the module instance.
func (rt *Runtime) Close() {
	if !rt.exited {
		rt.exit(ErrClosed)
	}
	if rt.mod != nil {
		rt.mod.Close(context.Background())
	}
}

// goFunc is the JS function that _makeFuncWrapper returns: calling it runs the js.Func with that id in Go.
type goFunc struct {
	jsrt.Base
	rt *Runtime
	id float64
}

// Call delivers the call as Go's pending event and resumes Go, which handles it synchronously.
func (f *goFunc) Call(this jsrt.Value, args []jsrt.Value) (jsrt.Value, error) {
	rt := f.rt
	if rt.exited {
		return nil, ErrExited
	}
	ev := rt.realm.NewObject("id", f.id, "this", this, "args", rt.realm.NewArray(append([]jsrt.Value(nil), args...)...))
	rt.goObj.pending = ev
	if err := rt.resume(); err != nil {
		return nil, err
	}
	return ev.Get("result"), nil
}

// goObject is the `this` of wasm_exec.js's Go class as Go sees it (syscall/js's jsGo).
type goObject struct {
	jsrt.Base
	rt      *Runtime
	pending jsrt.Value
}

func (g *goObject) Get(key string) jsrt.Value {
	switch key {
	case "_pendingEvent":
		if g.pending == nil {
			return nil
		}
		return g.pending
	case "_makeFuncWrapper":
		return jsrt.Method(key, func(args []jsrt.Value) (jsrt.Value, error) {
			return &goFunc{rt: g.rt, id: jsrt.ToNumber(jsrt.Arg(args, 0))}, nil
		})
	}
	return g.Base.Get(key)
}

func (g *goObject) Set(key string, v jsrt.Value) {
	if key == "_pendingEvent" {
		g.pending = v
		return
	}
	g.Base.Set(key, v)
}
