package server

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"os"
	goruntime "runtime"
	"runtime/pprof"
	"testing"
)

// TestSocketMemory is a measurement, not a check (it runs only when asked, and fails only when a socket cannot be
// opened): what an idle socket costs the host process (MEASURE with -v), goroutines, stacks and heap per socket,
// the client's ends being bare TCP connections that hold nothing. The heap profiles before and after are written
// to $EVMLB_HEAP_PROFILE.base and $EVMLB_HEAP_PROFILE when set (go tool pprof -diff_base). Measured: 2
// goroutines, 12 KiB of stack and 13 KiB of heap a socket (net/http's bufio reader and writer, 4 KiB each, kept by
// the hijacked connection; coder/websocket's Conn; the request and its context); about half the runs count 10
// MiB more wasm linear memory in use (20 KiB a socket more), the cause not found.
func TestSocketMemory(t *testing.T) {
	// The heap is the process's: the package's other tests running beside it make the figure theirs too, so it
	// runs only when asked (alone: go test ./host/internal/server -run TestSocketMemory -v, EVMLB_SOCKET_MEMORY=1).
	if os.Getenv("EVMLB_SOCKET_MEMORY") != "1" || raceOn {
		t.Skip("a measurement: EVMLB_SOCKET_MEMORY=1, without the race detector (it doubles the stacks: 36 KiB a socket)")
	}
	h, addr := socketsHost(t, Options{MaxConns: 4096})
	_ = dialWS(t, addr, "c1", "warm", "") // the objects runtime started
	h.EvictObjects()
	var before, after goruntime.MemStats
	wasm := func() (n int64) {
		for _, rt := range h.Stats().Runtimes {
			n += int64(rt.MemoryBytes)
		}
		return n
	}
	goruntime.GC()
	goruntime.ReadMemStats(&before)
	wasm0 := wasm()
	profile := func(path string) {
		if os.Getenv("EVMLB_HEAP_PROFILE") == "" {
			return
		}
		if f, err := os.Create(path); err == nil {
			_ = pprof.WriteHeapProfile(f)
			f.Close()
		}
	}
	profile(os.Getenv("EVMLB_HEAP_PROFILE") + ".base")
	g0 := goruntime.NumGoroutine()
	const n = 500
	var conns []net.Conn
	for i := range n {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		fmt.Fprintf(c, "GET /ws/c1?tag=t%d HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n", i)
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
			t.Fatalf("upgrade %d: %v %v", i, resp, err)
		}
	}
	h.EvictObjects() // the objects runtime's linear memory is not the sockets'
	goruntime.GC()
	goruntime.ReadMemStats(&after)
	grown := wasm() - wasm0 // the worker runtimes' linear memory grown meanwhile, not the sockets' either
	g := goruntime.NumGoroutine() - g0
	t.Logf("MEASURE host socket: %d sockets (%d open): %.1f goroutines, %d bytes of stack, %d bytes of heap in use a socket (the worker runtimes' linear memory grew %d bytes meanwhile, left out)",
		n, h.Stats().Sockets, float64(g)/n, (after.StackInuse-before.StackInuse)/n, (int64(after.HeapInuse-before.HeapInuse)-grown)/n, grown)
	profile(os.Getenv("EVMLB_HEAP_PROFILE"))
	for _, c := range conns {
		c.Close()
	}
}
