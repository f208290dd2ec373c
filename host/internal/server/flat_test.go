package server

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
)

// TestReferenceTableFlat sends many calls of every kind (client requests, object calls with storage, fetch and
// sleep operations) and checks that, once Go has collected its garbage, the JS values it holds are back to
// their baseline in every runtime, that Go's live heap did not grow, that no call or timer is left, and that memory stops growing. In runtimes that
// live for the isolate anything a call leaves behind is a leak.
func TestReferenceTableFlat(t *testing.T) {
	n := 20000
	if testing.Short() {
		n = 2000
	}
	if v, err := strconv.Atoi(os.Getenv("EVMLB_FLAT_REQUESTS")); err == nil && v > 0 {
		n = v // e.g. 100000: go test ./host/internal/server -run Flat -v
	}
	up := upstream(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "up") })
	h := newHost(t, Options{WorkerRuntimes: 2})
	fetch := fetchPath(up.URL)
	mix := func(i int) {
		switch i % 5 {
		case 0:
			if code, _ := h.do("POST", "/echo", strings.NewReader("hello")); code != 200 {
				t.Fatal(code)
			}
		case 1:
			h.ok("/whoami")
		case 2:
			h.ok("/do?name=flat&op=get&k=x")
		case 3:
			h.ok("/sleep-op?ms=0")
		default:
			h.ok(fetch)
		}
	}
	// gc has every runtime collect its garbage twice and returns each one's live Go heap (with warm, after
	// growing the heap to its working size first).
	gc := func(warm string) map[string]int {
		heaps := map[string]int{}
		record := func(s string) {
			var tok string
			var heap int
			fmt.Sscanf(s, "runtime=%s heap=%d", &tok, &heap)
			heaps[tok] = heap
		}
		for range 2 * len(h.workers) { // ties go round-robin: every worker runtime collects, twice
			record(h.ok("/gc?warm=" + warm))
		}
		h.ok("/do?name=flat&op=gc&warm=" + warm)
		record(h.ok("/do?name=flat&op=gc"))
		if len(heaps) != len(h.workers)+1 {
			t.Fatalf("not every runtime collected: %v", heaps)
		}
		return heaps
	}
	for i := range 1000 {
		mix(i)
	}
	gc("1")
	heapsBefore := gc("")
	base := h.Stats()
	for i := range n {
		mix(i)
	}
	heapsAfter := gc("")
	after := h.settled()
	t.Logf("Go heaps after GC: %v → %v", heapsBefore, heapsAfter)
	for tok, b := range heapsBefore {
		if a := heapsAfter[tok]; a > b+64<<10 {
			t.Errorf("runtime %s: the Go heap grew: %d → %d bytes", tok, b, a)
		}
	}
	for i, b := range base.Runtimes {
		a := after.Runtimes[i]
		t.Logf("%s after %d requests: refs %d → %d, memory %d → %d bytes, timers %d → %d",
			a.Name, n, b.LiveRefs, a.LiveRefs, b.MemoryBytes, a.MemoryBytes, b.Timers, a.Timers)
		if a.LiveRefs > b.LiveRefs+16 {
			t.Errorf("%s: reference table grew: %d → %d", a.Name, b.LiveRefs, a.LiveRefs)
		}
		if a.MemoryBytes > b.MemoryBytes*3/2 {
			t.Errorf("%s: memory grew: %d → %d", a.Name, b.MemoryBytes, a.MemoryBytes)
		}
		if a.Timers > b.Timers+2 {
			t.Errorf("%s: timers grew: %d → %d", a.Name, b.Timers, a.Timers)
		}
	}
	if after.Starts != len(after.Runtimes) || after.Instances != 1 || after.Calls != 0 {
		t.Fatalf("%+v", after)
	}
}
