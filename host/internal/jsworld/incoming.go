package jsworld

import (
	"net/http"

	"github.com/evmlb/evmlb/host/internal/jsrt"
	"github.com/evmlb/evmlb/internal/contract"
)

// IncomingRequest converts a request the host received into the Request handed to Go for the worker entry:
// x-evmlb-role is overwritten with "worker" and x-evmlb-object / x-evmlb-instance are deleted, so a client
// cannot choose them. The body streams from r.Body.
func (w *World) IncomingRequest(r *http.Request) *Request {
	h := w.headersFromHTTP(r.Header)
	if r.Host != "" {
		h.Put("host", r.Host)
	}
	h.Put(contract.HeaderRole, contract.RoleWorker)
	h.del(contract.HeaderObject)
	h.del(contract.HeaderInstance)
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	var body *ReadableStream
	if r.Body != nil && r.Body != http.NoBody && r.Method != http.MethodGet && r.Method != http.MethodHead {
		body = w.ReaderStream(r.Body, nil)
	}
	return w.NewRequest(r.Method, scheme+"://"+r.Host+r.URL.RequestURI(), h, body)
}

// ResponseOf returns v as a Response, or false when Go answered something else.
func ResponseOf(v jsrt.Value) (*Response, bool) {
	res, ok := v.(*Response)
	return res, ok
}

// ErrorMessage is the message of a rejection reason, for a log line.
func ErrorMessage(reason jsrt.Value) string { return errorMessage(reason) }
