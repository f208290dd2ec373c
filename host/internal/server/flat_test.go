package server

import (
	"os"
	"strconv"
	"strings"
	"testing"
)

// TestReferenceTableFlat sends many requests and checks that the JS values Go holds return to their baseline
// once Go has collected its garbage (finalizeRef), and that memory stops growing.
func TestReferenceTableFlat(t *testing.T) {
	n := 20000
	if testing.Short() {
		n = 2000
	}
	if v, err := strconv.Atoi(os.Getenv("EVMLB_FLAT_REQUESTS")); err == nil && v > 0 {
		n = v // e.g. 100000 for the figure issue 3 asks for: go test ./host/internal/server -run Flat -v
	}
	s, _ := newServer(t, "probe", "", nil)
	mix := func(i int) {
		switch i % 4 {
		case 0:
			do(t, s, "POST", "/echo", strings.NewReader("hello"))
		case 1:
			expectOK(t, s, "/headers")
		case 2:
			expectOK(t, s, "/do?name=flat&op=get&k=x")
		default:
			expectOK(t, s, "/stream?n=2&delay=0")
		}
	}
	for i := range 2000 { // warm up: the Go heap grows to its working size
		mix(i)
	}
	expectOK(t, s, "/gc")
	expectOK(t, s, "/gc")
	base := s.Stats()
	for i := range n {
		mix(i)
	}
	expectOK(t, s, "/gc")
	expectOK(t, s, "/gc")
	after := s.Stats()
	t.Logf("after %d requests: refs %d → %d, memory %d → %d bytes, timers %d → %d",
		n, base.LiveRefs, after.LiveRefs, base.MemoryBytes, after.MemoryBytes, base.Timers, after.Timers)
	if after.LiveRefs > base.LiveRefs+16 {
		t.Fatalf("reference table grew: %d → %d", base.LiveRefs, after.LiveRefs)
	}
	if after.MemoryBytes > base.MemoryBytes*3/2 {
		t.Fatalf("memory grew: %d → %d", base.MemoryBytes, after.MemoryBytes)
	}
	if after.Starts != 1 || after.Instances != 1 {
		t.Fatalf("%+v", after)
	}
}
