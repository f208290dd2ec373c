//go:build js && wasm

package jsbind

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"syscall/js"
)

// Fetch sends req with the host's fetch (CONTRACT.md §2) and returns the answer with its body streamed. The
// request's context cancels it through an AbortController, in flight or while the body is read.
//
// Why not net/http's client, which on js/wasm also uses fetch: http.Transport keeps its native fallback (TLS,
// x509, HTTP/2) linked in, which made app.wasm 12 MB (3.2 MB gzipped, over the 3 MB a Worker may have on the
// free plan); calling fetch here lets the linker drop all of it (7.3 MB, 2.0 MB gzipped).
//
// A redirect is never followed (redirect "manual": the 3xx is the answer, see platform.Platform.Fetch).
func Fetch(req *http.Request) (*http.Response, error) {
	return roundTrip(req, false, func(url string, init js.Value) js.Value {
		init.Set("redirect", "manual")
		return js.Global().Call("fetch", url, init)
	})
}

// roundTrip sends req through send (the global fetch, or a Durable Object stub's fetch) and reads the answer. The
// request's body is sent whole, as a Uint8Array. The answer's body is streamed through its reader, so that the
// caller can stop reading at its limit; with whole, it is read in one arrayBuffer() call instead, for answers
// whose size our own code already bounded (a Durable Object's): one promise instead of one per chunk took an
// 8 MB answer from ~3 s to ~0.6 s in workerd. Every JS callback it registers is released (a Go runtime here lives
// as long as its isolate: a leaked js.Func is kept for that long).
func roundTrip(req *http.Request, whole bool, send func(url string, init js.Value) js.Value) (*http.Response, error) {
	ctx := req.Context()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var body []byte
	if req.Body != nil {
		b, err := io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, err
		}
		body = b
	}
	var resp *http.Response
	err := catch(func() error {
		ac := js.Global().Get("AbortController").New()
		init := js.Global().Get("Object").New()
		init.Set("method", req.Method)
		init.Set("headers", jsHeaders(req.Header))
		if body != nil {
			init.Set("body", uint8Array(body))
		}
		init.Set("signal", ac.Get("signal"))
		stop := context.AfterFunc(ctx, func() { _ = catch(func() error { ac.Call("abort"); return nil }) })
		v, err := await(ctx, send(req.URL.String(), init))
		if err != nil {
			stop()
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return err
		}
		resp = &http.Response{
			Status:     http.StatusText(v.Get("status").Int()),
			StatusCode: v.Get("status").Int(),
			Proto:      "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
			Header:        responseHeader(v.Get("headers")),
			ContentLength: -1,
			Request:       req,
			Body:          http.NoBody,
		}
		b := v.Get("body")
		switch {
		case b.Type() != js.TypeObject:
			stop()
		case whole:
			defer stop()
			ab, err := await(ctx, v.Call("arrayBuffer"))
			if err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				return err
			}
			u8 := js.Global().Get("Uint8Array").New(ab)
			buf := make([]byte, u8.Get("byteLength").Int())
			js.CopyBytesToGo(buf, u8)
			resp.Body = io.NopCloser(bytes.NewReader(buf))
			resp.ContentLength = int64(len(buf))
		default:
			resp.Body = &streamBody{ctx: ctx, reader: b.Call("getReader"), stop: stop}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return resp, nil
}

// jsHeaders makes a JS Headers of h.
func jsHeaders(h http.Header) js.Value {
	out := js.Global().Get("Headers").New()
	for k, vs := range h {
		for _, v := range vs {
			out.Call("append", k, v)
		}
	}
	return out
}

// uint8Array copies b into a new JS Uint8Array.
func uint8Array(b []byte) js.Value {
	u8 := js.Global().Get("Uint8Array").New(len(b))
	js.CopyBytesToJS(u8, b)
	return u8
}

// responseHeader reads a JS Headers object through its entries() iterator.
func responseHeader(h js.Value) http.Header {
	out := http.Header{}
	it := h.Call("entries")
	for {
		n := it.Call("next")
		if n.Get("done").Bool() {
			return out
		}
		kv := n.Get("value")
		k := kv.Index(0).String()
		for _, v := range strings.Split(kv.Index(1).String(), ", ") {
			out.Add(k, v)
		}
	}
}

// streamBody reads a JS ReadableStream's default reader chunk by chunk.
type streamBody struct {
	ctx    context.Context
	reader js.Value
	buf    []byte // the rest of the last chunk
	done   bool
	stop   func() bool // releases the abort hook
}

func (b *streamBody) Read(p []byte) (int, error) {
	for len(b.buf) == 0 {
		if b.done {
			return 0, io.EOF
		}
		if err := b.next(); err != nil {
			return 0, err
		}
	}
	n := copy(p, b.buf)
	b.buf = b.buf[n:]
	return n, nil
}

// next reads one chunk into buf, or marks the end.
func (b *streamBody) next() error {
	return catch(func() error {
		v, err := await(b.ctx, b.reader.Call("read"))
		if err != nil {
			if b.ctx.Err() != nil {
				return b.ctx.Err()
			}
			return err
		}
		if v.Get("done").Bool() {
			b.done = true
			b.stop()
			return nil
		}
		chunk := v.Get("value")
		if chunk.Type() != js.TypeObject {
			return errors.New("fetch: a body chunk is not a Uint8Array")
		}
		b.buf = make([]byte, chunk.Get("byteLength").Int())
		js.CopyBytesToGo(b.buf, chunk)
		return nil
	})
}

// Close cancels the stream when it was not read to its end.
func (b *streamBody) Close() error {
	if b.done {
		return nil
	}
	b.done = true
	b.stop()
	return catch(func() error { b.reader.Call("cancel"); return nil })
}
