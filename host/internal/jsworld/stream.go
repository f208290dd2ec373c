package jsworld

import (
	"github.com/evmlb/evmlb/host/internal/jsrt"
)

// Source feeds a ReadableStream (the "underlying source"). Each method may return a promise; a nil or
// non-promise result counts as done at once.
type Source interface {
	Start(c *Controller) (jsrt.Value, error)
	Pull(c *Controller) (jsrt.Value, error)
	Cancel(reason jsrt.Value) (jsrt.Value, error)
}

// stream states
const (
	readable = iota
	closed
	errored
)

// ReadableStream is a WHATWG ReadableStream with a high-water mark of one chunk.
type ReadableStream struct {
	jsrt.Base
	w         *World
	source    Source
	ctrl      *Controller
	queue     []jsrt.Value
	state     int
	err       jsrt.Value
	closing   bool // close() was called; closes once the queue drains
	started   bool
	pulling   bool
	pullAgain bool
	reads     []*jsrt.Promise
	reader    *Reader
	disturbed bool
}

// Controller is a ReadableStreamDefaultController.
type Controller struct {
	jsrt.Base
	s *ReadableStream
}

// Reader is a ReadableStreamDefaultReader.
type Reader struct {
	jsrt.Base
	s *ReadableStream
}

// NewStream returns a stream fed by src, starting it.
func (w *World) NewStream(src Source) *ReadableStream {
	s := &ReadableStream{w: w, source: src}
	s.Class = w.streamCtor
	s.ctrl = &Controller{s: s}
	res, err := src.Start(s.ctrl)
	if err != nil {
		s.fail(jsrt.ThrownValue(w.realm, err))
		return s
	}
	w.realm.Resolved(res).Then(func(jsrt.Value) {
		s.started = true
		s.pullIfNeeded()
	}, s.fail)
	return s
}

// bytesStream is a stream holding one chunk, then closed (a body given as bytes).
func (w *World) bytesStream(b []byte) *ReadableStream {
	return w.NewStream(&nativeSource{start: func(c *Controller) {
		if len(b) > 0 {
			c.Enqueue(w.realm.NewUint8Array(b))
		}
		c.Close()
	}})
}

// Enqueue adds a chunk, handing it to a waiting read if there is one.
func (c *Controller) Enqueue(chunk jsrt.Value) error {
	s := c.s
	if s.state != readable || s.closing {
		return jsrt.Throw(s.w.realm.NewTypeError("enqueue on a closed stream"))
	}
	if len(s.reads) > 0 {
		p := s.reads[0]
		s.reads = s.reads[1:]
		p.Resolve(s.w.realm.NewObject("done", false, "value", chunk))
	} else {
		s.queue = append(s.queue, chunk)
	}
	s.pullIfNeeded()
	return nil
}

// Close closes the stream once the queued chunks are read.
func (c *Controller) Close() {
	s := c.s
	if s.state != readable || s.closing {
		return
	}
	s.closing = true
	if len(s.queue) == 0 {
		s.finish()
	}
}

// Error errors the stream: pending and later reads reject with reason.
func (c *Controller) Error(reason jsrt.Value) { c.s.fail(reason) }

func (s *ReadableStream) finish() {
	s.state = closed
	reads := s.reads
	s.reads = nil
	for _, p := range reads {
		p.Resolve(s.w.realm.NewObject("done", true, "value", jsrt.Undefined))
	}
}

func (s *ReadableStream) fail(reason jsrt.Value) {
	if s.state != readable {
		return
	}
	s.state, s.err, s.queue = errored, reason, nil
	reads := s.reads
	s.reads = nil
	for _, p := range reads {
		p.Reject(reason)
	}
}

func (s *ReadableStream) pullIfNeeded() {
	if !s.started || s.state != readable || s.closing {
		return
	}
	if len(s.reads) == 0 && len(s.queue) >= 1 {
		return
	}
	if s.pulling {
		s.pullAgain = true
		return
	}
	s.pulling = true
	res, err := s.source.Pull(s.ctrl)
	if err != nil {
		s.fail(jsrt.ThrownValue(s.w.realm, err))
		return
	}
	s.w.realm.Resolved(res).Then(func(jsrt.Value) {
		s.pulling = false
		if s.pullAgain {
			s.pullAgain = false
			s.pullIfNeeded()
		}
	}, s.fail)
}

// Read returns a promise of {done, value}.
func (s *ReadableStream) Read() *jsrt.Promise {
	r := s.w.realm
	p := r.NewPromise()
	s.disturbed = true
	switch {
	case len(s.queue) > 0:
		chunk := s.queue[0]
		s.queue[0] = nil
		s.queue = s.queue[1:]
		p.Resolve(r.NewObject("done", false, "value", chunk))
		if s.closing && len(s.queue) == 0 {
			s.finish()
		} else {
			s.pullIfNeeded()
		}
	case s.state == closed:
		p.Resolve(r.NewObject("done", true, "value", jsrt.Undefined))
	case s.state == errored:
		p.Reject(s.err)
	default:
		s.reads = append(s.reads, p)
		s.pullIfNeeded()
	}
	return p
}

// Cancel cancels the stream and tells its source.
func (s *ReadableStream) Cancel(reason jsrt.Value) *jsrt.Promise {
	r := s.w.realm
	s.disturbed = true
	switch s.state {
	case closed:
		return r.Resolved(jsrt.Undefined)
	case errored:
		return r.RejectedWith(s.err)
	}
	s.queue = nil
	s.finish()
	res, err := s.source.Cancel(reason)
	if err != nil {
		return r.RejectedWith(jsrt.ThrownValue(r, err))
	}
	done := r.NewPromise()
	r.Resolved(res).Then(func(jsrt.Value) { done.Resolve(jsrt.Undefined) }, done.Reject)
	return done
}

// ReadAll reads every chunk (Uint8Arrays) and calls done once, on the loop.
func (s *ReadableStream) ReadAll(done func(data []byte, err jsrt.Value)) {
	var buf []byte
	var next func()
	next = func() {
		s.Read().Then(func(res jsrt.Value) {
			if jsrt.Truthy(jsrt.Get(res, "done")) {
				done(buf, nil)
				return
			}
			if u, ok := jsrt.Get(res, "value").(*jsrt.Uint8Array); ok {
				buf = append(buf, u.Bytes()...)
			}
			next()
		}, func(reason jsrt.Value) { done(nil, reason) })
	}
	next()
}

// Get implements jsrt.Object.
func (s *ReadableStream) Get(key string) jsrt.Value {
	r := s.w.realm
	switch key {
	case "locked":
		return s.reader != nil
	case "getReader":
		return jsrt.Method(key, func([]jsrt.Value) (jsrt.Value, error) {
			if s.reader != nil {
				return nil, jsrt.Throw(r.NewTypeError("ReadableStream is locked"))
			}
			s.reader = &Reader{s: s}
			return s.reader, nil
		})
	case "cancel":
		return jsrt.Method(key, func(a []jsrt.Value) (jsrt.Value, error) { return s.Cancel(jsrt.Arg(a, 0)), nil })
	}
	return s.Base.Get(key)
}

// Get implements jsrt.Object.
func (rd *Reader) Get(key string) jsrt.Value {
	s := rd.s
	switch key {
	case "read":
		return jsrt.Method(key, func([]jsrt.Value) (jsrt.Value, error) { return s.Read(), nil })
	case "cancel":
		return jsrt.Method(key, func(a []jsrt.Value) (jsrt.Value, error) { return s.Cancel(jsrt.Arg(a, 0)), nil })
	case "releaseLock":
		return jsrt.Method(key, func([]jsrt.Value) (jsrt.Value, error) {
			if s.reader == rd {
				s.reader = nil
			}
			return jsrt.Undefined, nil
		})
	}
	return rd.Base.Get(key)
}

// Get implements jsrt.Object.
func (c *Controller) Get(key string) jsrt.Value {
	switch key {
	case "enqueue":
		return jsrt.Method(key, func(a []jsrt.Value) (jsrt.Value, error) { return jsrt.Undefined, c.Enqueue(jsrt.Arg(a, 0)) })
	case "close":
		return jsrt.Method(key, func([]jsrt.Value) (jsrt.Value, error) { c.Close(); return jsrt.Undefined, nil })
	case "error":
		return jsrt.Method(key, func(a []jsrt.Value) (jsrt.Value, error) { c.Error(jsrt.Arg(a, 0)); return jsrt.Undefined, nil })
	case "desiredSize":
		if c.s.state != readable {
			return 0.0
		}
		return float64(1 - len(c.s.queue))
	}
	return c.Base.Get(key)
}

// jsSource is an underlying source given by JS code: an object with optional start, pull and cancel.
type jsSource struct {
	w   *World
	obj jsrt.Value
}

func (j jsSource) call(name string, arg jsrt.Value) (jsrt.Value, error) {
	fn := jsrt.Get(j.obj, name)
	if _, ok := fn.(jsrt.Callable); !ok {
		return jsrt.Undefined, nil
	}
	return jsrt.Call(j.w.realm, fn, j.obj, arg)
}

func (j jsSource) Start(c *Controller) (jsrt.Value, error)      { return j.call("start", c) }
func (j jsSource) Pull(c *Controller) (jsrt.Value, error)       { return j.call("pull", c) }
func (j jsSource) Cancel(reason jsrt.Value) (jsrt.Value, error) { return j.call("cancel", reason) }

// nativeSource is a source implemented by the host; pull returns a promise it settles itself.
type nativeSource struct {
	start  func(c *Controller)
	pull   func(c *Controller) *jsrt.Promise
	cancel func()
}

func (n *nativeSource) Start(c *Controller) (jsrt.Value, error) {
	if n.start != nil {
		n.start(c)
	}
	return jsrt.Undefined, nil
}

func (n *nativeSource) Pull(c *Controller) (jsrt.Value, error) {
	if n.pull == nil {
		return jsrt.Undefined, nil
	}
	return n.pull(c), nil
}

func (n *nativeSource) Cancel(jsrt.Value) (jsrt.Value, error) {
	if n.cancel != nil {
		n.cancel()
	}
	return jsrt.Undefined, nil
}
