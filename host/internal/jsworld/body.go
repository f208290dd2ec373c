package jsworld

import (
	"errors"
	"io"

	"github.com/evmlb/evmlb/host/internal/jsrt"
)

// chunkSize is the most a native stream reads per pull.
const chunkSize = 16 << 10

// ReaderStream returns a stream that reads rc chunk by chunk on another goroutine, one read per pull. rc is
// closed at the end, on error and on cancel. onError, if set, maps a read error to the JS reason.
func (w *World) ReaderStream(rc io.ReadCloser, onError func(error) jsrt.Value) *ReadableStream {
	buf := make([]byte, chunkSize)
	closed := false
	closeRC := func() {
		if !closed {
			closed = true
			go rc.Close()
		}
	}
	src := &nativeSource{
		pull: func(c *Controller) *jsrt.Promise {
			p := w.realm.NewPromise()
			go func() {
				n, err := rc.Read(buf)
				chunk := append([]byte(nil), buf[:n]...)
				if !w.loop.Post(func() {
					if closed {
						p.Resolve(jsrt.Undefined)
						return
					}
					if n > 0 {
						c.Enqueue(w.realm.NewUint8Array(chunk))
					}
					switch {
					case errors.Is(err, io.EOF):
						closeRC()
						c.Close()
					case err != nil:
						closeRC()
						reason := jsrt.Value(w.realm.NewTypeError("network error"))
						if onError != nil {
							reason = onError(err)
						}
						c.Error(reason)
					}
					p.Resolve(jsrt.Undefined)
				}) {
					rc.Close()
				}
			}()
			return p
		},
		cancel: closeRC,
	}
	return w.NewStream(src)
}

// bodyFrom converts a body init (ReadableStream, Uint8Array, ArrayBuffer, string, null or undefined) to a
// stream, or nil for no body.
func (w *World) bodyFrom(v jsrt.Value) (*ReadableStream, error) {
	switch b := v.(type) {
	case *ReadableStream:
		return b, nil
	case *jsrt.Uint8Array:
		return w.bytesStream(append([]byte(nil), b.Bytes()...)), nil
	case *jsrt.ArrayBuffer:
		return w.bytesStream(append([]byte(nil), b.Data...)), nil
	case string:
		return w.bytesStream([]byte(b)), nil
	case nil:
		return nil, nil
	}
	if v == jsrt.Undefined {
		return nil, nil
	}
	return nil, jsrt.Throw(w.realm.NewTypeError("unsupported body type"))
}

// consume reads a body whole: the shared part of arrayBuffer() and text().
func (w *World) consume(body *ReadableStream, convert func([]byte) jsrt.Value) *jsrt.Promise {
	p := w.realm.NewPromise()
	if body == nil {
		p.Resolve(convert(nil))
		return p
	}
	if body.disturbed || body.reader != nil {
		p.Reject(w.realm.NewTypeError("body has already been used"))
		return p
	}
	body.reader = &Reader{s: body}
	body.ReadAll(func(data []byte, err jsrt.Value) {
		if err != nil {
			p.Reject(err)
			return
		}
		p.Resolve(convert(data))
	})
	return p
}

// bodyMethods are the Body mixin's methods shared by Request and Response.
func (w *World) bodyMethod(key string, body func() *ReadableStream) (jsrt.Value, bool) {
	switch key {
	case "arrayBuffer":
		return jsrt.Method(key, func([]jsrt.Value) (jsrt.Value, error) {
			return w.consume(body(), func(b []byte) jsrt.Value { return w.realm.NewArrayBuffer(b) }), nil
		}), true
	case "text":
		return jsrt.Method(key, func([]jsrt.Value) (jsrt.Value, error) {
			return w.consume(body(), func(b []byte) jsrt.Value { return string(b) }), nil
		}), true
	case "bodyUsed":
		b := body()
		return b != nil && b.disturbed, true
	}
	return nil, false
}

// pipe returns a new stream carrying src's bytes, as a body that crosses workerd's Durable Object boundary
// does: chunks are copied and empty ones vanish (Go's syumai/workers reader takes an empty chunk for the end).
func (w *World) pipe(src *ReadableStream) *ReadableStream {
	if src == nil {
		return nil
	}
	src.reader = &Reader{s: src}
	return w.NewStream(&nativeSource{
		pull: func(c *Controller) *jsrt.Promise {
			p := w.realm.NewPromise()
			var step func()
			step = func() {
				src.Read().Then(func(res jsrt.Value) {
					if jsrt.Truthy(jsrt.Get(res, "done")) {
						c.Close()
						p.Resolve(jsrt.Undefined)
						return
					}
					u, ok := jsrt.Get(res, "value").(*jsrt.Uint8Array)
					switch {
					case !ok:
						c.Error(w.realm.NewTypeError("body chunk is not a Uint8Array"))
					case u.Length == 0:
						step() // nothing to pass on: read on
						return
					default:
						c.Enqueue(w.realm.NewUint8Array(append([]byte(nil), u.Bytes()...)))
					}
					p.Resolve(jsrt.Undefined)
				}, func(reason jsrt.Value) {
					c.Error(reason)
					p.Resolve(jsrt.Undefined)
				})
			}
			step()
			return p
		},
		cancel: func() { src.Cancel(jsrt.Undefined) },
	})
}
