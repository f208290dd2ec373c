//go:build js && wasm

package main

import (
	"fmt"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// appended is what op=append recorded, per instance: the memory of this runtime, gone when it restarts.
var appended = map[string][]string{}

// durable serves a call to a Durable Object: op is one storage call or another check.
func durable(c *call) {
	u, _ := url.Parse(c.url)
	q := u.Query()
	answer := func(status int, body string) {
		c.respond(status, body)
		c.done("")
	}
	st := func(m map[string]any) (result, bool) {
		r := c.storage(m)
		if r.err != "" {
			answer(500, "storage: "+r.err+": "+r.msg)
			return r, false
		}
		return r, true
	}
	switch q.Get("op") {
	case "whoami":
		answer(200, fmt.Sprintf("%s %s %s role=%s url=%s body=%s from=%s", c.object, c.instance, token, c.role, c.url,
			c.body, header(c.headers, "x-custom")))
	case "put":
		if _, ok := st(map[string]any{"call": "put", "entries": list([]string{q.Get("k"), q.Get("v")})}); ok {
			answer(200, "put")
		}
	case "get":
		if r, ok := st(map[string]any{"call": "get", "key": q.Get("k")}); ok {
			if !r.hasValue {
				r.value = "<none>"
			}
			answer(200, r.value)
		}
	case "delete":
		if _, ok := st(map[string]any{"call": "delete", "keys": list([]string{q.Get("k")})}); ok {
			answer(200, "deleted")
		}
	case "list":
		if r, ok := st(map[string]any{"call": "list", "prefix": q.Get("prefix")}); ok {
			var parts []string
			for i := 0; i+1 < len(r.payload); i += 2 {
				parts = append(parts, r.payload[i]+"="+r.payload[i+1])
			}
			answer(200, strings.Join(parts, ","))
		}
	case "deleteAll":
		if _, ok := st(map[string]any{"call": "deleteAll"}); ok {
			answer(200, "cleared")
		}
	case "setAlarm":
		ms, _ := strconv.Atoi(q.Get("in"))
		if _, ok := st(map[string]any{"call": "setAlarm", "time": time.Now().Add(time.Duration(ms) * time.Millisecond).UnixMilli()}); ok {
			answer(200, "armed")
		}
	case "getAlarm":
		if r, ok := st(map[string]any{"call": "getAlarm"}); ok {
			if r.hasValue {
				answer(200, "set")
			} else {
				answer(200, "none")
			}
		}
	case "deleteAlarm":
		if _, ok := st(map[string]any{"call": "deleteAlarm"}); ok {
			answer(200, "disarmed")
		}
	case "too-many":
		entries := make([]string, 0, 2*129)
		for i := range 129 {
			entries = append(entries, strconv.Itoa(i), "v")
		}
		r := c.storage(map[string]any{"call": "put", "entries": list(entries)})
		answer(200, "error="+r.err)
	case "append":
		appended[c.instance] = append(appended[c.instance], q.Get("i"))
		answer(200, "ok")
	case "appended":
		answer(200, strings.Join(appended[c.instance], ","))
	case "call-upstream":
		r := c.callObject("UPSTREAM", q.Get("name"), "/?op=whoami", 10000)
		answer(r.status, string(r.body))
	case "call-object": // a call to the object name of the namespace ns, of path
		r := c.callObject(q.Get("ns"), q.Get("name"), q.Get("path"), 10000)
		if r.err != "" {
			answer(502, "error="+r.err)
			return
		}
		answer(r.status, string(r.body))
	case "cache": // only worker calls may use the answer cache
		r := c.op(map[string]any{"op": "cache", "call": "match", "key": "https://object/k", "limit": 0})
		answer(200, "error="+r.err)
	case "slow":
		ms, _ := strconv.Atoi(q.Get("ms"))
		c.op(map[string]any{"op": "sleep", "ms": ms})
		answer(200, "slept")
	case "fetch":
		r := c.fetch(q.Get("url"), "GET", nil, 10000, 1<<20)
		answer(200, fmt.Sprintf("status=%d body=%s%s", r.status, r.body, r.err))
	case "gc":
		warm(q.Get("warm") != "")
		runtime.GC()
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		answer(200, fmt.Sprintf("runtime=%s heap=%d", token, m.HeapAlloc))
	case "panic":
		panic("probe: object panic")
	default:
		answer(400, "bad op")
	}
}

// alarm appends "role:retry" to the instance's key "alarms"; it fails while the key "fail" is "yes".
func alarm(c *call) string {
	prev := c.storage(map[string]any{"call": "get", "key": "alarms"})
	if prev.err != "" {
		return prev.err
	}
	log := ""
	if prev.hasValue {
		log = prev.value + ","
	}
	if r := c.storage(map[string]any{"call": "put", "entries": list([]string{"alarms", log + c.role + ":" + strconv.Itoa(c.retry)})}); r.err != "" {
		return r.err
	}
	if fail := c.storage(map[string]any{"call": "get", "key": "fail"}); fail.value == "yes" {
		return "alarm failed on purpose"
	}
	return ""
}
