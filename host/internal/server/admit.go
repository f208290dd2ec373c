package server

import (
	"io"
	"net/http"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/evmlb/evmlb/internal/config"
)

// Request bodies are admitted against a bound of bytes held at once before they are read (issue 18: 200
// connections each sending 5 MiB − 1 byte took the host from 330 to 1,205 MiB, never given back, when every body
// was read first and the bound applied only in the runtime). The bound is EVMLB_MAX_INFLIGHT_BYTES, which each
// Worker runtime applies to the bodies it holds, times the number of Worker runtimes: what the runtimes could hold
// at once anyway. A body under config.SmallBodyBytes always passes, as in the runtime; a larger one reserves its
// Content-Length up front, or, sent without one, reserves as its bytes arrive. A body that would pass the bound is
// answered 503 with JSON-RPC error -32069 (busy) without reading the rest of it.

// busyBody is jsonrpc.ErrBusy's answer (a test holds the two together; the host does not link internal/jsonrpc).
const busyBody = `{"jsonrpc":"2.0","id":null,"error":{"code":-32069,"message":"busy: too many large requests in flight, retry shortly"}}`

// unknownLengthStep is how much a body sent without Content-Length reserves at a time, past the small size.
const unknownLengthStep = 1 << 20

// freeAfter is how many bytes of large bodies released make the host return memory to the OS
// (debug.FreeOSMemory) once none is held; freeGap is the least time between two returns (a release within it
// schedules one at its end).
const (
	freeAfter = 4 << 20
	freeGap   = 10 * time.Second
)

// bodyBudget is the host's bound of request body bytes held at once.
type bodyBudget struct {
	max  int64
	held atomic.Int64

	mu       sync.Mutex
	released int64     // large-body bytes given back since the last return of memory
	lastFree time.Time // when memory was last returned
	pending  bool      // a return is scheduled
}

// newBodyBudget is the budget for a host of n Worker runtimes whose environment is env.
func newBodyBudget(env map[string]string, n int) *bodyBudget {
	s, _ := config.LoadSettingsAll(func(k string) string { return env[k] }) // a bad value keeps its default, as the app's
	return &bodyBudget{max: s.MaxInflightBytes * int64(max(n, 1))}
}

// take reserves n bytes, reporting false (and reserving nothing) when that would pass the bound.
func (b *bodyBudget) take(n int64) bool {
	if b.held.Add(n) > b.max {
		b.held.Add(-n)
		return false
	}
	return true
}

// give releases n bytes. When enough large-body bytes were released and none is held any more, the memory they
// took is returned to the OS in the background: Go's heap would otherwise keep it (with nothing allocating after
// a flood, no collection runs and the scavenger keeps what the last heap goal allowed).
func (b *bodyBudget) give(n int64) {
	if n == 0 {
		return
	}
	left := b.held.Add(-n)
	b.mu.Lock()
	defer b.mu.Unlock()
	b.released += n
	if left != 0 || b.released < freeAfter || b.pending {
		return
	}
	b.pending = true
	time.AfterFunc(max(0, time.Until(b.lastFree.Add(freeGap))), func() {
		debug.FreeOSMemory()
		b.mu.Lock()
		b.pending, b.released, b.lastFree = false, 0, time.Now()
		b.mu.Unlock()
	})
}

// readBody reads the client's body within the host's budget: nil when there is none; tooLarge (and nil) when it
// is longer than max (not read: the program answers 413); busy (and nil) when it would pass the budget, with
// nothing more of it read. held is what the body reserved: the caller gives it back once the call has ended.
func (b *bodyBudget) readBody(r *http.Request, max int64) (body []byte, tooLarge, busy bool, held int64, err error) {
	if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
		return nil, false, false, 0, nil
	}
	if r.ContentLength > max {
		return nil, true, false, 0, nil
	}
	if n := r.ContentLength; n > 0 {
		if n >= config.SmallBodyBytes {
			if !b.take(n) {
				return nil, false, true, 0, nil
			}
			held = n
		}
		buf := make([]byte, n)
		if _, err := io.ReadFull(r.Body, buf); err != nil {
			return nil, false, false, held, err
		}
		return buf, false, false, held, nil
	}
	// No Content-Length (chunked): the first SmallBodyBytes are free, then each step is reserved before it is read.
	var buf []byte
	allowed := int64(config.SmallBodyBytes)
	for {
		if int64(len(buf)) > max {
			return nil, true, false, held, nil
		}
		if int64(len(buf)) >= allowed {
			if !b.take(unknownLengthStep) {
				return nil, false, true, held, nil
			}
			held += unknownLengthStep
			allowed += unknownLengthStep
		}
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)] // grow
		}
		want := min(int64(cap(buf)), allowed, max+1)
		n, err := r.Body.Read(buf[len(buf):want])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, false, false, held, err
		}
	}
	switch {
	case int64(len(buf)) > max:
		return nil, true, false, held, nil
	case len(buf) == 0:
		return nil, false, false, held, nil
	}
	return buf, false, false, held, nil
}

// writeBusy answers 503 with busyBody; the connection is closed after it, as the rest of the body was not read.
func writeBusy(w http.ResponseWriter) {
	h := w.Header()
	h["Content-Type"] = []string{"application/json"}
	h["Content-Length"] = []string{strconv.Itoa(len(busyBody))}
	h["Connection"] = []string{"close"}
	w.WriteHeader(http.StatusServiceUnavailable)
	_, _ = io.WriteString(w, busyBody)
}
