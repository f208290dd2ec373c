package gojs

import (
	"context"
	"crypto/rand"
	"math"
	"time"
	"unicode/utf8"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/sys"

	"github.com/evmlb/evmlb/host/internal/jsrt"
)

// Install instantiates, in r, the host modules a Go js/wasm program imports: `gojs` (all of wasm_exec.js's
// functions), `workers` (ready, from github.com/syumai/workers) and `evmlb` (the host contract's byte bridge, to
// Options.Bridge). Once per wazero runtime; the functions find their Runtime through the context of the call.
func Install(ctx context.Context, r wazero.Runtime) error {
	b := r.NewHostModuleBuilder("gojs")
	for name, fn := range imports {
		b.NewFunctionBuilder().
			WithGoModuleFunction(stackFunc(fn), []api.ValueType{api.ValueTypeI32}, nil).
			Export(name)
	}
	if _, err := b.Instantiate(ctx); err != nil {
		return err
	}
	_, err := r.NewHostModuleBuilder("workers").NewFunctionBuilder().
		WithGoModuleFunction(api.GoModuleFunc(func(ctx context.Context, _ api.Module, _ []uint64) {
			if rt := runtimeOf(ctx); rt.opts.OnReady != nil {
				rt.opts.OnReady()
			}
		}), nil, nil).
		Export("ready").
		Instantiate(ctx)
	if err != nil {
		return err
	}
	i32 := api.ValueTypeI32
	_, err = r.NewHostModuleBuilder("evmlb").
		NewFunctionBuilder().WithGoModuleFunction(bridgeFunc(func(b Bridge, mem api.Memory, a []uint64) {
		b.Deliver(mem, uint32(a[0]), uint32(a[1]), int32(a[2]), uint32(a[3]), int32(a[4]))
	}), []api.ValueType{i32, i32, i32, i32, i32}, nil).Export("deliver").
		NewFunctionBuilder().WithGoModuleFunction(bridgeFunc(func(b Bridge, mem api.Memory, a []uint64) {
		b.Take(mem, uint32(a[0]), uint32(a[1]))
	}), []api.ValueType{i32, i32}, nil).Export("take").
		NewFunctionBuilder().WithGoModuleFunction(bridgeFunc(func(b Bridge, mem api.Memory, a []uint64) {
		b.Body(mem, uint32(a[0]), uint32(a[1]))
	}), []api.ValueType{i32, i32}, nil).Export("body").
		Instantiate(ctx)
	return err
}

// Bridge is the host side of the import module `evmlb` (CONTRACT.md §1): Go hands bytes over and takes them by
// address and length in its memory. Called on the loop, from inside Go; none of them may call Go.
type Bridge interface {
	Deliver(mem api.Memory, call, msg uint32, msgLen int32, body uint32, bodyLen int32)
	Take(mem api.Memory, text, body uint32)
	Body(mem api.Memory, call, dst uint32)
}

func bridgeFunc(fn func(Bridge, api.Memory, []uint64)) api.GoModuleFunc {
	return func(ctx context.Context, mod api.Module, stack []uint64) {
		if b := runtimeOf(ctx).opts.Bridge; b != nil {
			fn(b, mod.Memory(), stack)
		}
	}
}

func runtimeOf(ctx context.Context) *Runtime { return ctx.Value(ctxKey{}).(*Runtime) }

// stackFunc adapts an import to Go's calling convention: one i32, the stack pointer, with the arguments and
// results at sp+8 onwards. When Go exited during the import (a nested call), the import unwinds the caller too.
func stackFunc(fn func(*frame)) api.GoModuleFunc {
	return func(ctx context.Context, mod api.Module, stack []uint64) {
		rt := runtimeOf(ctx)
		f := &frame{rt: rt, mem: mod.Memory(), sp: uint32(stack[0]), seen: rt.reentries}
		fn(f)
		if rt.exited {
			panic(sys.NewExitError(1))
		}
	}
}

// frame reads an import's arguments and writes its results.
type frame struct {
	rt   *Runtime
	mem  api.Memory
	sp   uint32
	seen uint64
}

// resync re-reads Go's stack pointer if Go ran since the import began (its stack may have moved).
func (f *frame) resync() {
	if f.rt.reentries == f.seen || f.rt.exited {
		return
	}
	res, err := f.rt.call("getsp")
	if err != nil {
		f.rt.exit(err)
		return
	}
	f.sp, f.seen = uint32(res[0]), f.rt.reentries
}

func (f *frame) u64(off uint32) uint64 {
	v, _ := f.mem.ReadUint64Le(f.sp + off)
	return v
}
func (f *frame) i64(off uint32) int64 { return int64(f.u64(off)) }
func (f *frame) u32(off uint32) uint32 {
	v, _ := f.mem.ReadUint32Le(f.sp + off)
	return v
}
func (f *frame) setU64(off uint32, v uint64) { f.mem.WriteUint64Le(f.sp+off, v) }
func (f *frame) setU32(off uint32, v uint32) { f.mem.WriteUint32Le(f.sp+off, v) }
func (f *frame) setBool(off uint32, b bool) {
	var v byte
	if b {
		v = 1
	}
	f.mem.WriteByte(f.sp+off, v)
}

// value loads the ref at off.
func (f *frame) value(off uint32) jsrt.Value { return f.rt.refs.load(f.u64(off)) }

// setValue stores v as a ref at off.
func (f *frame) setValue(off uint32, v jsrt.Value) { f.setU64(off, f.rt.refs.store(v)) }

// bytes is the slice (ptr, len) at off, a view of the guest's memory.
func (f *frame) bytes(off uint32) []byte {
	p, n := f.u64(off), f.u64(off+8)
	b, ok := f.mem.Read(uint32(p), uint32(n))
	if !ok {
		panic("gojs: slice out of memory range")
	}
	return b
}

func (f *frame) str(off uint32) string { return string(f.bytes(off)) }

// values loads a []ref at off.
func (f *frame) values(off uint32) []jsrt.Value {
	p, n := uint32(f.u64(off)), uint32(f.u64(off+8))
	out := make([]jsrt.Value, n)
	for i := range out {
		r, _ := f.mem.ReadUint64Le(p + uint32(i)*8)
		out[i] = f.rt.refs.load(r)
	}
	return out
}

// result stores the outcome of a call that may have thrown: (ref, ok) at off and off+8.
func (f *frame) result(off uint32, v jsrt.Value, err error) {
	f.resync()
	if f.rt.exited {
		return
	}
	if err != nil {
		f.setValue(off, jsrt.ThrownValue(f.rt.realm, err))
		f.setBool(off+8, false)
		return
	}
	f.setValue(off, v)
	f.setBool(off+8, true)
}

// preparedString is valuePrepareString's result, held in the table until Go copies it out.
type preparedString struct{ b []byte }

// imports are the functions of wasm_exec.js's importObject.gojs, by name; offsets follow Go's stack layout.
var imports = map[string]func(*frame){
	"runtime.wasmExit": func(f *frame) {
		code := int32(f.u32(8))
		f.rt.exit(sys.NewExitError(uint32(code)))
		_ = f.rt.mod.CloseWithExitCode(context.Background(), uint32(code))
	},
	"runtime.wasmWrite": func(f *frame) {
		p, n := f.u64(16), f.u32(24)
		if b, ok := f.mem.Read(uint32(p), n); ok && f.rt.opts.Log != nil {
			f.rt.opts.Log.Write(b)
		}
	},
	"runtime.resetMemoryDataView": func(*frame) {},
	"runtime.nanotime1": func(f *frame) {
		epoch := f.rt.epoch // nanotime1 is anchored to the wall clock, as wasm_exec.js does, while staying monotonic
		f.setU64(8, uint64(epoch.UnixNano()+int64(f.rt.realm.Loop.Now().Sub(epoch))))
	},
	"runtime.walltime": func(f *frame) {
		now := f.rt.realm.Loop.Now() // the loop's clock: the host's (a test's fake one moves only when advanced)
		f.setU64(8, uint64(now.Unix()))
		f.setU32(16, uint32(now.Nanosecond()))
	},
	"runtime.scheduleTimeoutEvent": func(f *frame) {
		rt := f.rt
		delay := time.Duration(f.i64(8)) * time.Millisecond
		rt.nextTimeout++
		id := rt.nextTimeout
		rt.timeouts[id] = rt.realm.Loop.SetTimeout(delay, func() {
			// Go clears the timeout when it handles it; resume until it did (wasm_exec.js does the same).
			for range 3 {
				if rt.resume() != nil {
					return
				}
				if _, pending := rt.timeouts[id]; !pending {
					return
				}
			}
			delete(rt.timeouts, id)
		})
		f.setU32(16, uint32(id))
	},
	"runtime.clearTimeoutEvent": func(f *frame) {
		id := int32(f.u32(8))
		if t, ok := f.rt.timeouts[id]; ok {
			f.rt.realm.Loop.ClearTimeout(t)
			delete(f.rt.timeouts, id)
		}
	},
	"runtime.getRandomData": func(f *frame) {
		_, _ = rand.Read(f.bytes(8))
	},
	"syscall/js.finalizeRef": func(f *frame) {
		f.rt.refs.release(f.u32(8))
	},
	"syscall/js.stringVal": func(f *frame) {
		f.setValue(24, f.str(8))
	},
	"syscall/js.valueGet": func(f *frame) {
		v := jsrt.Get(f.value(8), f.str(16))
		f.resync()
		f.setValue(32, v)
	},
	"syscall/js.valueSet": func(f *frame) {
		if o, ok := f.value(8).(jsrt.Object); ok {
			o.Set(f.str(16), f.value(32))
		}
	},
	"syscall/js.valueDelete": func(f *frame) {
		if o, ok := f.value(8).(jsrt.Object); ok {
			o.Delete(f.str(16))
		}
	},
	"syscall/js.valueIndex": func(f *frame) {
		var v jsrt.Value = jsrt.Undefined
		if o, ok := f.value(8).(jsrt.Indexer); ok {
			v = o.Index(int(f.i64(16)))
		}
		f.setValue(24, v)
	},
	"syscall/js.valueSetIndex": func(f *frame) {
		if o, ok := f.value(8).(jsrt.Indexer); ok {
			o.SetIndex(int(f.i64(16)), f.value(24))
		}
	},
	"syscall/js.valueCall": func(f *frame) {
		v, name, args := f.value(8), f.str(16), f.values(32)
		res, err := jsrt.Invoke(f.rt.realm, v, name, args...)
		f.result(56, res, err)
	},
	"syscall/js.valueInvoke": func(f *frame) {
		fn, args := f.value(8), f.values(16)
		res, err := jsrt.Call(f.rt.realm, fn, jsrt.Undefined, args...)
		f.result(40, res, err)
	},
	"syscall/js.valueNew": func(f *frame) {
		ctor, args := f.value(8), f.values(16)
		var res jsrt.Value
		var err error
		if c, ok := ctor.(jsrt.Constructor); ok {
			res, err = c.Construct(args)
		} else {
			err = jsrt.Throw(f.rt.realm.NewTypeError("value is not a constructor"))
		}
		f.result(40, res, err)
	},
	"syscall/js.valueLength": func(f *frame) {
		n := jsrt.ToNumber(jsrt.Get(f.value(8), "length"))
		if math.IsNaN(n) {
			n = 0
		}
		f.setU64(16, uint64(int64(n)))
	},
	"syscall/js.valuePrepareString": func(f *frame) {
		s := jsrt.ToString(f.value(8))
		if !utf8.ValidString(s) {
			s = string([]rune(s))
		}
		f.resync()
		f.setValue(16, &preparedString{b: []byte(s)})
		f.setU64(24, uint64(len(s)))
	},
	"syscall/js.valueLoadString": func(f *frame) {
		if p, ok := f.value(8).(*preparedString); ok {
			copy(f.bytes(16), p.b)
		}
	},
	"syscall/js.valueInstanceOf": func(f *frame) {
		v, t := f.value(8), f.value(16)
		o, ok := v.(interface{ InstanceOf(jsrt.Value) bool })
		f.setBool(24, ok && o.InstanceOf(t))
	},
	"syscall/js.copyBytesToGo": func(f *frame) {
		dst := f.bytes(8)
		src, ok := f.value(32).(*jsrt.Uint8Array)
		if !ok {
			f.setBool(48, false)
			return
		}
		n := copy(dst, src.Bytes())
		f.setU64(40, uint64(n))
		f.setBool(48, true)
	},
	"syscall/js.copyBytesToJS": func(f *frame) {
		dst, ok := f.value(8).(*jsrt.Uint8Array)
		if !ok {
			f.setBool(48, false)
			return
		}
		n := copy(dst.Bytes(), f.bytes(16))
		f.setU64(40, uint64(n))
		f.setBool(48, true)
	},
	"debug": func(f *frame) {},
}
