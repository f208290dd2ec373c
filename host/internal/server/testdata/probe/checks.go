//go:build js && wasm

package main

import (
	"errors"
	"fmt"
	"strings"
	"syscall/js"
)

// roundTrip checks that values survive the trip to JS and back.
func roundTrip() error {
	var fails []string
	expect := func(what string, ok bool) {
		if !ok {
			fails = append(fails, what)
		}
	}
	o := global.Get("Object").New()
	for _, s := range []string{"", "plain", "ünïcødé ✓ 𝄞", strings.Repeat("x", 100000)} {
		o.Set("s", s)
		expect("string "+s[:min(len(s), 10)], o.Get("s").String() == s)
	}
	for _, f := range []float64{0, 1, -1, 0.5, 1e300, -1e-300, 9007199254740993} {
		o.Set("n", f)
		expect(fmt.Sprint("number ", f), o.Get("n").Float() == f)
	}
	o.Set("t", true)
	o.Set("f", false)
	o.Set("null", nil)
	o.Set("u", js.Undefined())
	expect("bool", o.Get("t").Bool() && !o.Get("f").Bool())
	expect("null", o.Get("null").IsNull())
	expect("undefined", o.Get("u").IsUndefined() && o.Get("missing").IsUndefined())
	expect("typeof", o.Type() == js.TypeObject && o.Get("s").Type() == js.TypeString &&
		global.Get("Promise").Type() == js.TypeFunction && o.Get("n").Type() == js.TypeNumber)
	o.Delete("t")
	expect("delete", o.Get("t").IsUndefined())
	expect("same object", o.Equal(o) && global.Get("context").Equal(global.Get("context")))
	expect("NaN", js.ValueOf(js.Global().Get("Object").New().Get("x")).IsUndefined())

	a := global.Get("Array").New(3)
	a.SetIndex(0, "zero")
	a.SetIndex(5, 5)
	a.Call("push", "pushed")
	expect("array", a.Length() == 7 && a.Index(0).String() == "zero" && a.Index(5).Int() == 5 && a.Index(6).String() == "pushed")
	expect("array undefined hole", a.Index(1).IsUndefined())

	src := []byte{0, 1, 2, 250, 255}
	u := global.Get("Uint8Array").New(len(src))
	expect("copy to js", js.CopyBytesToJS(u, src) == 5 && u.Index(3).Int() == 250)
	dst := make([]byte, 5)
	expect("copy to go", js.CopyBytesToGo(dst, u) == 5 && string(dst) == string(src))
	expect("instanceof", u.InstanceOf(global.Get("Uint8Array")) && !u.InstanceOf(global.Get("Array")))
	expect("byteLength", u.Get("byteLength").Int() == 5)
	buf := u.Get("buffer")
	expect("Uint8Array(buffer)", global.Get("Uint8Array").New(buf).Length() == 5)

	err := func() (err error) {
		defer func() {
			if r := recover(); r != nil {
				if je, ok := r.(js.Error); ok {
					err = je
					return
				}
				err = fmt.Errorf("%v", r)
			}
		}()
		global.Get("Promise").New("not a function")
		return nil
	}()
	expect("thrown error", err != nil && strings.Contains(err.Error(), "not a function"))

	e := global.Get("Error").New("boom")
	expect("error", e.Get("message").String() == "boom" && e.Call("toString").String() == "Error: boom")

	entries := global.Get("Object").Call("entries", o)
	expect("Object.entries", entries.Length() == 5 && entries.Index(0).Index(0).String() == "s")

	d := global.Get("Date").New(1700000000000)
	expect("date", d.Call("getTime").Float() == 1700000000000)
	res := global.Call("tryCatch", js.FuncOf(func(js.Value, []js.Value) any { return 42 }))
	expect("tryCatch", res.Get("result").Int() == 42)

	if fails != nil {
		return errors.New("failed: " + strings.Join(fails, ", "))
	}
	return nil
}

// reenter checks JS calling Go while Go is inside a call to JS: an iterator whose next() is a Go function,
// consumed by Array.from, with that function calling JS again.
func reenter() error {
	i := 0
	var next js.Func
	next = js.FuncOf(func(js.Value, []js.Value) any {
		r := global.Get("Object").New()
		if i == 3 {
			r.Set("done", true)
			return r
		}
		i++
		inner := global.Get("Array").Call("from", global.Get("Array").New(i)).Length() // nested call to JS
		r.Set("done", false)
		r.Set("value", inner*10)
		return r
	})
	defer next.Release()
	it := global.Get("Object").New()
	it.Set("next", next)
	arr := global.Get("Array").Call("from", it)
	if arr.Length() != 3 || arr.Index(2).Int() != 30 {
		return fmt.Errorf("Array.from over a Go iterator: length %d", arr.Length())
	}
	// An executor runs synchronously inside new Promise(...).
	ran := false
	var exec js.Func
	exec = js.FuncOf(func(_ js.Value, a []js.Value) any { ran = true; a[0].Invoke("x"); return nil })
	defer exec.Release()
	p := global.Get("Promise").New(exec)
	if !ran {
		return errors.New("executor did not run synchronously")
	}
	v, err := await(p)
	if err != nil || v.String() != "x" {
		return fmt.Errorf("promise from Go executor: %v %v", v, err)
	}
	return nil
}

// order checks that promise reactions run in registration order, after the current code (as microtasks).
func order() error {
	var log []string
	done := make(chan struct{})
	var fns []js.Func
	mk := func(name string, last bool) js.Func {
		f := js.FuncOf(func(js.Value, []js.Value) any {
			log = append(log, name)
			if last {
				close(done)
			}
			return nil
		})
		fns = append(fns, f)
		return f
	}
	p := global.Get("Promise").Call("resolve", 1)
	p.Call("then", mk("a", false))
	p.Call("then", mk("b", false)).Call("then", mk("d", true))
	p.Call("then", mk("c", false))
	log = append(log, "sync")
	<-done
	for _, f := range fns {
		f.Release()
	}
	if got := strings.Join(log, ","); got != "sync,a,b,c,d" {
		return errors.New("order " + got)
	}
	return nil
}

// await waits for a promise (plain JavaScript: promises are no I/O).
func await(p js.Value) (js.Value, error) {
	ch := make(chan js.Value, 1)
	errc := make(chan error, 1)
	var ok, fail js.Func
	ok = js.FuncOf(func(_ js.Value, a []js.Value) any { ok.Release(); fail.Release(); ch <- a[0]; return nil })
	fail = js.FuncOf(func(_ js.Value, a []js.Value) any {
		ok.Release()
		fail.Release()
		errc <- errors.New(a[0].Get("message").String())
		return nil
	})
	p.Call("then", ok, fail)
	select {
	case v := <-ch:
		return v, nil
	case err := <-errc:
		return js.Value{}, err
	}
}
