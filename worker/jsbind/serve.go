//go:build js && wasm

package jsbind

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/url"
	"syscall/js"
)

// Serve registers binding.handleRequest(request) (CONTRACT.md §2): the JS Request becomes an *http.Request, h
// answers it into a buffer, and the promise resolves with a JS Response holding the whole body.
//
// Why not github.com/syumai/workers' bridge: it was written for a Go runtime per request, so it never releases
// what it registers: one js.Func of each then/catch pair per awaited promise and per body chunk, and the pull and
// cancel functions of every body it streams, each holding a 16 KB buffer. In a runtime kept for the isolate's life
// that leaked about 100 KB per client request (measured in the wazero host: 2,000 requests, +200 MB), so an
// isolate would hit its 128 MB after about a thousand requests. Our answers are whole JSON documents already,
// so a buffered Response costs nothing a stream would save.
func Serve(h http.Handler) {
	binding := js.Global().Get("context").Get("binding")
	binding.Set("handleRequest", js.FuncOf(func(_ js.Value, args []js.Value) any {
		if len(args) != 1 {
			return js.Global().Get("Promise").Call("reject", js.Global().Get("Error").New("handleRequest(request)"))
		}
		jsReq := args[0]
		return newValuePromise(func() (js.Value, error) {
			req, err := toRequest(jsReq)
			if err != nil {
				return js.Undefined(), err
			}
			w := &bufferedResponse{header: http.Header{}}
			h.ServeHTTP(w, req)
			return w.toJS(), nil
		})
	}))
}

// toRequest makes an *http.Request of a JS Request; its body is read from the JS stream as the handler reads it.
func toRequest(v js.Value) (*http.Request, error) {
	var req *http.Request
	err := catch(func() error {
		u, err := url.Parse(v.Get("url").String())
		if err != nil {
			return errors.New("request URL does not parse")
		}
		req = (&http.Request{
			Method:     v.Get("method").String(),
			URL:        u,
			Proto:      "HTTP/1.1",
			ProtoMajor: 1, ProtoMinor: 1,
			Header:     responseHeader(v.Get("headers")),
			Host:       u.Host,
			RequestURI: u.RequestURI(),
			Body:       http.NoBody,
		}).WithContext(context.Background())
		req.ContentLength = -1
		if b := v.Get("body"); b.Type() == js.TypeObject {
			req.Body = &streamBody{ctx: context.Background(), reader: b.Call("getReader"), stop: func() bool { return true }}
		}
		return nil
	})
	return req, err
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

// toJS makes the JS Response: new Response(body or null, {status, headers}).
func (w *bufferedResponse) toJS() js.Value {
	w.WriteHeader(http.StatusOK)
	init := js.Global().Get("Object").New()
	init.Set("status", w.status)
	init.Set("headers", jsHeaders(w.header))
	body := js.Null()
	if w.body.Len() > 0 {
		body = uint8Array(w.body.Bytes())
	}
	return js.Global().Get("Response").New(body, init)
}
