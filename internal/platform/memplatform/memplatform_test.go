package memplatform

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/evmlb/evmlb/internal/contract"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// recorder is a Handler that records what it is given; its alarms fail while fail is set.
type recorder struct {
	mu      sync.Mutex
	headers []http.Header
	alarms  []string // "role id retry at"
	fail    bool
	clock   *Clock
	// then runs inside each alarm.
	then func(objectID string)
}

func (r *recorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	r.headers = append(r.headers, req.Header.Clone())
	r.mu.Unlock()
	w.WriteHeader(http.StatusTeapot)
}

func (r *recorder) Alarm(_ context.Context, role, id string, retry int) error {
	r.mu.Lock()
	r.alarms = append(r.alarms, role+" "+strconv.Itoa(retry)+" "+r.clock.Now().Sub(t0).String())
	fail, then := r.fail, r.then
	r.mu.Unlock()
	if then != nil {
		then(id)
	}
	if fail {
		return errors.New("fail")
	}
	return nil
}

func setup() (*Host, *recorder) {
	h := New(map[string]string{"K": "v"}, nil, t0)
	r := &recorder{clock: h.Clock()}
	h.Bind(r)
	return h, r
}

func TestHeaders(t *testing.T) {
	h, r := setup()
	p := h.Platform()
	req, _ := http.NewRequest("GET", "https://x/", nil)
	req.Header.Set(contract.HeaderInstance, "forged")
	resp, err := p.Chains.Fetch(context.Background(), "eth", req)
	if err != nil || resp.StatusCode != http.StatusTeapot {
		t.Fatal(err, resp)
	}
	p.Chains.Fetch(context.Background(), "eth", req)
	h.Restart()
	p.Chains.Fetch(context.Background(), "eth", req)
	p.Upstreams.Fetch(context.Background(), "eth", req)
	hs := r.headers
	id := ObjectID(contract.RoleChain, "eth")
	if len(id) != 64 || hs[0].Get(contract.HeaderObject) != id || hs[0].Get(contract.HeaderRole) != contract.RoleChain {
		t.Errorf("first call headers %v", hs[0])
	}
	tok := hs[0].Get(contract.HeaderInstance)
	if tok == "forged" || hs[1].Get(contract.HeaderInstance) != tok || hs[2].Get(contract.HeaderInstance) == tok {
		t.Errorf("instance tokens %q %q %q", tok, hs[1].Get(contract.HeaderInstance), hs[2].Get(contract.HeaderInstance))
	}
	if hs[3].Get(contract.HeaderObject) == id || hs[3].Get(contract.HeaderRole) != contract.RoleUpstream {
		t.Errorf("upstream namespace headers %v", hs[3])
	}
	w := &nopWriter{h: http.Header{}}
	wreq, _ := http.NewRequest("GET", "/", nil)
	wreq.Header.Set(contract.HeaderRole, contract.RoleChain)
	wreq.Header.Set(contract.HeaderObject, id)
	h.ServeHTTP(w, wreq)
	last := r.headers[4]
	if last.Get(contract.HeaderRole) != contract.RoleWorker || last.Get(contract.HeaderObject) != "" {
		t.Errorf("worker entry headers %v", last)
	}
	if p.Getenv("K") != "v" || p.Getenv("none") != "" || p.HostKind != "memory" {
		t.Error("env")
	}
}

type nopWriter struct{ h http.Header }

func (w *nopWriter) Header() http.Header         { return w.h }
func (w *nopWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *nopWriter) WriteHeader(int)             {}

func TestStorage(t *testing.T) {
	h, _ := setup()
	p := h.Platform()
	if p.StorageFor(ObjectID(contract.RoleChain, "eth")) != nil {
		t.Fatal("storage before the instance exists")
	}
	req, _ := http.NewRequest("GET", "https://x/", nil)
	p.Chains.Fetch(context.Background(), "eth", req)
	st := p.StorageFor(ObjectID(contract.RoleChain, "eth"))
	ctx := context.Background()
	if err := st.Put(ctx, map[string]string{"a:1": "x", "a:2": "y", "b": "z"}); err != nil {
		t.Fatal(err)
	}
	if kv, _ := st.List(ctx, "a:"); len(kv) != 2 || kv["a:2"] != "y" {
		t.Errorf("list %v", kv)
	}
	st.Delete(ctx, "a:1")
	if _, ok, _ := st.Get(ctx, "a:1"); ok {
		t.Error("deleted key found")
	}
	big := map[string]string{}
	for i := range 129 {
		big[strconv.Itoa(i)] = ""
	}
	if st.Put(ctx, big) == nil {
		t.Error("put of 129 keys accepted")
	}
	h.Restart()
	if v, ok, _ := st.Get(ctx, "b"); !ok || v != "z" {
		t.Error("restart lost storage")
	}
	st.DeleteAll(ctx)
	if kv, _ := st.List(ctx, ""); len(kv) != 0 {
		t.Errorf("after DeleteAll %v", kv)
	}
}

func TestAlarms(t *testing.T) {
	h, r := setup()
	p := h.Platform()
	req, _ := http.NewRequest("GET", "https://x/", nil)
	p.Upstreams.Fetch(context.Background(), "a", req)
	st := p.StorageFor(ObjectID(contract.RoleUpstream, "a"))
	ctx := context.Background()
	// Each alarm sets the next one 5 s later.
	r.then = func(string) { st.SetAlarm(ctx, h.Clock().Now().Add(5*time.Second)) }
	st.SetAlarm(ctx, t0.Add(time.Second))
	h.Clock().Advance(12 * time.Second)
	if got := r.alarms; len(got) != 3 || got[0] != "upstream 0 1s" || got[1] != "upstream 0 6s" || got[2] != "upstream 0 11s" {
		t.Errorf("alarms %v", got)
	}
	if h.Clock().Now() != t0.Add(12*time.Second) {
		t.Errorf("now %v", h.Clock().Now())
	}
	// A failing alarm that sets none is retried with back-off, at most 6 times.
	r.mu.Lock()
	r.alarms, r.fail, r.then = nil, true, nil
	r.mu.Unlock()
	st.SetAlarm(ctx, h.Clock().Now())
	h.Clock().Advance(10 * time.Minute)
	want := []string{"upstream 0 12s", "upstream 1 14s", "upstream 2 18s", "upstream 3 26s", "upstream 4 42s", "upstream 5 1m14s", "upstream 6 2m18s"}
	if len(r.alarms) != len(want) {
		t.Fatalf("alarms %v", r.alarms)
	}
	for i := range want {
		if r.alarms[i] != want[i] {
			t.Errorf("alarm %d: %s, want %s", i, r.alarms[i], want[i])
		}
	}
	if _, set, _ := st.GetAlarm(ctx); set {
		t.Error("alarm left after the last retry")
	}
}

// WithTimeout's deadline is on the fake clock: the context ends when the clock is advanced to it, not before,
// with context.DeadlineExceeded, which contexts derived from it report too; cancel ends it with Canceled.
func TestWithTimeoutOnFakeClock(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	h := New(nil, nil, start)
	ctx, cancel := h.Platform().WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	child, stop := context.WithCancel(ctx)
	defer stop()
	if dl, ok := ctx.Deadline(); !ok || !dl.Equal(start.Add(300*time.Millisecond)) {
		t.Fatalf("deadline %v %v, want the clock's time plus 300ms", dl, ok)
	}
	h.Clock().Advance(299 * time.Millisecond)
	if err := ctx.Err(); err != nil {
		t.Fatalf("ended before its deadline on the fake clock: %v", err)
	}
	h.Clock().Advance(time.Millisecond)
	<-ctx.Done()
	<-child.Done()
	if !errors.Is(ctx.Err(), context.DeadlineExceeded) || !errors.Is(child.Err(), context.DeadlineExceeded) {
		t.Fatalf("%v, derived %v; want context.DeadlineExceeded", ctx.Err(), child.Err())
	}
	ctx2, cancel2 := h.Platform().WithTimeout(context.Background(), time.Second)
	cancel2()
	if !errors.Is(ctx2.Err(), context.Canceled) {
		t.Fatalf("after cancel: %v", ctx2.Err())
	}
}
