//go:build js && wasm

// Command probe is a test program for the wazero host that speaks host contract version 7 through syscall/js
// and the evmlb imports. Each path of a worker call exercises one part of the js/wasm runtime or of the protocol and answers
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
	"unsafe"

	"github.com/evmlb/evmlb/internal/contract"
)

//go:wasmimport workers ready
func ready()

//go:wasmimport evmlb deliver
func importDeliver(call uint32, msg unsafe.Pointer, msgLen int32, body unsafe.Pointer, bodyLen int32)

//go:wasmimport evmlb take
func importTake(text unsafe.Pointer, body unsafe.Pointer)

//go:wasmimport evmlb body
func importBody(call uint32, dst unsafe.Pointer)

// ptr is b's address for an import (nil for an empty or nil b).
func ptr(b []byte) unsafe.Pointer {
	if len(b) == 0 {
		return nil
	}
	return unsafe.Pointer(&b[0])
}

// take copies the event's text and body (bodyLen -1: none) out of the host.
func take(textLen, bodyLen int) ([]byte, []byte) {
	text := make([]byte, textLen)
	var body []byte
	if bodyLen >= 0 {
		body = make([]byte, bodyLen)
	}
	importTake(ptr(text), ptr(body))
	return text, body
}

var (
	global  = js.Global()
	binding = global.Get("context").Get("binding")
	// token names this runtime: the host's pool tests tell runtimes apart by it.
	token = func() string {
		var b [8]byte
		rand.Read(b[:])
		return hex.EncodeToString(b[:])
	}()

	mu    sync.Mutex
	calls = map[int]*call{}
)

func main() {
	env := global.Get("context").Get("env")
	version := 7 // PROBE_VERSION overrides it, to test the host's check
	if v := env.Get("PROBE_VERSION"); v.Type() == js.TypeString {
		version, _ = strconv.Atoi(v.String())
	}
	maxBody := 1 << 20
	if v := env.Get("PROBE_MAX_BODY"); v.Type() == js.TypeString {
		maxBody, _ = strconv.Atoi(v.String())
	}
	binding.Set("contractVersion", version)
	binding.Set("maxBodyBytes", maxBody)
	binding.Set("requestHeaders", list([]string{"content-type", "x-custom", "x-evmlb-role"}))
	binding.Set("begin", js.FuncOf(begin))
	binding.Set("complete", js.FuncOf(complete))
	ready()
	select {}
}

// call is a call the host began.
type call struct {
	id                                        int
	kind, role, object, instance, method, url string
	tooLarge                                  bool
	retry                                     int
	headers                                   []string
	body                                      []byte

	mu     sync.Mutex
	nextOp int
	waits  map[int]chan result
}

// result is an operation's result, copied out of JS: [error, message, payload…] and the body.
type result struct {
	err, msg string
	payload  []string
	status   int
	headers  []string
	body     []byte
	value    string
	hasValue bool
}

// begin(call, textLen, bodyLen): the text is the JSON text of [kind, role, object, instance, method, url,
// bodyTooLarge, retryCount, name1, value1, …]; the body is taken at once.
func begin(_ js.Value, args []js.Value) any {
	text, _ := take(args[1].Int(), -1)
	f, err := contract.DecodeStrings(string(text))
	if err != nil || len(f) < 8 {
		panic("probe: begin: " + string(text))
	}
	c := &call{id: args[0].Int(), kind: f[0], role: f[1], object: f[2], instance: f[3], method: f[4], url: f[5],
		tooLarge: f[6] != "", headers: f[8:], waits: map[int]chan result{}}
	if n := args[2].Int(); n >= 0 {
		c.body = make([]byte, n)
		importBody(uint32(c.id), ptr(c.body))
	}
	c.retry, _ = strconv.Atoi(f[7])
	mu.Lock()
	calls[c.id] = c
	mu.Unlock()
	go serve(c)
	return nil
}

// complete(call, op, textLen, bodyLen).
func complete(_ js.Value, args []js.Value) any {
	text, body := take(args[2].Int(), args[3].Int())
	mu.Lock()
	c := calls[args[0].Int()]
	mu.Unlock()
	if c == nil {
		println("probe: complete for an unknown call")
		return nil
	}
	f, err := contract.DecodeStrings(string(text))
	if err != nil || len(f) < 2 {
		panic("probe: complete: " + string(text))
	}
	r := result{err: f[0], msg: f[1], payload: f[2:], body: body}
	if len(r.payload) > 0 {
		r.value, r.hasValue = r.payload[0], true
		r.status, _ = strconv.Atoi(r.payload[0])
		r.headers = r.payload[1:]
	}
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

// u8 marks b as a message's body (nil: none).
func u8(b []byte) []byte { return b }

func list(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

// send delivers a message: m's "body" ([]byte; absent or nil: none) goes apart, the rest as JSON text.
func (c *call) send(m map[string]any) {
	body, _ := m["body"].([]byte)
	delete(m, "body")
	c.deliverRaw(uint32(c.id), encode(m), body)
}

// deliverRaw hands the host a message of call num.
func (c *call) deliverRaw(num uint32, text string, body []byte) {
	n := int32(-1)
	if body != nil {
		n = int32(len(body))
	}
	t := []byte(text)
	importDeliver(num, ptr(t), int32(len(t)), ptr(body), n)
}

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
	c.send(map[string]any{"op": "response", "status": status, "headers": append([]string{"content-type", "text/plain"}, headers...), "body": u8([]byte(body))})
}

// respondLast answers and ends the call in one message (response with done: true).
func (c *call) respondLast(status int, body string) {
	c.send(map[string]any{"op": "response", "status": status, "headers": []string{"content-type", "text/plain"}, "body": u8([]byte(body)), "done": true})
	c.forget()
}

func (c *call) forget() {
	mu.Lock()
	delete(calls, c.id)
	mu.Unlock()
}

func (c *call) done(err string) {
	m := map[string]any{"op": "done"}
	if err != "" {
		m["error"] = err
	}
	c.send(m)
	c.forget()
}

func (c *call) fetch(url, method string, body []byte, timeout, limit int) result {
	return c.op(map[string]any{"op": "fetch", "url": url, "method": method, "headers": []string{"x-probe", "1"},
		"body": u8(body), "timeout": timeout, "limit": limit})
}

func (c *call) callObject(ns, name, path string, timeout int) result {
	return c.op(map[string]any{"op": "object", "namespace": ns, "name": name, "method": "POST", "path": path,
		"headers": []string{"X-Custom", c.role, "x-not-asked-for", "x"}, "body": u8([]byte("from-" + c.role)), "timeout": timeout})
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
	case c.role == "chain" || c.role == "upstream" || c.role == "budget":
		durable(c)
	default:
		worker(c)
	}
}
