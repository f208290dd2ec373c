//go:build js && wasm

// Command probe is a test program for the wazero host written against syscall/js alone: each path of its
// handleRequest exercises one part of the js/wasm runtime or the JS world, and answers "ok" or what failed.
// Durable Object calls (role chain) use context.host.state(id).storage; handleAlarm records its calls in
// storage and rejects while the key "fail" is set.
package main

import (
	"errors"
	"fmt"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"syscall/js"
	"time"
)

//go:wasmimport workers ready
func ready()

var (
	global  = js.Global()
	binding = global.Get("context").Get("binding")
)

func main() {
	version := 2 // PROBE_VERSION in the environment overrides it, to test the host's check
	if v := global.Get("context").Get("env").Get("PROBE_VERSION"); v.Type() == js.TypeString {
		version, _ = strconv.Atoi(v.String())
	}
	binding.Set("contractVersion", version)
	binding.Set("handleRequest", js.FuncOf(func(_ js.Value, args []js.Value) any {
		req := args[0]
		return promise(func() (js.Value, error) { return handle(req) })
	}))
	binding.Set("handleAlarm", js.FuncOf(func(_ js.Value, args []js.Value) any {
		role, id, retry := args[0].String(), args[1].String(), args[2].Int()
		return promise(func() (js.Value, error) { return js.Undefined(), alarm(role, id, retry) })
	}))
	ready()
	select {}
}

// promise runs fn on a goroutine and settles a JS promise with its result.
func promise(fn func() (js.Value, error)) js.Value {
	var exec js.Func
	exec = js.FuncOf(func(_ js.Value, args []js.Value) any {
		exec.Release()
		resolve, reject := args[0], args[1]
		go func() {
			v, err := fn()
			if err != nil {
				reject.Invoke(global.Get("Error").New(err.Error()))
				return
			}
			resolve.Invoke(v)
		}()
		return nil
	})
	return global.Get("Promise").New(exec)
}

// await waits for a promise.
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

func response(status int, body string) js.Value {
	init := global.Get("Object").New()
	init.Set("status", status)
	h := global.Get("Headers").New()
	h.Call("set", "content-type", "text/plain")
	init.Set("headers", h)
	b := global.Get("Uint8Array").New(len(body))
	js.CopyBytesToJS(b, []byte(body))
	return global.Get("Response").New(b, init)
}

func text(v js.Value) (string, error) {
	buf, err := await(v.Call("arrayBuffer"))
	if err != nil {
		return "", err
	}
	u := global.Get("Uint8Array").New(buf)
	b := make([]byte, u.Length())
	js.CopyBytesToGo(b, u)
	return string(b), nil
}

func handle(req js.Value) (js.Value, error) {
	u, _ := url.Parse(req.Get("url").String())
	q := u.Query()
	role := req.Get("headers").Call("get", "x-evmlb-role")
	if role.Type() == js.TypeString && role.String() == "chain" {
		return durable(req)
	}
	check := func(err error) (js.Value, error) {
		if err != nil {
			return response(500, err.Error()), nil
		}
		return response(200, "ok"), nil
	}
	switch u.Path {
	case "/roundtrip":
		return check(roundTrip())
	case "/reenter":
		return check(reenter())
	case "/order":
		return check(order())
	case "/sleep":
		ms, _ := strconv.Atoi(q.Get("ms"))
		start := time.Now()
		time.Sleep(time.Duration(ms) * time.Millisecond)
		return response(200, strconv.FormatInt(time.Since(start).Milliseconds(), 10)), nil
	case "/echo":
		s, err := text(req)
		if err != nil {
			return js.Value{}, err
		}
		return response(200, s), nil
	case "/big":
		n, _ := strconv.Atoi(q.Get("bytes"))
		return response(200, strings.Repeat("x", n)), nil
	case "/headers":
		h := req.Get("headers")
		return response(200, fmt.Sprintf("role=%v object=%v instance=%v", h.Call("get", "x-evmlb-role"),
			h.Call("get", "x-evmlb-object"), h.Call("get", "x-evmlb-instance"))), nil
	case "/stream":
		n, _ := strconv.Atoi(q.Get("n"))
		delay, _ := strconv.Atoi(q.Get("delay"))
		return streamResponse(n, time.Duration(delay)*time.Millisecond), nil
	case "/panic-recovered":
		return func() (v js.Value, err error) {
			defer func() {
				if recover() != nil {
					v = response(500, `{"jsonrpc":"2.0","id":null,"error":{"code":-32603,"message":"recovered"}}`)
				}
			}()
			var m map[string]int
			m["boom"]++
			return response(200, "unreachable"), nil
		}()
	case "/panic":
		panic("probe: unrecovered panic")
	case "/reject":
		return js.Value{}, errors.New("rejected on purpose")
	case "/gc":
		runtime.GC()
		runtime.GC()
		return response(200, "ok"), nil
	case "/fetch":
		return fetchBody(q.Get("url"), false)
	case "/fetch-abort":
		return fetchBody(q.Get("url"), true)
	case "/do":
		return toDurable(q)
	}
	return response(404, "no route "+u.Path), nil
}

// streamResponse answers n chunks from a pull source, each after delay.
func streamResponse(n int, delay time.Duration) js.Value {
	i := 0
	src := global.Get("Object").New()
	var pull, cancel js.Func
	pull = js.FuncOf(func(_ js.Value, args []js.Value) any {
		c := args[0]
		return promise(func() (js.Value, error) {
			time.Sleep(delay)
			if i == n {
				c.Call("close")
				pull.Release()
				cancel.Release()
				return js.Undefined(), nil
			}
			s := fmt.Sprintf("chunk-%d\n", i)
			b := global.Get("Uint8Array").New(len(s))
			js.CopyBytesToJS(b, []byte(s))
			c.Call("enqueue", b)
			i++
			return js.Undefined(), nil
		})
	})
	cancel = js.FuncOf(func(js.Value, []js.Value) any { pull.Release(); cancel.Release(); return nil })
	src.Set("pull", pull)
	src.Set("cancel", cancel)
	return global.Get("Response").New(global.Get("ReadableStream").New(src))
}

// fetchBody fetches url with the global fetch and reads the body with a reader; with abort, it aborts the
// request after 100 ms and expects a rejection.
func fetchBody(u string, abort bool) (js.Value, error) {
	ac := global.Get("AbortController").New()
	init := global.Get("Object").New()
	init.Set("method", "GET")
	init.Set("headers", global.Get("Headers").New())
	init.Set("signal", ac.Get("signal"))
	p := global.Call("fetch", u, init)
	if abort {
		time.Sleep(100 * time.Millisecond)
		ac.Call("abort")
	}
	res, err := await(p)
	if abort {
		if err == nil {
			// The head may have arrived before the abort; then the body read must fail.
			if _, err = readAll(res.Get("body")); err == nil {
				return response(500, "not aborted"), nil
			}
		}
		return response(200, "aborted: "+err.Error()), nil
	}
	if err != nil {
		return response(502, err.Error()), nil
	}
	chunks, err := readAll(res.Get("body"))
	if err != nil {
		return response(502, err.Error()), nil
	}
	return response(200, fmt.Sprintf("status=%d chunks=%d body=%s", res.Get("status").Int(), len(chunks), strings.Join(chunks, ""))), nil
}

func readAll(body js.Value) ([]string, error) {
	r := body.Call("getReader")
	var chunks []string
	for {
		res, err := await(r.Call("read"))
		if err != nil {
			return chunks, err
		}
		if res.Get("done").Bool() {
			return chunks, nil
		}
		v := res.Get("value")
		b := make([]byte, v.Length())
		js.CopyBytesToGo(b, v)
		chunks = append(chunks, string(b))
	}
}
