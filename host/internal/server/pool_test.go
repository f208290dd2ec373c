package server

import (
	"io"
	"net"
	"net/http"
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

// TestConnAffinity: with ConnAffinity, every request of a connection Serve accepted goes to one runtime, and
// new connections take the runtimes in turn.
func TestConnAffinity(t *testing.T) {
	h := newHost(t, Options{WorkerRuntimes: 2, ConnAffinity: true})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = h.Serve(l) }()
	conn := func() func() string { // one client, one keep-alive connection
		c := &http.Client{Transport: &http.Transport{MaxConnsPerHost: 1}}
		t.Cleanup(c.CloseIdleConnections)
		return func() string {
			resp, err := c.Get("http://" + l.Addr().String() + "/runtime")
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			return string(b)
		}
	}
	var seen []string
	for range 3 {
		get := conn()
		first := get()
		for range 4 {
			if got := get(); got != first {
				t.Fatalf("one connection went to runtimes %s and %s", first, got)
			}
		}
		seen = append(seen, first)
	}
	if seen[0] == seen[1] || seen[2] != seen[0] {
		t.Fatalf("three connections on two runtimes went to %v, want turns", seen)
	}
}
