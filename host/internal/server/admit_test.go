package server

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/evmlb/evmlb/internal/config"
	"github.com/evmlb/evmlb/internal/jsonrpc"
)

// The host's busy answer is the balancer's own ErrBusy.
func TestBusyBodyIsErrBusy(t *testing.T) {
	if got := string(jsonrpc.ErrBusy.Body(nil)); got != busyBody {
		t.Errorf("busyBody %s, jsonrpc.ErrBusy answers %s", busyBody, got)
	}
}

// readCounter counts what was read of it.
type readCounter struct {
	r io.Reader
	n int
}

func (c *readCounter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

// Bodies are admitted before they are read: by Content-Length up front, or step by step without one; a body
// that would pass the budget is refused with nothing (or no more than a step) of it read, and everything taken
// is given back.
func TestBodyBudget(t *testing.T) {
	const mib = 1 << 20
	b := newBodyBudget(map[string]string{"EVMLB_MAX_INFLIGHT_BYTES": "4194304"}, 2) // 4 MiB × 2 runtimes
	if b.max != 8*mib {
		t.Fatalf("budget %d, want 8 MiB", b.max)
	}
	req := func(n int, known bool) (*http.Request, *readCounter) {
		c := &readCounter{r: bytes.NewReader(bytes.Repeat([]byte{' '}, n))}
		r := httptest.NewRequest(http.MethodPost, "/eth", c)
		r.ContentLength = -1
		if known {
			r.ContentLength = int64(n)
		}
		return r, c
	}
	// Two 3 MiB bodies fit; a third does not, and is not read.
	var held []int64
	for range 2 {
		r, _ := req(3*mib, true)
		body, tooLarge, busy, h, err := b.readBody(r, 5*mib)
		if err != nil || tooLarge || busy || len(body) != 3*mib || h != 3*mib {
			t.Fatalf("3 MiB: %d bytes, tooLarge %v, busy %v, held %d, %v", len(body), tooLarge, busy, h, err)
		}
		held = append(held, h)
	}
	r, c := req(3*mib, true)
	if body, _, busy, h, _ := b.readBody(r, 5*mib); !busy || body != nil || h != 0 || c.n != 0 {
		t.Errorf("a third 3 MiB body: busy %v, held %d, %d bytes read: want refused unread", busy, h, c.n)
	}
	// Without Content-Length: refused once its bytes would pass the budget, having read at most a step more.
	r, c = req(3*mib, false)
	_, _, busy, h, _ := b.readBody(r, 5*mib)
	if !busy || c.n > 3*mib-1 || c.n > int(config.SmallBodyBytes)+2*unknownLengthStep {
		t.Errorf("a chunked 3 MiB body: busy %v, %d bytes read", busy, c.n)
	}
	b.give(h)
	// Small bodies always pass.
	r, _ = req(1000, false)
	if body, _, busy, h, _ := b.readBody(r, 5*mib); busy || len(body) != 1000 || h != 0 {
		t.Errorf("a small body: busy %v, %d bytes, held %d", busy, len(body), h)
	}
	for _, h := range held {
		b.give(h)
	}
	if b.held.Load() != 0 {
		t.Fatalf("%d bytes still held after every release", b.held.Load())
	}
	// With the budget free again, a chunked body of 3 MiB passes, and one over the body limit is too large.
	r, _ = req(3*mib, false)
	body, tooLarge, busy, h, err := b.readBody(r, 5*mib)
	if err != nil || tooLarge || busy || len(body) != 3*mib {
		t.Errorf("a chunked 3 MiB body: %d bytes, tooLarge %v, busy %v, %v", len(body), tooLarge, busy, err)
	}
	b.give(h)
	r, _ = req(5*mib+1, false)
	if _, tooLarge, _, h, _ := b.readBody(r, 5*mib); !tooLarge {
		t.Error("a chunked body over the limit is not too large")
	} else {
		b.give(h)
	}
	if b.held.Load() != 0 {
		t.Errorf("%d bytes still held", b.held.Load())
	}
}
