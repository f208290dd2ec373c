package proxy

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/evmlb/evmlb/internal/budget"
	"github.com/evmlb/evmlb/internal/config"
	"github.com/evmlb/evmlb/internal/jsonrpc"
)

// withBudgets gives the rig's plane the request budgets lims (by upstream name), leased from an allocator standing
// in for the budget objects. The rig's clock does not move unless a test moves it: each budget passes its burst.
func (r *rig) withBudgets(lims map[string]budget.Limit) {
	p := r.host.Platform()
	allocs := map[string]*budget.Allocator{}
	pool := budget.NewPool("isolate", budget.Hooks{
		Fetch: func(_ context.Context, a budget.Ask) (budget.Grant, error) {
			if allocs[a.Name] == nil {
				allocs[a.Name] = budget.NewAllocator()
			}
			for n, l := range lims {
				if budget.UpstreamName("eth", n) == a.Name {
					return allocs[a.Name].Lease(p.Now(), l, a), nil
				}
			}
			return budget.Grant{}, nil
		},
		Background: p.Background, After: p.After, Now: p.Now,
	})
	r.plane.SetBudgets(Budgets{Pool: pool, Limit: func(u config.Upstream) budget.Limit { return lims[u.Name] }})
}

// serveHeader is serve with the answer's headers.
func (r *rig) serveHeader(body string) (int, string, http.Header) {
	r.t.Helper()
	req, perr := jsonrpc.Parse([]byte(body), 100)
	if perr != nil {
		r.t.Fatalf("%s: %v", body, perr)
	}
	rec := httptest.NewRecorder()
	r.plane.Serve(context.Background(), rec, "eth", req, []byte(body))
	return rec.Code, rec.Body.String(), rec.Header()
}

// An upstream whose budget is spent is passed over before it is asked: the next one answers, the client sees no
// failure, and the upstream is not blamed (no outcome against it).
func TestBudgetSpentGoesToNext(t *testing.T) {
	r := newRig(t, noCache(""))
	r.withBudgets(map[string]budget.Limit{"a": {RPS: 5, Burst: 5}})
	r.serve(read) // a's first lease; its bucket starts with half a second's worth
	r.host.Clock().Advance(3 * time.Second)
	r.host.Wait() // its bucket is full: 5
	for i := range 20 {
		if code, body := r.serve(read); code != http.StatusOK {
			t.Fatalf("request %d: %d %s", i, code, body)
		}
	}
	if got := r.calls(); got != "a=6 b=15 c=0" {
		t.Errorf("calls %s, want a=6 (1, then its burst) b=15 c=0", got)
	}
	// A write too: it never reached a, so it may go to b.
	if code, body := r.serve(write); code != http.StatusOK {
		t.Errorf("write with a's budget spent: %d %s", code, body)
	}
	if got := r.nodes["a"].Calls(); got != 6 {
		t.Errorf("a got %d calls, want 6", got)
	}
	if out := outcomes(r.report()); containsClass(out, "over_budget") {
		t.Errorf("outcomes %s: an upstream over its budget is not blamed", out)
	}
}

// Every candidate's budget spent: 429, -32005, Retry-After, and nothing sent.
func TestBudgetAllSpent(t *testing.T) {
	r := newRig(t, noCache(""))
	l := budget.Limit{RPS: 1, Burst: 2}
	r.withBudgets(map[string]budget.Limit{"a": l, "b": l, "c": l})
	for range 3 { // each upstream's first lease starts its bucket with one
		r.serve(read)
	}
	r.host.Clock().Advance(3 * time.Second)
	r.host.Wait() // every bucket is full: 2 each
	for i := range 6 {
		if code, body := r.serve(read); code != http.StatusOK {
			t.Fatalf("request %d: %d %s", i, code, body)
		}
	}
	code, body, h := r.serveHeader(read)
	_, rpc := answer(t, body)
	ra, _ := strconv.Atoi(h.Get("Retry-After"))
	if code != http.StatusTooManyRequests || rpc != -32005 || ra < 1 {
		t.Errorf("every budget spent: %d %s Retry-After %q, want 429 -32005 with Retry-After", code, body, h.Get("Retry-After"))
	}
	if got := r.calls(); got != "a=3 b=3 c=3" {
		t.Errorf("calls %s, want each 1, then its burst of 2", got)
	}
	r.host.Clock().Advance(1100 * 1e6) // 1.1 s: one more each
	if code, body := r.serve(read); code != http.StatusOK {
		t.Errorf("a second later: %d %s", code, body)
	}
}

func containsClass(outcomes, class string) bool {
	for i := 0; i+len(class) <= len(outcomes); i++ {
		if outcomes[i:i+len(class)] == class {
			return true
		}
	}
	return false
}

// blockingObject is a chain object whose exchanges wait while block is set, until released.
type blockingObject struct {
	*chainObject
	mu      sync.Mutex
	block   chan struct{}
	started chan struct{}
}

func (b *blockingObject) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b.mu.Lock()
	block := b.block
	b.block = nil // only the first exchange after it is set waits
	b.mu.Unlock()
	if block != nil {
		b.started <- struct{}{}
		<-block
	}
	b.chainObject.ServeHTTP(w, r)
}

// What requests count while a background exchange runs is reported without another request: the exchange's end
// schedules a flush (an isolate whose traffic stopped there would keep it until its next request).
func TestCountsDuringAnExchangeAreFlushed(t *testing.T) {
	r := newRig(t, noCache(""))
	b := &blockingObject{chainObject: r.obj}
	r.host.Bind(b)
	r.serve(read) // the first snapshot, on the path; its outcome's flush comes a TTL later
	r.host.Clock().Advance(2 * time.Second)
	r.host.Wait() // that flush has run: nothing pending, none scheduled
	gate := make(chan struct{})
	b.mu.Lock()
	b.block, b.started = gate, make(chan struct{}, 1)
	b.mu.Unlock()
	r.host.Clock().Advance(2 * time.Second)
	r.serve(read) // starts a background exchange, which waits
	<-b.started
	r.serve(read) // counted while the exchange runs
	close(gate)
	r.host.Wait()
	before := len(r.obj.exchanges())
	r.host.Clock().Advance(2 * time.Second)
	r.host.Wait()
	got := r.obj.exchanges()
	if len(got) != before+1 {
		t.Fatalf("%d exchanges after the running one ended and the TTL passed, want %d: the third request's counts were left behind", len(got), before+1)
	}
	if out := outcomes(got[len(got)-1]); out == "" {
		t.Errorf("the flush reported nothing")
	}
}
