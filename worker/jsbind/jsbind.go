//go:build js && wasm

// Package jsbind is the only code that speaks syscall/js: it registers binding.begin and binding.complete
// (CONTRACT.md §3), turns the host's plain objects into Go values and Go's hostcall.Ops into plain objects. All
// I/O is performed by the host in the call's own context (internal/hostcall); nothing here touches an I/O object.
package jsbind

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall/js"

	"github.com/evmlb/evmlb/internal/contract"
	"github.com/evmlb/evmlb/internal/hostcall"
)

// Handlers are what the host's calls run.
type Handlers struct {
	// Fetch answers fetch calls of every role (the role, object and instance travel as contract headers).
	Fetch http.Handler
	// Alarm runs alarm calls; an error asks the host to retry.
	Alarm func(ctx context.Context, role, objectID string, retryCount int) error
	// Socket runs the message and close calls of a subs object's WebSockets (CONTRACT.md §7); nil ends them at
	// once (a program that accepts no socket gets none). An error is logged by the host, never retried.
	Socket func(ctx context.Context, ev hostcall.SocketEvent) error
	// MaxBodyBytes is the largest request body accepted (binding.maxBodyBytes), and of a WebSocket frame.
	MaxBodyBytes int64
}

var (
	mu    sync.Mutex
	calls = map[uint32]*hostcall.Call{}
)

// throw panics with a JS Error, which the host's call of begin or complete throws.
func throw(msg string) { panic(js.Global().Get("Error").New(msg)) }

// Serve registers the binding's functions and version. Call it once, before the host is told Go is ready.
func Serve(h Handlers) {
	b := js.Global().Get("context").Get("binding")
	b.Set(contract.BindingContractVersion, contract.Version)
	b.Set(contract.BindingMaxBodyBytes, float64(h.MaxBodyBytes))
	names := make([]any, len(contract.RequestHeaders))
	for i, n := range contract.RequestHeaders {
		names[i] = n
	}
	b.Set(contract.BindingRequestHeaders, js.ValueOf(names))
	b.Set(contract.BindingBegin, js.FuncOf(func(_ js.Value, args []js.Value) any {
		num, textLen, bodyLen, ok := numbers(args)
		if !ok || len(args) != 3 {
			throw("begin(call, textLen, bodyLen)")
		}
		text, _ := take(textLen, bodyLen, false)
		begin(h, num, text, bodyLen)
		return nil
	}))
	b.Set(contract.BindingComplete, js.FuncOf(func(_ js.Value, args []js.Value) any {
		if len(args) != 4 || args[1].Type() != js.TypeNumber {
			throw("complete(call, op, textLen, bodyLen)")
		}
		num, textLen, bodyLen, ok := numbers([]js.Value{args[0], args[2], args[3]})
		if !ok {
			throw("complete(call, op, textLen, bodyLen)")
		}
		text, body := take(textLen, bodyLen, true)
		mu.Lock()
		c := calls[num]
		mu.Unlock()
		if c == nil {
			throw("complete: no such call")
		}
		op := uint64(args[1].Int())
		kind, ok := c.Kind(op)
		if !ok {
			throw("complete: no such operation")
		}
		if err := c.Complete(op, hostcall.DecodeResult(kind, text, body)); err != nil {
			throw(err.Error())
		}
		return nil
	}))
}

// numbers reads an event's call number, text length and body length (CONTRACT.md §3): numbers, no JS value.
func numbers(args []js.Value) (num uint32, textLen, bodyLen int, ok bool) {
	if len(args) < 3 {
		return 0, 0, 0, false
	}
	for _, a := range args[:3] {
		if a.Type() != js.TypeNumber {
			return 0, 0, 0, false
		}
	}
	n, t, b := args[0].Float(), args[1].Float(), args[2].Float()
	if n < 1 || n >= 1<<31 || n != float64(int64(n)) || t < 0 || t != float64(int64(t)) ||
		b < contract.NoBody || b != float64(int64(b)) || t > 1<<31 || b > 1<<31 {
		return 0, 0, 0, false
	}
	return uint32(n), int(t), int(b), true
}

// callMeta is what begin() receives (CONTRACT.md §3): a JSON array of strings, [kind, role, object, instance,
// method, url, bodyTooLarge ("1" or ""), retryCount, name1, value1, …].
type callMeta struct {
	Kind, Role, Object, Instance, Method, URL string
	BodyTooLarge                              bool
	RetryCount                                int
	Headers                                   []string
	Fields                                    []string // all of them (a socket call's are read by hostcall)
}

func parseCall(text string) (callMeta, error) {
	f, err := contract.DecodeStrings(text)
	if err != nil || len(f) < 8 {
		return callMeta{}, errors.New("begin: the call is not a JSON array of at least 8 strings")
	}
	retry, _ := strconv.Atoi(f[7])
	return callMeta{Kind: f[0], Role: f[1], Object: f[2], Instance: f[3], Method: f[4], URL: f[5],
		BodyTooLarge: f[6] != "", RetryCount: retry, Headers: f[8:], Fields: f}, nil
}

// begin registers call num and starts its handler on a worker goroutine.
func begin(h Handlers, num uint32, text string, bodyLen int) {
	m, err := parseCall(text)
	if err != nil {
		throw(err.Error())
	}
	c := hostcall.New(m.Object, func(op hostcall.Op) {
		text, b := hostcall.EncodeOp(op)
		deliver(num, text, b)
	})
	mu.Lock()
	if calls[num] != nil {
		mu.Unlock()
		throw("begin: call number in use")
	}
	calls[num] = c
	mu.Unlock()
	ctx := hostcall.With(context.Background(), c)
	if m.Kind == contract.CallMessage || m.Kind == contract.CallClose {
		ev, err := hostcall.ParseSocketEvent(m.Fields)
		if err != nil {
			throw(err.Error())
		}
		spawn(func() {
			msg := ""
			if bodyLen != contract.NoBody {
				ev.Data = requestBody(num, bodyLen)
			}
			if h.Socket != nil {
				if err := h.Socket(ctx, ev); err != nil {
					msg = err.Error()
				}
			}
			end(num, c, msg)
		})
		return
	}
	if m.Kind == contract.CallAlarm {
		spawn(func() {
			msg := ""
			if err := h.Alarm(ctx, m.Role, m.Object, m.RetryCount); err != nil {
				msg = err.Error()
			}
			end(num, c, msg)
		})
		return
	}
	req, err := toRequest(ctx, &m, num, bodyLen, h.MaxBodyBytes)
	spawn(func() {
		w := &bufferedResponse{header: http.Header{}}
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
		} else {
			h.Fetch.ServeHTTP(w, req)
		}
		w.WriteHeader(http.StatusOK)
		<-c.RespondAndFinish(w.status, w.header, w.body.Bytes())
		forget(num)
	})
}

// Calls run on long-lived worker goroutines rather than one new goroutine each: a new goroutine's stack grows by
// copying, several times over a handler's depth, which the V8 profile showed among the top costs of a call.
var (
	tasks   = make(chan func())
	workers atomic.Int32
)

// maxIdleWorkers bounds the workers kept after a burst (each keeps a grown stack, tens of KB).
const maxIdleWorkers = 64

// spawn runs fn on an idle worker, or on a new one.
func spawn(fn func()) {
	select {
	case tasks <- fn:
	default:
		workers.Add(1)
		go work(fn)
	}
}

func work(fn func()) {
	defer workers.Add(-1)
	for {
		fn()
		if workers.Load() > maxIdleWorkers {
			return
		}
		fn = <-tasks
	}
}

// end finishes the call and forgets it once done has been delivered.
func end(num uint32, c *hostcall.Call, msg string) {
	<-c.Finish(msg)
	forget(num)
}

func forget(num uint32) {
	mu.Lock()
	delete(calls, num)
	mu.Unlock()
}

func str(v js.Value) string {
	if v.Type() != js.TypeString {
		return ""
	}
	return v.String()
}

// toRequest makes the *http.Request of a fetch call, with the contract headers set from the call's fields.
func toRequest(ctx context.Context, m *callMeta, num uint32, bodyLen int, maxBody int64) (*http.Request, error) {
	u, err := url.Parse(m.URL)
	if err != nil {
		return nil, errors.New("request URL does not parse")
	}
	h := hostcall.ToHeader(m.Headers) // never holds the contract's own headers: ToHeader drops them
	h[hostcall.CanonRole] = []string{m.Role}
	if m.Object != "" {
		h[hostcall.CanonObject] = []string{m.Object}
		h[hostcall.CanonInstance] = []string{m.Instance}
	}
	req := (&http.Request{
		Method: m.Method, URL: u, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: h, Host: u.Host, RequestURI: u.RequestURI(), Body: http.NoBody,
	}).WithContext(ctx)
	switch {
	case m.BodyTooLarge:
		req.Body = tooLarge{limit: maxBody}
		req.ContentLength = -1
	case bodyLen != contract.NoBody:
		req.Body = &hostBody{num: num, n: bodyLen}
		req.ContentLength = int64(bodyLen)
	}
	return req, nil
}

// hostBody is a request body still in the host: it is copied into Go memory once, when it is first read, so
// that the handler can refuse a large body (EVMLB_MAX_INFLIGHT_BYTES) before it costs wasm memory, which never
// shrinks. Bytes hands the copy over without another.
type hostBody struct {
	num uint32 // the call's number
	n   int
	r   *bytes.Reader
	b   []byte
}

func (j *hostBody) Bytes() []byte {
	if j.b == nil {
		j.b = requestBody(j.num, j.n)
		j.r = bytes.NewReader(j.b)
	}
	return j.b
}

func (j *hostBody) Read(p []byte) (int, error) {
	j.Bytes()
	return j.r.Read(p)
}

func (j *hostBody) Close() error { return nil }

// tooLarge is the body of a request the host did not read because it is over the limit: reading it fails as
// http.MaxBytesReader would.
type tooLarge struct{ limit int64 }

func (t tooLarge) Read([]byte) (int, error) { return 0, &http.MaxBytesError{Limit: t.limit} }
func (tooLarge) Close() error               { return nil }

// bufferedResponse is an http.ResponseWriter that keeps the whole answer.
type bufferedResponse struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (w *bufferedResponse) Header() http.Header { return w.header }

func (w *bufferedResponse) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
}

func (w *bufferedResponse) Write(b []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	return w.body.Write(b)
}

// Getenv reads a string variable or secret from context.env; "" when unset or not a string.
func Getenv(name string) string { return str(js.Global().Get("context").Get("env").Get(name)) }

// MemoryBytes is context.host.memoryBytes(): the program's linear memory now; 0 when the host does not say.
func MemoryBytes() uint64 {
	f := js.Global().Get("context").Get("host").Get("memoryBytes")
	if f.Type() != js.TypeFunction {
		return 0
	}
	v := f.Invoke()
	if v.Type() != js.TypeNumber {
		return 0
	}
	return uint64(v.Float())
}

// HostKind is context.host.kind ("workerd", "wazero").
func HostKind() string {
	if k := str(js.Global().Get("context").Get("host").Get("kind")); k != "" {
		return k
	}
	return "unknown"
}
