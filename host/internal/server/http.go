package server

import (
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/evmlb/evmlb/internal/clients"
	"github.com/evmlb/evmlb/internal/contract"
)

// serveHTTP is the worker entry: one fetch call with role "worker" on a runtime of the pool. This goroutine is
// the call's handler until the answer is out; background operations after that run on goroutines of their own.
func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	// No write deadline while Go works on the answer (up to a chain's request_timeout): clear what the previous
	// request of this connection left, and set one only for writing the answer (WriteStallTimeout). Not every
	// ResponseWriter supports deadlines (httptest's recorder does not); those go without.
	rc := http.NewResponseController(w)
	_ = rc.SetWriteDeadline(time.Time{})
	defer func() { _ = rc.SetWriteDeadline(time.Time{}) }()
	stall := or(s.opts.WriteStallTimeout, DefaultWriteStallTimeout)
	sl := s.pick(r)
	rt, err := sl.get()
	if err != nil {
		s.logf("start: %v", err)
		internalError(w)
		return
	}
	body, tooLarge, busy, held, err := s.bodies.readBody(r, rt.maxBody)
	defer s.bodies.give(held)
	if err != nil {
		return // the client went away
	}
	if busy {
		writeBusy(w)
		return
	}
	x := &executor{owned: true, wake: make(chan struct{}, 1)}
	c := s.newCall(rt, x, contract.CallFetch, contract.RoleWorker)
	c.what = "request " + r.Method + " " + clients.RedactPath(r.URL.Path) // a chain path may hold a client key
	c.host = r.Host
	c.wsUpgrade = r.Method == http.MethodGet && strings.EqualFold(strings.TrimSpace(r.Header.Get("Upgrade")), "websocket")
	// The answer, unless this handler has gone (the client left): an upgrade's socket then has no taker.
	var (
		replyMu sync.Mutex
		reply   *result
		gone    bool
	)
	c.answerTo = func(res result) {
		replyMu.Lock()
		defer replyMu.Unlock()
		if gone {
			if res.sock != nil {
				s.socks.abandon(res.sock)
			}
			return
		}
		reply = &res
	}
	sl.calls.Add(1)
	sl.served.Add(1)
	c.onEnd = func() { sl.calls.Add(-1) }
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	headers := rt.selectHeaders(func(name string) []string { return r.Header.Values(name) })
	rt.beginCall(c, callMeta(contract.CallFetch, contract.RoleWorker, "", "", r.Method,
		scheme+"://"+r.Host+r.URL.RequestURI(), tooLarge, 0, headers), body)
	for !c.answered && !c.ended {
		evs, ok := x.wait(r.Context().Done())
		if !ok {
			break
		}
		run(evs)
	}
	replyMu.Lock()
	answer := reply
	gone = true
	replyMu.Unlock()
	x.release()
	if answer != nil && answer.sock != nil {
		s.serveSocket(w, r, rc, answer.sock)
		return
	}
	if answer != nil {
		_ = rc.SetWriteDeadline(time.Now().Add(stall))
		writeAnswer(w, answer)
	}
}

// hopByHop are the headers of Go's answer the host does not pass on: the connection is the host's.
var hopByHop = []string{"Connection", "Keep-Alive", "Transfer-Encoding", "Upgrade", "Trailer", "Content-Length"}

func writeAnswer(w http.ResponseWriter, a *result) {
	h := w.Header()
	for i := 0; i+1 < len(a.headers); i += 2 {
		h.Add(a.headers[i], a.headers[i+1])
	}
	for _, k := range hopByHop {
		delete(h, k)
	}
	if !nullBodyStatus(a.status) {
		h["Content-Length"] = []string{strconv.Itoa(len(a.body))}
	}
	w.WriteHeader(a.status)
	if len(a.body) > 0 {
		w.Write(a.body)
	}
}

// internalError answers HTTP 500 with the contract's JSON-RPC error body.
func internalError(w http.ResponseWriter) {
	r := internalErrorResult()
	writeAnswer(w, &r)
}

func unwrapPathError(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}
