package server

import (
	"net/http"
	"os"
	"time"

	"github.com/evmlb/evmlb/host/internal/jsrt"
	"github.com/evmlb/evmlb/host/internal/jsworld"
	"github.com/evmlb/evmlb/internal/contract"
)

// head is the status and headers of Go's Response, and its body stream.
type head struct {
	status int
	header http.Header
	body   *jsworld.ReadableStream
}

// chunk is one read of a body.
type chunk struct {
	data []byte
	done bool
	err  string
}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	// No write deadline while Go works on the answer (up to a chain's request_timeout): clear what the previous
	// request of this connection left. writing sets one before each write. Not every ResponseWriter supports
	// deadlines (httptest's recorder does not); those go without.
	rc := http.NewResponseController(w)
	_ = rc.SetWriteDeadline(time.Time{})
	stall := or(s.opts.WriteStallTimeout, DefaultWriteStallTimeout)
	writing := func() { _ = rc.SetWriteDeadline(time.Now().Add(stall)) }
	inst, err := s.instance()
	if err != nil {
		s.logf("start: %v", err)
		internalError(w)
		return
	}
	heads := make(chan head, 1)
	fails := make(chan string, 1)
	ok := inst.loop.Post(func() {
		req := inst.world.IncomingRequest(r)
		inst.world.HandleRequest(req).Then(func(v jsrt.Value) {
			res, ok := jsworld.ResponseOf(v)
			if !ok {
				fails <- "handleRequest did not resolve to a Response"
				return
			}
			heads <- head{status: res.Status, header: res.Headers.HTTP(), body: res.Body}
		}, func(reason jsrt.Value) { fails <- jsworld.ErrorMessage(reason) })
	})
	if !ok {
		s.logf("request: Go runtime is not running")
		internalError(w)
		return
	}
	var h head
	select {
	case h = <-heads:
	case msg := <-fails:
		s.logf("request %s %s failed: %s", r.Method, r.URL.Path, msg)
		internalError(w)
		return
	case <-inst.dead:
		s.logf("request %s %s failed: Go runtime exited", r.Method, r.URL.Path)
		internalError(w)
		return
	case <-r.Context().Done():
		return
	}
	for k, vs := range h.header {
		w.Header()[k] = vs
	}
	writing()
	w.WriteHeader(h.status)
	if h.body != nil {
		s.streamBody(w, r, inst, h.body, writing)
	}
}

// streamBody copies the JS body to w chunk by chunk, flushing each; a client that goes away, or that does not take
// a chunk within the write deadline set by writing, cancels it.
func (s *Server) streamBody(w http.ResponseWriter, r *http.Request, inst *instance, body *jsworld.ReadableStream, writing func()) {
	flusher, _ := w.(http.Flusher)
	chunks := make(chan chunk, 1)
	read := func() {
		body.Read().Then(func(v jsrt.Value) {
			if jsrt.Truthy(jsrt.Get(v, "done")) {
				chunks <- chunk{done: true}
				return
			}
			u, ok := jsrt.Get(v, "value").(*jsrt.Uint8Array)
			if !ok {
				chunks <- chunk{err: "body chunk is not a Uint8Array"}
				return
			}
			chunks <- chunk{data: append([]byte(nil), u.Bytes()...)}
		}, func(reason jsrt.Value) { chunks <- chunk{err: jsworld.ErrorMessage(reason)} })
	}
	for {
		if !inst.loop.Post(read) {
			return
		}
		select {
		case c := <-chunks:
			if c.err != "" {
				s.logf("response body of %s %s failed: %s", r.Method, r.URL.Path, c.err)
				panic(http.ErrAbortHandler) // the client sees a truncated body, not a complete one
			}
			if c.done {
				return
			}
			writing()
			if _, err := w.Write(c.data); err != nil {
				inst.loop.Post(func() { body.Cancel(jsrt.Undefined) })
				return
			}
			if flusher != nil {
				flusher.Flush()
			}
		case <-inst.dead:
			panic(http.ErrAbortHandler)
		case <-r.Context().Done():
			inst.loop.Post(func() { body.Cancel(jsrt.Undefined) })
			return
		}
	}
}

// internalError answers HTTP 500 with the contract's JSON-RPC error body.
func internalError(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusInternalServerError)
	w.Write([]byte(contract.InternalErrorBody))
}

func unwrapPathError(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}
