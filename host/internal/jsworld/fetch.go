package jsworld

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/evmlb/evmlb/host/internal/jsrt"
)

// Request is the Fetch API's Request.
type Request struct {
	jsrt.Base
	w       *World
	URL     string
	Method  string
	Headers *Headers
	Body    *ReadableStream
	Signal  jsrt.Value
	// Redirect is the redirect mode: "follow" (the default), "manual" (a 3xx is the answer) or "error" (a 3xx
	// rejects the fetch), as in workerd.
	Redirect string
}

// Response is the Fetch API's Response.
type Response struct {
	jsrt.Base
	w          *World
	Status     int
	StatusText string
	Headers    *Headers
	Body       *ReadableStream
	URL        string
	Redirected bool
}

// NewRequest returns a Request.
func (w *World) NewRequest(method, rawURL string, h *Headers, body *ReadableStream) *Request {
	if h == nil {
		h = w.newHeaders()
	}
	req := &Request{w: w, URL: rawURL, Method: method, Headers: h, Body: body, Signal: jsrt.Undefined, Redirect: "follow"}
	req.Class = w.requestCtor
	return req
}

// newRequest is `new Request(input, init)`.
func (w *World) newRequest(args []jsrt.Value) (jsrt.Value, error) {
	init := jsrt.Arg(args, 1)
	opt := func(k string) jsrt.Value { return jsrt.Get(init, k) }
	req := w.NewRequest("GET", "", nil, nil)
	switch in := jsrt.Arg(args, 0).(type) {
	case *Request:
		req.URL, req.Method, req.Body, req.Signal, req.Redirect = in.URL, in.Method, in.Body, in.Signal, in.Redirect
		req.Headers, _ = w.headersFrom(in.Headers)
	default:
		req.URL = jsrt.ToString(in)
	}
	if m := opt("method"); m != jsrt.Undefined {
		req.Method = strings.ToUpper(jsrt.ToString(m))
	}
	if h := opt("headers"); h != jsrt.Undefined {
		hs, err := w.headersFrom(h)
		if err != nil {
			return nil, err
		}
		req.Headers = hs
	}
	if o, ok := init.(jsrt.Object); ok && hasOwn(o, "body") && o.Get("body") != jsrt.Undefined {
		body, err := w.bodyFrom(o.Get("body"))
		if err != nil {
			return nil, err
		}
		req.Body = body
	}
	if s := opt("signal"); s != jsrt.Undefined {
		req.Signal = s
	}
	if rd := opt("redirect"); rd != jsrt.Undefined {
		switch m := jsrt.ToString(rd); m {
		case "follow", "manual", "error":
			req.Redirect = m
		default:
			return nil, jsrt.Throw(w.realm.NewTypeError("Request redirect must be \"follow\", \"manual\" or \"error\"."))
		}
	}
	if req.Body != nil && (req.Method == "GET" || req.Method == "HEAD") {
		// As workerd (and the Fetch standard) do: a program that works here must work there.
		return nil, jsrt.Throw(w.realm.NewTypeError("Request with a GET or HEAD method cannot have a body."))
	}
	return req, nil
}

func hasOwn(o jsrt.Object, key string) bool {
	if p, ok := o.(interface {
		Own(string) (jsrt.Value, bool)
	}); ok {
		_, has := p.Own(key)
		return has
	}
	return false
}

// Get implements jsrt.Object.
func (req *Request) Get(key string) jsrt.Value {
	switch key {
	case "url":
		return req.URL
	case "method":
		return req.Method
	case "headers":
		return req.Headers
	case "body":
		if req.Body == nil {
			return nil
		}
		return req.Body
	case "signal":
		return req.Signal
	case "redirect":
		return req.Redirect
	}
	if v, ok := req.w.bodyMethod(key, func() *ReadableStream { return req.Body }); ok {
		return v
	}
	return req.Base.Get(key)
}

// NewResponse returns a Response.
func (w *World) NewResponse(status int, h *Headers, body *ReadableStream) *Response {
	if h == nil {
		h = w.newHeaders()
	}
	res := &Response{w: w, Status: status, Headers: h, Body: body}
	res.Class = w.responseCtor
	return res
}

// newResponse is `new Response(body, init)`.
func (w *World) newResponse(args []jsrt.Value) (jsrt.Value, error) {
	body, err := w.bodyFrom(jsrt.Arg(args, 0))
	if err != nil {
		return nil, err
	}
	init := jsrt.Arg(args, 1)
	res := w.NewResponse(200, nil, body)
	if s := jsrt.Get(init, "status"); s != jsrt.Undefined {
		res.Status = int(jsrt.ToNumber(s))
		if res.Status < 200 || res.Status > 599 {
			return nil, jsrt.Throw(w.realm.NewTypeError("invalid response status"))
		}
	}
	if t := jsrt.Get(init, "statusText"); t != jsrt.Undefined {
		res.StatusText = jsrt.ToString(t)
	}
	if h := jsrt.Get(init, "headers"); h != jsrt.Undefined {
		if res.Headers, err = w.headersFrom(h); err != nil {
			return nil, err
		}
	}
	return res, nil
}

// Get implements jsrt.Object.
func (res *Response) Get(key string) jsrt.Value {
	switch key {
	case "status":
		return float64(res.Status)
	case "statusText":
		return res.StatusText
	case "ok":
		return res.Status >= 200 && res.Status < 300
	case "headers":
		return res.Headers
	case "body":
		if res.Body == nil {
			return nil
		}
		return res.Body
	case "url":
		return res.URL
	case "redirected":
		return res.Redirected
	}
	if v, ok := res.w.bodyMethod(key, func() *ReadableStream { return res.Body }); ok {
		return v
	}
	return res.Base.Get(key)
}

// AbortSignal is an AbortController's signal.
type AbortSignal struct {
	jsrt.Base
	w         *World
	aborted   bool
	reason    jsrt.Value
	listeners []func(reason jsrt.Value)
}

// onAbort runs fn when the signal aborts (at once if it has).
func (s *AbortSignal) onAbort(fn func(reason jsrt.Value)) {
	if s.aborted {
		fn(s.reason)
		return
	}
	s.listeners = append(s.listeners, fn)
}

func (s *AbortSignal) abort(reason jsrt.Value) {
	if s.aborted {
		return
	}
	if reason == jsrt.Undefined {
		e := s.w.realm.NewError("The operation was aborted.")
		e.Set("name", "AbortError")
		reason = e
	}
	s.aborted, s.reason = true, reason
	ls := s.listeners
	s.listeners = nil
	for _, fn := range ls {
		fn(reason)
	}
	if h, ok := s.Base.Get("onabort").(jsrt.Callable); ok {
		h.Call(s, nil)
	}
}

// Get implements jsrt.Object.
func (s *AbortSignal) Get(key string) jsrt.Value {
	switch key {
	case "aborted":
		return s.aborted
	case "reason":
		if s.reason == nil {
			return jsrt.Undefined
		}
		return s.reason
	case "addEventListener":
		return jsrt.Method(key, func(a []jsrt.Value) (jsrt.Value, error) {
			if jsrt.ToString(jsrt.Arg(a, 0)) == "abort" {
				fn := jsrt.Arg(a, 1)
				s.onAbort(func(jsrt.Value) { jsrt.Call(s.w.realm, fn, s) })
			}
			return jsrt.Undefined, nil
		})
	case "throwIfAborted":
		return jsrt.Method(key, func([]jsrt.Value) (jsrt.Value, error) {
			if s.aborted {
				return nil, jsrt.Throw(s.reason)
			}
			return jsrt.Undefined, nil
		})
	}
	return s.Base.Get(key)
}

// newAbortController is `new AbortController()`.
func (w *World) newAbortController([]jsrt.Value) (jsrt.Value, error) {
	sig := &AbortSignal{w: w, reason: jsrt.Undefined}
	c := w.realm.NewObject("signal", sig)
	c.Class = w.abortCtor
	c.Set("abort", jsrt.Method("abort", func(a []jsrt.Value) (jsrt.Value, error) {
		sig.abort(jsrt.Arg(a, 0))
		return jsrt.Undefined, nil
	}))
	return c, nil
}

// fetch is the global fetch(input, init): outbound HTTP through net/http on another goroutine. The response
// body streams; aborting the signal cancels the request and rejects or errors what is still pending.
func (w *World) fetch(args []jsrt.Value) (jsrt.Value, error) {
	r := w.realm
	p := r.NewPromise()
	v, err := w.newRequest(args)
	if err != nil {
		p.Reject(jsrt.ThrownValue(r, err))
		return p, nil
	}
	req := v.(*Request)
	u, err := url.Parse(req.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		p.Reject(r.NewTypeError("fetch: invalid URL"))
		return p, nil
	}
	ctx, cancel := context.WithCancel(w.ctx)
	var body *Response
	if sig, ok := req.Signal.(*AbortSignal); ok {
		sig.onAbort(func(reason jsrt.Value) {
			cancel()
			p.Reject(reason)
			if body != nil && body.Body != nil {
				body.Body.fail(reason)
			}
		})
	}
	send := func(data []byte) {
		var rd io.Reader
		if data != nil {
			rd = bytes.NewReader(data)
		}
		hreq, err := http.NewRequestWithContext(ctx, req.Method, req.URL, rd)
		if err != nil {
			cancel()
			p.Reject(r.NewTypeError("fetch: invalid request"))
			return
		}
		hreq.Header = req.Headers.HTTP()
		if host := hreq.Header.Get("Host"); host != "" {
			hreq.Host = host
		}
		go func() {
			resp, err := w.client(req.Redirect).Do(hreq)
			if !w.loop.Post(func() { w.fetched(p, resp, err, &body, cancel) }) {
				cancel()
				if resp != nil {
					resp.Body.Close()
				}
			}
		}()
	}
	if req.Body == nil {
		send(nil)
	} else {
		req.Body.ReadAll(func(data []byte, reason jsrt.Value) {
			if reason != nil {
				cancel()
				p.Reject(reason)
				return
			}
			send(data)
		})
	}
	return p, nil
}

// client is the HTTP client of a redirect mode: the configured one follows redirects; for "manual" a copy of it
// returns the 3xx as the answer (its body streams as any other), for "error" a copy fails on it, so that the
// fetch rejects. Never following matters to the balancer: a provider's redirect must not send a client's request
// to an endpoint nobody configured.
func (w *World) client(mode string) *http.Client {
	c := *w.cfg.Client
	switch mode {
	case "manual":
		c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	case "error":
		c.CheckRedirect = func(*http.Request, []*http.Request) error { return errRedirect }
	default:
		return w.cfg.Client
	}
	return &c
}

var errRedirect = errors.New("unexpected redirect")

// fetched settles a fetch on the loop.
func (w *World) fetched(p *jsrt.Promise, resp *http.Response, err error, out **Response, cancel context.CancelFunc) {
	r := w.realm
	if st, _ := p.State(); st != jsrt.Pending {
		cancel()
		if resp != nil {
			resp.Body.Close()
		}
		return
	}
	if err != nil {
		cancel()
		p.Reject(networkError(r, err))
		return
	}
	res := w.NewResponse(resp.StatusCode, w.headersFromHTTP(resp.Header), nil)
	res.StatusText = http.StatusText(resp.StatusCode)
	res.URL = resp.Request.URL.String()
	res.Redirected = resp.Request.Response != nil
	rc := &cancelOnClose{ReadCloser: resp.Body, cancel: cancel}
	res.Body = w.ReaderStream(rc, func(err error) jsrt.Value { return networkError(r, err) })
	*out = res
	p.Resolve(res)
}

// networkError is the TypeError fetch rejects with. It carries the cause without the URL (which may hold a key).
func networkError(r *jsrt.Realm, err error) jsrt.Value {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	e := r.NewTypeError("fetch failed")
	e.Set("cause", r.NewError(err.Error()))
	return e
}

type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (c *cancelOnClose) Close() error {
	err := c.ReadCloser.Close()
	c.cancel()
	return err
}
