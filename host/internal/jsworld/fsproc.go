package jsworld

import (
	"os"

	"github.com/evmlb/evmlb/host/internal/jsrt"
)

// fsObject is the `fs` global: enough of Node's fs for Go's syscall/fs_js.go. write to fd 1 or 2 goes to the
// log, one write per Go write; everything else fails with ENOSYS, as in wasm_exec.js.
type fsObject struct {
	jsrt.Base
	w *World
}

func (w *World) newFS() *fsObject {
	f := &fsObject{w: w}
	consts := w.realm.NewObject()
	for _, k := range []string{"O_WRONLY", "O_RDWR", "O_CREAT", "O_TRUNC", "O_APPEND", "O_EXCL", "O_DIRECTORY"} {
		consts.Set(k, -1.0)
	}
	f.Set("constants", consts)
	return f
}

func (f *fsObject) enosys() jsrt.Value {
	e := f.w.realm.NewError("not implemented")
	e.Set("code", "ENOSYS")
	return e
}

// Get implements jsrt.Object.
func (f *fsObject) Get(key string) jsrt.Value {
	if v, ok := f.Base.Own(key); ok {
		return v
	}
	r := f.w.realm
	switch key {
	case "writeSync":
		return jsrt.Method(key, func(a []jsrt.Value) (jsrt.Value, error) {
			u, _ := jsrt.Arg(a, 1).(*jsrt.Uint8Array)
			if u == nil {
				return 0.0, nil
			}
			f.w.cfg.Log.Write(u.Bytes())
			return float64(u.Length), nil
		})
	case "write":
		// write(fd, buf, offset, length, position, callback)
		return jsrt.Method(key, func(a []jsrt.Value) (jsrt.Value, error) {
			cb := a[len(a)-1]
			fd := jsrt.ToNumber(jsrt.Arg(a, 0))
			u, _ := jsrt.Arg(a, 1).(*jsrt.Uint8Array)
			off, n := int(jsrt.ToNumber(jsrt.Arg(a, 2))), int(jsrt.ToNumber(jsrt.Arg(a, 3)))
			if u == nil || (fd != 1 && fd != 2) || off < 0 || n < 0 || off+n > u.Length || jsrt.Arg(a, 4) != nil {
				return jsrt.Call(r, cb, jsrt.Undefined, f.enosys())
			}
			f.w.cfg.Log.Write(u.Bytes()[off : off+n])
			return jsrt.Call(r, cb, jsrt.Undefined, nil, float64(n))
		})
	case "fsync":
		return jsrt.Method(key, func(a []jsrt.Value) (jsrt.Value, error) {
			return jsrt.Call(r, jsrt.Arg(a, len(a)-1), jsrt.Undefined, nil)
		})
	}
	// Any other function of Node's fs: call the callback (the last argument) with ENOSYS.
	return jsrt.Method(key, func(a []jsrt.Value) (jsrt.Value, error) {
		if len(a) == 0 {
			return nil, jsrt.Throw(f.enosys())
		}
		return jsrt.Call(r, a[len(a)-1], jsrt.Undefined, f.enosys())
	})
}

// newProcess is the `process` global. argv0 must not start with "node": Go's net/http would not use fetch.
func (w *World) newProcess() *jsrt.Plain {
	r := w.realm
	p := r.NewObject("argv0", "wazero", "pid", float64(os.Getpid()), "ppid", -1.0, "title", "evmlb", "env", r.NewObject())
	minus1 := func(name string) {
		p.Set(name, jsrt.Method(name, func([]jsrt.Value) (jsrt.Value, error) { return -1.0, nil }))
	}
	for _, n := range []string{"getuid", "getgid", "geteuid", "getegid"} {
		minus1(n)
	}
	enosys := func(name string) {
		p.Set(name, jsrt.Method(name, func([]jsrt.Value) (jsrt.Value, error) {
			e := r.NewError("not implemented")
			e.Set("code", "ENOSYS")
			return nil, jsrt.Throw(e)
		}))
	}
	for _, n := range []string{"getgroups", "umask", "chdir"} {
		enosys(n)
	}
	p.Set("cwd", jsrt.Method("cwd", func([]jsrt.Value) (jsrt.Value, error) { return "/", nil }))
	return p
}
