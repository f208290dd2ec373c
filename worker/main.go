//go:build js && wasm

// Command worker is the balancer's wasm program (build/app.wasm). It builds the platform from the host's JS
// world (CONTRACT.md), registers the fetch and alarm handlers (worker/jsbind), tells the host it is ready through
// github.com/syumai/workers, and then lives as long as the isolate: one Go runtime serves every request.
package main

import (
	"log"
	"os"
	"time"

	"github.com/evmlb/evmlb/internal/app"
	"github.com/evmlb/evmlb/internal/contract"
	"github.com/evmlb/evmlb/internal/platform"
	"github.com/evmlb/evmlb/worker/jsbind"
	"github.com/syumai/workers"
)

func main() {
	logger := log.New(os.Stderr, "evmlb: ", 0)
	a := app.New(platform.Platform{
		Getenv:     jsbind.Getenv,
		Chains:     jsbind.Namespace(contract.BindingChain),
		Upstreams:  jsbind.Namespace(contract.BindingUpstream),
		StorageFor: jsbind.StorageFor,
		// The host's fetch, with cancellation through AbortController (not net/http's client: see jsbind.Fetch).
		Fetch:    jsbind.Fetch,
		Now:      time.Now,
		Logf:     logger.Printf,
		HostKind: jsbind.HostKind(),
	})
	jsbind.Serve(a) // not workers.ServeNonBlock: see jsbind.Serve
	jsbind.RegisterAlarm(contract.Version, a.Alarm)
	workers.Ready()
	select {} // the runtime lives as long as the isolate; calls arrive as JS callbacks
}
