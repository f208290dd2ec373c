//go:build js && wasm

// Command worker is the balancer's wasm program (build/app.wasm). It builds the platform from the host's JS
// world (CONTRACT.md), registers the fetch and alarm handlers (worker/jsbind), tells the host it is ready through
// github.com/syumai/workers, and then lives as long as the isolate: one Go runtime serves every request.
package main

import (
	"log"
	"os"
	"runtime/debug"
	"time"

	"github.com/evmlb/evmlb/internal/contract"
	"github.com/evmlb/evmlb/internal/hostcall"
	"github.com/evmlb/evmlb/internal/platform"
	"github.com/evmlb/evmlb/worker/app"
	"github.com/evmlb/evmlb/worker/jsbind"
	"github.com/syumai/workers"
)

// memoryLimit is the soft limit of the Go heap: wasm memory never shrinks and an isolate has 128 MB for it and
// the JS heap together, so the GC works harder as the heap nears this instead of growing the memory.
const memoryLimit = 64 << 20

// edgeEntryLimit is the largest entry of the host's answer cache Go takes into its memory (a larger one is a
// miss): EVMLB_MAX_RESPONSE_BYTES's default, the largest answer the balancer takes from a provider unless told.
const edgeEntryLimit = 32 << 20

func main() {
	debug.SetMemoryLimit(memoryLimit)
	logger := log.New(os.Stderr, "evmlb: ", 0)
	// Every I/O is an operation the host performs in the call's own context (CONTRACT.md §4, internal/hostcall).
	a := app.New(platform.Platform{
		Getenv:      jsbind.Getenv,
		Chains:      hostcall.Namespace(contract.BindingChain),
		Upstreams:   hostcall.Namespace(contract.BindingUpstream),
		Subs:        hostcall.Namespace(contract.BindingSubs),
		Budgets:     hostcall.Namespace(contract.BindingBudget),
		Sockets:     hostcall.Sockets{},
		StorageFor:  func(objectID string) platform.Storage { return hostcall.Storage{Object: objectID} },
		Post:        hostcall.Post,
		After:       hostcall.After,
		WithTimeout: hostcall.WithTimeout,
		Background:  hostcall.Background,
		Now:         time.Now,
		Logf:        logger.Printf,
		HostKind:    jsbind.HostKind(),
		Cache:       hostcall.EdgeCache{Limit: edgeEntryLimit},
		MemoryBytes: jsbind.MemoryBytes,
	})
	jsbind.Serve(jsbind.Handlers{Fetch: a, Alarm: a.Alarm, Socket: a.Socket, MaxBodyBytes: a.MaxBodyBytes()})
	workers.Ready()
	select {} // the runtime lives as long as the isolate; calls arrive as JS callbacks
}
