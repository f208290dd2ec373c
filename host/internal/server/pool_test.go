package server

import (
	"strings"
	"sync"
	"testing"
)

// TestPoolSpreadsRequests: concurrent requests go to different runtimes of the pool, and the objects have a
// runtime of their own.
func TestPoolSpreadsRequests(t *testing.T) {
	h := newHost(t, Options{WorkerRuntimes: 3})
	var mu sync.Mutex
	seen := map[string]int{}
	var wg sync.WaitGroup
	for range 6 {
		wg.Go(func() {
			tok := h.ok("/runtime?ms=300")
			mu.Lock()
			seen[tok]++
			mu.Unlock()
		})
	}
	wg.Wait()
	if len(seen) != 3 {
		t.Fatalf("6 concurrent requests on 3 runtimes went to %d: %v", len(seen), seen)
	}
	objects := strings.Fields(h.ok("/do?name=p&op=whoami"))[2]
	if seen[objects] != 0 {
		t.Fatal("an object ran in a worker runtime")
	}
	st := h.Stats()
	if len(st.Runtimes) != 4 || st.Runtimes[3].Name != "objects" || st.Runtimes[0].Name != "worker-0" {
		t.Fatalf("%+v", st.Runtimes)
	}
	var served int64
	for _, rs := range st.Runtimes[:3] {
		if rs.MemoryBytes == 0 || rs.Starts != 1 {
			t.Fatalf("%+v", rs)
		}
		served += rs.Served
	}
	if served != 7 || st.Runtimes[3].Served != 1 || st.MemoryBytes < 4*uint64(st.Runtimes[0].MemoryBytes)/2 {
		t.Fatalf("%+v", st)
	}
}

func TestMemoryLimitPerRuntime(t *testing.T) {
	h := newHost(t, Options{WorkerRuntimes: 2, MemoryLimitMB: 64})
	h.ok("/roundtrip")
	for _, rs := range h.Stats().Runtimes {
		if rs.MemoryBytes == 0 || rs.MemoryBytes > 64<<20 {
			t.Fatalf("%+v", rs)
		}
	}
}
