//go:build js && wasm

// Command probe is a test program for the wazero host that speaks host contract version 3 through syscall/js
// alone. Each path of a worker call exercises one part of the js/wasm runtime or of the protocol and answers
// what it saw; some break the protocol on purpose, for the host's strictness tests. Durable Object calls
// (durable.go) use storage operations; alarm calls record themselves in storage and fail while the key "fail"
// is "yes".
package main

import (
	"crypto/rand"
	"encoding/hex"
	"strconv"
	"sync"
	"syscall/js"
)

//go:wasmimport workers ready
func ready()

var (
	global  = js.Global()
	binding = global.Get("context").Get("binding")
	// token names this runtime: the host's pool tests tell runtimes apart by it.
	token = func() string {
		var b [8]byte
		rand.Read(b[:])
		return hex.EncodeToString(b[:])
	}()

	mu     sync.Mutex
	calls  = map[int]*call{}
	nextID int
)

func main() {
	env := global.Get("context").Get("env")
	version := 3 // PROBE_VERSION overrides it, to test the host's check
	if v := env.Get("PROBE_VERSION"); v.Type() == js.TypeString {
		version, _ = strconv.Atoi(v.String())
	}
	maxBody := 1 << 20
	if v := env.Get("PROBE_MAX_BODY"); v.Type() == js.TypeString {
		maxBody, _ = strconv.Atoi(v.String())
	}
	binding.Set("contractVersion", version)
	binding.Set("maxBodyBytes", maxBody)
	binding.Set("begin", js.FuncOf(begin))
	binding.Set("complete", js.FuncOf(complete))
	ready()
	select {}
}

// call is a call the host began.
type call struct {
	id                                        int
	kind, role, object, instance, method, url string
	headers                                   []string
	body                                      []byte
	tooLarge                                  bool
	retry                                     int
	deliver                                   js.Value

	mu     sync.Mutex
	nextOp int
	waits  map[int]chan result
}

// result is an operation's result, copied out of JS.
type result struct {
	err, msg string
	status   int
	headers  []string
	body     []byte
	value    string
	hasValue bool
	entries  []string
	hasTime  bool
}

func str(v js.Value) string {
	if v.Type() == js.TypeString {
		return v.String()
	}
	return ""
}

func strs(v js.Value) []string {
	if v.Type() != js.TypeObject {
		return nil
	}
	out := make([]string, v.Length())
	for i := range out {
		out[i] = v.Index(i).String()
	}
	return out
}

func bytesOf(v js.Value) []byte {
	if v.IsNull() || v.IsUndefined() {
		return nil
	}
	b := make([]byte, v.Length())
	js.CopyBytesToGo(b, v)
	return b
}

func begin(_ js.Value, args []js.Value) any {
	o := args[0]
	c := &call{
		kind: str(o.Get("kind")), role: str(o.Get("role")), object: str(o.Get("object")),
		instance: str(o.Get("instance")), method: str(o.Get("method")), url: str(o.Get("url")),
		headers: strs(o.Get("headers")), body: bytesOf(o.Get("body")), tooLarge: o.Get("bodyTooLarge").Truthy(),
		deliver: o.Get("deliver"), waits: map[int]chan result{},
	}
	if r := o.Get("retryCount"); r.Type() == js.TypeNumber {
		c.retry = r.Int()
	}
	mu.Lock()
	nextID++
	c.id = nextID
	calls[c.id] = c
	mu.Unlock()
	go serve(c)
	return c.id
}

func complete(_ js.Value, args []js.Value) any {
	mu.Lock()
	c := calls[args[0].Int()]
	mu.Unlock()
	if c == nil {
		println("probe: complete for an unknown call")
		return nil
	}
	o := args[2]
	r := result{err: str(o.Get("error")), msg: str(o.Get("message"))}
	if s := o.Get("status"); s.Type() == js.TypeNumber {
		r.status, r.headers, r.body = s.Int(), strs(o.Get("headers")), bytesOf(o.Get("body"))
	}
	if v := o.Get("value"); v.Type() == js.TypeString {
		r.value, r.hasValue = v.String(), true
	}
	r.entries = strs(o.Get("entries"))
	r.hasTime = o.Get("time").Type() == js.TypeNumber
	c.mu.Lock()
	ch := c.waits[args[1].Int()]
	delete(c.waits, args[1].Int())
	c.mu.Unlock()
	if ch == nil {
		println("probe: complete for an unknown operation")
		return nil
	}
	ch <- r
	return nil
}

func u8(b []byte) js.Value {
	if b == nil {
		return js.Null()
	}
	u := global.Get("Uint8Array").New(len(b))
	js.CopyBytesToJS(u, b)
	return u
}

func list(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

func (c *call) send(m map[string]any) { c.deliver.Invoke(js.ValueOf(m)) }

// start sends an operation and returns its id and where its result will come.
func (c *call) start(m map[string]any) (int, chan result) {
	c.mu.Lock()
	c.nextOp++
	id := c.nextOp
	ch := make(chan result, 1)
	c.waits[id] = ch
	c.mu.Unlock()
	m["id"] = id
	c.send(m)
	return id, ch
}

func (c *call) op(m map[string]any) result {
	_, ch := c.start(m)
	return <-ch
}

func (c *call) respond(status int, body string, headers ...string) {
	c.send(map[string]any{"op": "response", "status": status, "headers": list(append([]string{"content-type", "text/plain"}, headers...)), "body": u8([]byte(body))})
}

func (c *call) done(err string) {
	m := map[string]any{"op": "done"}
	if err != "" {
		m["error"] = err
	}
	c.send(m)
	mu.Lock()
	delete(calls, c.id)
	mu.Unlock()
}

func (c *call) fetch(url, method string, body []byte, timeout, limit int) result {
	return c.op(map[string]any{"op": "fetch", "url": url, "method": method, "headers": list([]string{"x-probe", "1"}),
		"body": u8(body), "timeout": timeout, "limit": limit})
}

func (c *call) callObject(ns, name, path string, timeout int) result {
	return c.op(map[string]any{"op": "object", "namespace": ns, "name": name, "method": "POST", "path": path,
		"headers": list([]string{"X-From", c.role}), "body": u8([]byte("from-" + c.role)), "timeout": timeout})
}

func (c *call) storage(m map[string]any) result {
	m["op"] = "storage"
	return c.op(m)
}

func header(flat []string, name string) string {
	for i := 0; i+1 < len(flat); i += 2 {
		if flat[i] == name {
			return flat[i+1]
		}
	}
	return ""
}

func serve(c *call) {
	switch {
	case c.kind == "alarm":
		c.done(alarm(c))
	case c.role == "chain" || c.role == "upstream":
		durable(c)
	default:
		worker(c)
	}
}
