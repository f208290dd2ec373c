package jsrt

import (
	"errors"
	"io"
	"strings"
)

// Realm is one JS global environment: the global object, the built-in constructors and the loop.
type Realm struct {
	Loop   *Loop
	Global *Plain

	ObjectCtor, ArrayCtor, ArrayBufferCtor, Uint8ArrayCtor, Uint8ClampedArrayCtor *Func
	DateCtor, ErrorCtor, PromiseCtor, MapCtor                                     *Func
}

// NewRealm returns a realm on loop with the built-ins of CONTRACT.md section 2 that are plain JavaScript
// (Object, Array, Uint8Array, Uint8ClampedArray, ArrayBuffer, Date, Error, TypeError, Promise, Map, tryCatch,
// console). console writes to log.
func NewRealm(loop *Loop, log io.Writer) *Realm {
	r := &Realm{Loop: loop}
	r.Global = &Plain{}
	g := r.Global

	r.ObjectCtor = &Func{Name: "Object", New: func([]Value) (Value, error) { return r.NewObject(), nil }}
	r.ObjectCtor.Fn = func(_ Value, args []Value) (Value, error) {
		if o, ok := Arg(args, 0).(Object); ok {
			return o, nil
		}
		return r.NewObject(), nil
	}
	r.ObjectCtor.Set("entries", Method("entries", func(args []Value) (Value, error) {
		var out []Value
		for _, k := range OwnKeys(Arg(args, 0)) {
			out = append(out, r.NewArray(k, Get(Arg(args, 0), k)))
		}
		return r.NewArray(out...), nil
	}))
	r.ObjectCtor.Set("keys", Method("keys", func(args []Value) (Value, error) {
		var out []Value
		for _, k := range OwnKeys(Arg(args, 0)) {
			out = append(out, k)
		}
		return r.NewArray(out...), nil
	}))

	r.ArrayCtor = &Func{Name: "Array", New: func(args []Value) (Value, error) {
		if len(args) == 1 {
			if n, ok := args[0].(float64); ok {
				elems := make([]Value, int(n))
				for i := range elems {
					elems[i] = Undefined
				}
				return r.NewArray(elems...), nil
			}
		}
		return r.NewArray(append([]Value(nil), args...)...), nil
	}}
	r.ArrayCtor.Set("from", Method("from", func(args []Value) (Value, error) {
		elems, err := r.Iterate(Arg(args, 0))
		if err != nil {
			return nil, err
		}
		return r.NewArray(elems...), nil
	}))
	r.ArrayCtor.Set("isArray", Method("isArray", func(args []Value) (Value, error) {
		_, ok := Arg(args, 0).(*Array)
		return ok, nil
	}))

	r.ArrayBufferCtor = &Func{Name: "ArrayBuffer", New: func(args []Value) (Value, error) {
		return r.NewArrayBuffer(make([]byte, int(ToNumber(Arg(args, 0))))), nil
	}}
	r.Uint8ArrayCtor = &Func{Name: "Uint8Array"}
	r.Uint8ArrayCtor.New = func(args []Value) (Value, error) { return r.newUint8Array(args, false, r.Uint8ArrayCtor) }
	r.Uint8ClampedArrayCtor = &Func{Name: "Uint8ClampedArray"}
	r.Uint8ClampedArrayCtor.New = func(args []Value) (Value, error) {
		return r.newUint8Array(args, true, r.Uint8ClampedArrayCtor)
	}

	r.DateCtor = &Func{Name: "Date", New: func(args []Value) (Value, error) {
		d := &Date{ms: float64(loop.Now().UnixMilli())}
		if len(args) > 0 {
			d.ms = ToNumber(args[0])
		}
		d.Class = r.DateCtor
		return d, nil
	}}
	r.DateCtor.Set("now", Method("now", func([]Value) (Value, error) { return float64(loop.Now().UnixMilli()), nil }))

	r.ErrorCtor = r.errorClass("Error")
	typeError := r.errorClass("TypeError")

	r.PromiseCtor = &Func{Name: "Promise", New: r.newPromise}
	r.PromiseCtor.Set("resolve", Method("resolve", func(args []Value) (Value, error) { return r.Resolved(Arg(args, 0)), nil }))
	r.PromiseCtor.Set("reject", Method("reject", func(args []Value) (Value, error) { return r.RejectedWith(Arg(args, 0)), nil }))

	r.MapCtor = &Func{Name: "Map", New: func([]Value) (Value, error) { return r.NewMap(), nil }}

	g.Set("globalThis", g)
	for _, c := range []*Func{r.ObjectCtor, r.ArrayCtor, r.ArrayBufferCtor, r.Uint8ArrayCtor,
		r.Uint8ClampedArrayCtor, r.DateCtor, r.ErrorCtor, typeError, r.PromiseCtor, r.MapCtor} {
		g.Set(c.Name, c)
	}
	g.Set("tryCatch", Method("tryCatch", func(args []Value) (Value, error) {
		res, err := Call(r, Arg(args, 0), Undefined)
		if err != nil {
			var t *Thrown
			if !asThrown(err, &t) {
				return nil, err
			}
			return r.NewObject("error", t.Value), nil
		}
		return r.NewObject("result", res), nil
	}))
	console := r.NewObject()
	for _, name := range []string{"log", "info", "warn", "error", "debug"} {
		console.Set(name, Method(name, func(args []Value) (Value, error) {
			parts := make([]string, len(args))
			for i, a := range args {
				parts[i] = ToString(a)
			}
			io.WriteString(log, strings.Join(parts, " ")+"\n")
			return Undefined, nil
		}))
	}
	g.Set("console", console)
	return r
}

func (r *Realm) errorClass(name string) *Func {
	c := &Func{Name: name}
	c.New = func(args []Value) (Value, error) {
		e := r.NewError("")
		e.Class = c
		e.Set("name", name)
		if m := Arg(args, 0); m != Undefined {
			e.Set("message", ToString(m))
		}
		if opts, ok := Arg(args, 1).(Object); ok {
			if cause := opts.Get("cause"); cause != Undefined {
				e.Set("cause", cause)
			}
		}
		return e, nil
	}
	c.Fn = func(_ Value, args []Value) (Value, error) { return c.New(args) }
	return c
}

// OwnKeys returns the enumerable own property names of a plain object.
func OwnKeys(v Value) []string {
	if k, ok := v.(interface{ Keys() []string }); ok {
		return append([]string(nil), k.Keys()...)
	}
	return nil
}

// Iterate collects the values of an array, a Map (its entries), an iterator (an object with next()) or an
// object with entries().
func (r *Realm) Iterate(v Value) ([]Value, error) {
	switch x := v.(type) {
	case *Array:
		return append([]Value(nil), x.Elems...), nil
	case *Map:
		return x.Entries(), nil
	case *Uint8Array:
		out := make([]Value, x.Length)
		for i := range out {
			out[i] = x.Index(i)
		}
		return out, nil
	case Object:
		next, ok := x.Get("next").(Callable)
		if !ok {
			if _, ok := x.Get("entries").(Callable); ok {
				it, err := Invoke(r, x, "entries")
				if err != nil {
					return nil, err
				}
				return r.Iterate(it)
			}
			return nil, Throw(r.NewTypeError("object is not iterable"))
		}
		var out []Value
		for {
			res, err := next.Call(x, nil)
			if err != nil {
				return nil, err
			}
			if Truthy(Get(res, "done")) {
				return out, nil
			}
			out = append(out, Get(res, "value"))
		}
	}
	return nil, Throw(r.NewTypeError("value is not iterable"))
}

func asThrown(err error, t **Thrown) bool { return errors.As(err, t) }
