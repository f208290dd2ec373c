//go:build js && wasm

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

// worker serves a worker call: the path picks what to do.
func worker(c *call) {
	u, _ := url.Parse(c.url)
	q := u.Query()
	num := func(k string, def int) int {
		if n, err := strconv.Atoi(q.Get(k)); err == nil {
			return n
		}
		return def
	}
	check := func(err error) {
		if err != nil {
			c.respond(500, err.Error())
		} else {
			c.respond(200, "ok")
		}
		c.done("")
	}
	answer := func(status int, body string) {
		c.respond(status, body)
		c.done("")
	}
	switch u.Path {
	case "/echo": // one message: response with done
		c.send(map[string]any{"op": "response", "status": 200, "headers": []string{"content-type", "application/octet-stream"}, "body": u8(c.body), "done": true})
		c.forget()
	case "/big": // an answer of the given size (the write-stall test reads none of it)
		n, _ := strconv.Atoi(q.Get("bytes"))
		answer(200, strings.Repeat("x", n))
	case "/roundtrip":
		check(roundTrip())
	case "/reenter":
		check(reenter())
	case "/order":
		check(order())
	case "/request":
		var hs []string
		for i := 0; i+1 < len(c.headers); i += 2 {
			hs = append(hs, c.headers[i]+"="+c.headers[i+1])
		}
		answer(200, fmt.Sprintf("method=%s url=%s body=%d null=%v tooLarge=%v headers=%s", c.method, c.url, len(c.body),
			c.body == nil, c.tooLarge, strings.Join(hs, ";")))
	case "/whoami":
		c.respondLast(200, fmt.Sprintf("role=%s object=%q instance=%q runtime=%s", c.role, c.object, c.instance, token))
	case "/runtime": // which runtime served this, after holding it ms
		time.Sleep(time.Duration(num("ms", 0)) * time.Millisecond)
		answer(200, token)
	case "/sleep": // Go's own timers
		start := time.Now()
		time.Sleep(time.Duration(num("ms", 0)) * time.Millisecond)
		answer(200, strconv.FormatInt(time.Since(start).Milliseconds(), 10))
	case "/sleep-op":
		start := time.Now()
		r := c.op(map[string]any{"op": "sleep", "ms": num("ms", 0)})
		answer(200, fmt.Sprintf("%d%s", time.Since(start).Milliseconds(), r.err))
	case "/sleep-abort":
		id, ch := c.start(map[string]any{"op": "sleep", "ms": 10000})
		c.send(map[string]any{"op": "abort", "target": id})
		answer(200, "error="+(<-ch).err)
	case "/fetch":
		var body []byte
		if b := q.Get("body"); b != "" {
			body = []byte(b)
		}
		method := q.Get("method")
		if method == "" {
			method = "GET"
		}
		r := c.fetch(q.Get("url"), method, body, num("timeout", 10000), num("limit", 1<<20))
		if r.err != "" {
			answer(200, "error="+r.err+" message="+r.msg)
			return
		}
		answer(200, fmt.Sprintf("status=%d location=%s type=%s body=%s", r.status, header(r.headers, "location"),
			header(r.headers, "content-type"), r.body))
	case "/fetch-abort":
		id, ch := c.start(map[string]any{"op": "fetch", "url": q.Get("url"), "method": "GET", "headers": list(nil),
			"body": nil, "timeout": 10000, "limit": 1 << 20})
		time.Sleep(100 * time.Millisecond)
		c.send(map[string]any{"op": "abort", "target": id})
		r := <-ch
		answer(200, "error="+r.err)
	case "/do":
		r := c.callObject("CHAIN", q.Get("name"), "/?"+u.RawQuery, num("timeout", 10000))
		if r.err != "" {
			answer(502, "error="+r.err)
			return
		}
		answer(r.status, string(r.body))
	case "/do-order": // n calls to one instance, sent before any answer: they must arrive in order
		n := num("n", 10)
		var chans []chan result
		for i := range n {
			_, ch := c.start(map[string]any{"op": "object", "namespace": "CHAIN", "name": q.Get("name"), "method": "GET",
				"path": fmt.Sprintf("/?op=append&i=%d", i), "headers": list(nil), "body": nil, "timeout": 10000})
			chans = append(chans, ch)
		}
		for _, ch := range chans {
			if r := <-ch; r.status != 200 {
				answer(500, fmt.Sprintf("append: %d %s", r.status, r.err))
				return
			}
		}
		r := c.callObject("CHAIN", q.Get("name"), "/?op=appended", 10000)
		answer(r.status, string(r.body))
	case "/background": // answers first, then fetches url and writes to the object name
		c.respond(200, "answered")
		c.fetch(q.Get("url"), "GET", nil, 10000, 1<<20)
		c.callObject("CHAIN", q.Get("name"), "/?op=put&k=bg&v=done", 10000)
		c.done("")
	case "/gc":
		warm(q.Get("warm") != "")
		runtime.GC()
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		answer(200, fmt.Sprintf("runtime=%s heap=%d", token, m.HeapAlloc))
	case "/panic-recovered":
		func() {
			defer func() {
				if recover() != nil {
					answer(500, `{"jsonrpc":"2.0","id":null,"error":{"code":-32603,"message":"recovered"}}`)
				}
			}()
			var m map[string]int
			m["boom"]++
		}()
	case "/panic":
		panic("probe: unrecovered panic")

	// Protocol violations, on purpose.
	case "/direct-fetch":
		answer(200, "threw: "+catch(func() { global.Call("fetch", "http://127.0.0.1:1/") }))
	case "/direct-timer":
		answer(200, "threw: "+catch(func() { global.Call("setTimeout", js.Null(), 10) }))
	case "/direct-state":
		answer(200, "threw: "+catch(func() { global.Get("context").Get("host").Call("state", "x") }))
	case "/direct-namespace":
		answer(200, "threw: "+catch(func() { global.Get("context").Get("env").Get("CHAIN").Call("idFromName", "x") }))
	case "/storage":
		r := c.storage(map[string]any{"call": "get", "key": "x"})
		answer(200, "error="+r.err)
	case "/cache": // one cache operation from the query (call, key, ttl, limit, body), and which runtime made it
		m := map[string]any{"op": "cache", "call": q.Get("call"), "key": q.Get("key")}
		switch q.Get("call") {
		case "match":
			m["limit"] = num("limit", 0)
		case "put":
			m["ttl"], m["body"] = num("ttl", 60), u8([]byte(q.Get("body")))
		}
		r := c.op(m)
		res := "ok"
		switch {
		case r.err != "":
			res = "error=" + r.err + " message=" + r.msg
		case r.body != nil:
			res = "hit=" + string(r.body)
		case q.Get("call") == "match":
			res = "miss"
		}
		answer(200, res+" runtime="+token)
	case "/cache-put-no-body":
		r := c.op(map[string]any{"op": "cache", "call": "put", "key": "https://example.com/k", "ttl": 60})
		answer(200, "error="+r.err)
	case "/cache-no-key":
		r := c.op(map[string]any{"op": "cache", "call": "match", "limit": 0})
		answer(200, "error="+r.err)
	case "/cache-unknown-call":
		r := c.op(map[string]any{"op": "cache", "call": "peek", "key": "https://example.com/k"})
		answer(200, "error="+r.err)
	case "/cache-bad-ttl":
		r := c.op(map[string]any{"op": "cache", "call": "put", "key": "https://example.com/k", "ttl": 1.5, "body": u8([]byte("x"))})
		answer(200, "error="+r.err)
	case "/after-done":
		answer(200, "ok")
		c.send(map[string]any{"op": "sleep", "id": 1, "ms": 1})
	case "/unknown-field":
		r := c.op(map[string]any{"op": "sleep", "ms": 1, "colour": "red"})
		answer(200, "error="+r.err)
	case "/body-with-storage":
		r := c.op(map[string]any{"op": "sleep", "ms": 1, "body": u8([]byte("x"))})
		answer(200, "error="+r.err)
	case "/unknown-op":
		r := c.op(map[string]any{"op": "teleport"})
		answer(200, "error="+r.err)
	case "/bad-message":
		r := c.op(map[string]any{"op": "fetch", "url": 42})
		answer(200, "error="+r.err)
	case "/no-response", "/eth/evmlb_k3y-in-the-path": // the second: a client key in a chain path (issue 22)
		c.done("")
	case "/deliver-unknown": // a message for a call number the host never gave
		c.deliverRaw(1<<30+7, `{"op":"done"}`, nil)
		answer(200, "ok")
	case "/take-outside": // take() outside begin and complete
		importTake(nil, nil)
		answer(200, "ok")
	case "/body-none": // body() for a call without a body (GET)
		importBody(uint32(c.id), nil)
		answer(200, "ok")
	case "/after-last": // response with done: true, then a message
		c.respondLast(200, "ok")
		c.send(map[string]any{"op": "sleep", "id": 1, "ms": 1})
	case "/double-response":
		c.respond(200, "first")
		answer(200, "second")
	case "/bad-status":
		answer(99, "")
	case "/abort-unknown":
		c.send(map[string]any{"op": "abort", "target": 999})
		answer(200, "ok")
	case "/reuse-id":
		c.send(map[string]any{"op": "sleep", "id": 7, "ms": 50})
		c.send(map[string]any{"op": "sleep", "id": 7, "ms": 50})
		time.Sleep(100 * time.Millisecond)
		answer(200, "ok")
	default:
		answer(404, "no route "+u.Path)
	}
}

// sink keeps warm's garbage from being optimized away.
var sink []byte

// warm allocates garbage until the Go heap has grown to its working size (GOGC's 4 MB minimum target), which a
// few thousand small calls take to reach on their own.
func warm(on bool) {
	if !on {
		return
	}
	for range 64 {
		sink = make([]byte, 256<<10)
	}
	sink = nil
}

// catch runs fn and returns the message of the JS exception it raised.
func catch(fn func()) (msg string) {
	defer func() {
		if r := recover(); r != nil {
			var je js.Error
			if errors.As(asError(r), &je) {
				msg = je.Value.Get("message").String()
				return
			}
			msg = fmt.Sprint(r)
		}
	}()
	fn()
	return "nothing"
}

func asError(r any) error {
	if e, ok := r.(error); ok {
		return e
	}
	return fmt.Errorf("%v", r)
}
