//go:build js && wasm

package main

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"syscall/js"
	"time"
)

// toDurable forwards /do?name=…&op=… to the CHAIN instance named name.
func toDurable(q url.Values) (js.Value, error) {
	ns := global.Get("context").Get("env").Get("CHAIN")
	stub := ns.Call("get", ns.Call("idFromName", q.Get("name")))
	init := global.Get("Object").New()
	init.Set("method", "POST")
	res, err := await(stub.Call("fetch", global.Get("Request").New("https://do/?"+q.Encode(), init)))
	if err != nil {
		return js.Value{}, err
	}
	return res, nil
}

// durable is the handler of a CHAIN instance: op is one storage call.
func durable(req js.Value) (js.Value, error) {
	h := req.Get("headers")
	id, token := h.Call("get", "x-evmlb-object").String(), h.Call("get", "x-evmlb-instance").String()
	u, _ := url.Parse(req.Get("url").String())
	q := u.Query()
	st := global.Get("context").Get("host").Call("state", id)
	if st.Type() != js.TypeObject {
		return response(500, "no state for "+id), nil
	}
	s := st.Get("storage")
	var out string
	var err error
	switch q.Get("op") {
	case "whoami":
		out = id + " " + token
	case "put":
		o := global.Get("Object").New()
		o.Set(q.Get("k"), q.Get("v"))
		_, err = await(s.Call("put", o))
		out = "put"
	case "get":
		var v js.Value
		v, err = await(s.Call("get", q.Get("k")))
		if err == nil {
			out = fmt.Sprint(v)
		}
	case "delete":
		keys := global.Get("Array").New()
		keys.Call("push", q.Get("k"))
		_, err = await(s.Call("delete", keys))
		out = "deleted"
	case "list":
		o := global.Get("Object").New()
		o.Set("prefix", q.Get("prefix"))
		var m js.Value
		m, err = await(s.Call("list", o))
		if err == nil {
			entries := global.Get("Array").Call("from", m.Call("entries"))
			var parts []string
			for i := 0; i < entries.Length(); i++ {
				parts = append(parts, entries.Index(i).Index(0).String()+"="+entries.Index(i).Index(1).String())
			}
			out = strings.Join(parts, ",")
		}
	case "deleteAll":
		_, err = await(s.Call("deleteAll"))
		out = "cleared"
	case "setAlarm":
		ms, _ := strconv.Atoi(q.Get("in"))
		_, err = await(s.Call("setAlarm", float64(time.Now().Add(time.Duration(ms)*time.Millisecond).UnixMilli())))
		out = "armed"
	case "getAlarm":
		var v js.Value
		v, err = await(s.Call("getAlarm"))
		if err == nil {
			out = "none"
			if v.Type() == js.TypeNumber {
				out = "set"
			}
		}
	default:
		return response(400, "bad op"), nil
	}
	if err != nil {
		return response(500, err.Error()), nil
	}
	return response(200, out), nil
}

// alarm appends "role:retry" to the instance's key "alarms"; it fails while the key "fail" is "yes".
func alarm(role, id string, retry int) error {
	s := global.Get("context").Get("host").Call("state", id).Get("storage")
	prev, err := await(s.Call("get", "alarms"))
	if err != nil {
		return err
	}
	log := ""
	if prev.Type() == js.TypeString {
		log = prev.String() + ","
	}
	o := global.Get("Object").New()
	o.Set("alarms", log+role+":"+strconv.Itoa(retry))
	if _, err := await(s.Call("put", o)); err != nil {
		return err
	}
	fail, err := await(s.Call("get", "fail"))
	if err != nil {
		return err
	}
	if fail.Type() == js.TypeString && fail.String() == "yes" {
		return errors.New("alarm failed on purpose")
	}
	return nil
}
