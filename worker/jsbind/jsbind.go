//go:build js && wasm

// Package jsbind is the only code that speaks syscall/js: it registers binding.begin and binding.complete
// (CONTRACT.md §3), turns the host's plain objects into Go values and Go's hostcall.Ops into plain objects. All
// I/O is performed by the host in the call's own context (internal/hostcall); nothing here touches an I/O object.
package jsbind

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"syscall/js"
	"time"

	"github.com/evmlb/evmlb/internal/contract"
	"github.com/evmlb/evmlb/internal/hostcall"
)

// Handlers are what the host's calls run.
type Handlers struct {
	// Fetch answers fetch calls of every role (the role, object and instance travel as contract headers).
	Fetch http.Handler
	// Alarm runs alarm calls; an error asks the host to retry.
	Alarm func(ctx context.Context, role, objectID string, retryCount int) error
	// MaxBodyBytes is the largest request body accepted (binding.maxBodyBytes).
	MaxBodyBytes int64
}

var (
	mu    sync.Mutex
	calls = map[int]*hostcall.Call{}
	next  int
)

// Serve registers the binding's functions and version. Call it once, before the host is told Go is ready.
func Serve(h Handlers) {
	b := js.Global().Get("context").Get("binding")
	b.Set(contract.BindingContractVersion, contract.Version)
	b.Set(contract.BindingMaxBodyBytes, float64(h.MaxBodyBytes))
	b.Set(contract.BindingBegin, js.FuncOf(func(_ js.Value, args []js.Value) any {
		if len(args) != 1 || args[0].Type() != js.TypeObject {
			panic(js.Global().Get("Error").New("begin(call)"))
		}
		return begin(h, args[0])
	}))
	b.Set(contract.BindingComplete, js.FuncOf(func(_ js.Value, args []js.Value) any {
		if len(args) != 3 {
			panic(js.Global().Get("Error").New("complete(callId, opId, result)"))
		}
		mu.Lock()
		c := calls[args[0].Int()]
		mu.Unlock()
		if c == nil {
			panic(js.Global().Get("Error").New("complete: no such call"))
		}
		if err := c.Complete(uint64(args[1].Int()), toResult(args[2])); err != nil {
			panic(js.Global().Get("Error").New(err.Error()))
		}
		return nil
	}))
}

// begin registers a call and starts its handler on a goroutine; it returns the call's id.
func begin(h Handlers, v js.Value) int {
	deliver := v.Get("deliver")
	role := str(v.Get("role"))
	object := str(v.Get("object"))
	c := hostcall.New(object, func(op hostcall.Op) { deliver.Invoke(toJS(op)) })
	mu.Lock()
	next++
	id := next
	calls[id] = c
	mu.Unlock()
	ctx := hostcall.With(context.Background(), c)
	if str(v.Get("kind")) == "alarm" {
		retry := 0
		if r := v.Get("retryCount"); r.Type() == js.TypeNumber {
			retry = r.Int()
		}
		go func() {
			msg := ""
			if err := h.Alarm(ctx, role, object, retry); err != nil {
				msg = err.Error()
			}
			end(id, c, msg)
		}()
		return id
	}
	req, err := toRequest(ctx, v, role, h.MaxBodyBytes)
	go func() {
		w := &bufferedResponse{header: http.Header{}}
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
		} else {
			h.Fetch.ServeHTTP(w, req)
		}
		w.WriteHeader(http.StatusOK)
		c.Respond(w.status, w.header, w.body.Bytes())
		end(id, c, "")
	}()
	return id
}

// end finishes the call and forgets it once done has been delivered.
func end(id int, c *hostcall.Call, msg string) {
	<-c.Finish(msg)
	mu.Lock()
	delete(calls, id)
	mu.Unlock()
}

func str(v js.Value) string {
	if v.Type() != js.TypeString {
		return ""
	}
	return v.String()
}

// toRequest makes the *http.Request of a fetch call, with the contract headers set from the call's fields.
func toRequest(ctx context.Context, v js.Value, role string, maxBody int64) (*http.Request, error) {
	u, err := url.Parse(str(v.Get("url")))
	if err != nil {
		return nil, errors.New("request URL does not parse")
	}
	h := toHeader(v.Get("headers"))
	h.Set(contract.HeaderRole, role)
	h.Del(contract.HeaderObject)
	h.Del(contract.HeaderInstance)
	if o := str(v.Get("object")); o != "" {
		h.Set(contract.HeaderObject, o)
		h.Set(contract.HeaderInstance, str(v.Get("instance")))
	}
	req := (&http.Request{
		Method: str(v.Get("method")), URL: u, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: h, Host: u.Host, RequestURI: u.RequestURI(), Body: http.NoBody,
	}).WithContext(ctx)
	switch b := v.Get("body"); {
	case v.Get("bodyTooLarge").Truthy():
		req.Body = tooLarge{limit: maxBody}
		req.ContentLength = -1
	case b.Type() == js.TypeObject:
		buf := bytesOf(b)
		req.Body = bodyReader{bytes.NewReader(buf), buf}
		req.ContentLength = int64(len(buf))
	}
	return req, nil
}

// bodyReader is a request body whose bytes the platform can take without a copy.
type bodyReader struct {
	*bytes.Reader
	b []byte
}

func (bodyReader) Close() error    { return nil }
func (r bodyReader) Bytes() []byte { return r.b }

// tooLarge is the body of a request the host did not read because it is over the limit: reading it fails as
// http.MaxBytesReader would.
type tooLarge struct{ limit int64 }

func (t tooLarge) Read([]byte) (int, error) { return 0, &http.MaxBytesError{Limit: t.limit} }
func (tooLarge) Close() error               { return nil }

// bytesOf copies a Uint8Array into Go.
func bytesOf(u8 js.Value) []byte {
	buf := make([]byte, u8.Get("byteLength").Int())
	js.CopyBytesToGo(buf, u8)
	return buf
}

// toHeader reads a flat [name, value, …] array.
func toHeader(v js.Value) http.Header {
	h := http.Header{}
	if v.Type() != js.TypeObject {
		return h
	}
	n := v.Length()
	for i := 0; i+1 < n; i += 2 {
		h.Add(v.Index(i).String(), v.Index(i+1).String())
	}
	return h
}

// flat writes h as a flat [name, value, …] array.
func flat(h http.Header) js.Value {
	a := make([]any, 0, 2*len(h))
	for k, vs := range h {
		for _, v := range vs {
			a = append(a, k, v)
		}
	}
	return js.ValueOf(a)
}

func uint8Array(b []byte) js.Value {
	u8 := js.Global().Get("Uint8Array").New(len(b))
	js.CopyBytesToJS(u8, b)
	return u8
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// toJS makes the plain object of an op (CONTRACT.md §4).
func toJS(op hostcall.Op) js.Value {
	o := js.Global().Get("Object").New()
	o.Set("op", op.Kind)
	if op.ID != 0 {
		o.Set("id", float64(op.ID))
	}
	body := func() {
		if op.Body != nil {
			o.Set("body", uint8Array(op.Body))
		} else {
			o.Set("body", js.Null())
		}
	}
	switch op.Kind {
	case hostcall.OpFetch, hostcall.OpObject:
		o.Set("method", op.Method)
		o.Set("headers", flat(op.Header))
		body()
		o.Set("timeout", ms(op.Timeout))
		if op.Kind == hostcall.OpFetch {
			o.Set("url", op.URL)
			o.Set("limit", float64(op.Limit))
		} else {
			o.Set("namespace", op.Namespace)
			o.Set("name", op.Name)
			o.Set("path", op.Path)
		}
	case hostcall.OpStorage:
		o.Set("call", op.Call)
		switch op.Call {
		case "get":
			o.Set("key", op.Key)
		case "put":
			a := make([]any, 0, 2*len(op.Entries))
			for k, v := range op.Entries {
				a = append(a, k, v)
			}
			o.Set("entries", js.ValueOf(a))
		case "delete":
			a := make([]any, len(op.Keys))
			for i, k := range op.Keys {
				a[i] = k
			}
			o.Set("keys", js.ValueOf(a))
		case "list":
			o.Set("prefix", op.Prefix)
		case "setAlarm":
			o.Set("time", float64(op.Time.UnixMilli()))
		}
	case hostcall.OpSleep:
		o.Set("ms", ms(op.Sleep))
	case hostcall.OpAbort:
		o.Set("target", float64(op.Target))
	case hostcall.OpResponse:
		o.Set("status", op.Status)
		o.Set("headers", flat(op.Header))
		body()
	case hostcall.OpDone:
		if op.Err != "" {
			o.Set("error", op.Err)
		}
	default:
		panic(fmt.Sprintf("jsbind: unknown op %q", op.Kind))
	}
	return o
}

// toResult reads the host's result object.
func toResult(v js.Value) hostcall.Result {
	var r hostcall.Result
	if v.Type() != js.TypeObject {
		return hostcall.Result{Err: hostcall.ErrInvalid, Message: "result is not an object"}
	}
	if e := v.Get("error"); e.Type() == js.TypeString {
		r.Err, r.Message = e.String(), str(v.Get("message"))
		return r
	}
	if s := v.Get("status"); s.Type() == js.TypeNumber {
		r.Status = s.Int()
		r.Header = toHeader(v.Get("headers"))
		if b := v.Get("body"); b.Type() == js.TypeObject {
			r.Body = bytesOf(b)
		}
	}
	if val := v.Get("value"); val.Type() == js.TypeString {
		r.Value, r.Found = val.String(), true
	}
	if t := v.Get("time"); t.Type() == js.TypeNumber {
		r.Time, r.Found = time.UnixMilli(int64(t.Float())), true
	}
	if e := v.Get("entries"); e.Type() == js.TypeObject {
		n := e.Length()
		r.Entries = make(map[string]string, n/2)
		for i := 0; i+1 < n; i += 2 {
			r.Entries[e.Index(i).String()] = e.Index(i + 1).String()
		}
	}
	return r
}

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

// HostKind is context.host.kind ("workerd", "wazero").
func HostKind() string {
	if k := str(js.Global().Get("context").Get("host").Get("kind")); k != "" {
		return k
	}
	return "unknown"
}
