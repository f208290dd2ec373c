//go:build js && wasm

// Command floorgo is the Go-wasm floor of `make bench` (a test fixture, never shipped): the balancer's wasm
// path with no balancer in it. It speaks the same contract through the same binding (worker/jsbind) and sends
// each request's body to EVMLB_FLOOR_UPSTREAM with one hostcall.Post, as the plain-JS floor (e2e/testdata/floor) does
// with one fetch. Whatever it costs over the node, any Go balancer on this runtime costs at least that. On
// /answer it answers eth_blockNumber itself, without the node: one call into Go and nothing else.
package main

import (
	"context"
	"io"
	"net/http"
	"time"

	"github.com/evmlb/evmlb/internal/hostcall"
	"github.com/evmlb/evmlb/worker/jsbind"
	"github.com/syumai/workers"
)

func main() {
	upstream := jsbind.Getenv("EVMLB_FLOOR_UPSTREAM")
	jsbind.Serve(jsbind.Handlers{
		MaxBodyBytes: 16 << 20,
		Fetch: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodPost {
				w.WriteHeader(http.StatusNoContent) // the hosts' readiness check
				return
			}
			body, err := io.ReadAll(r.Body)
			if err != nil {
				w.WriteHeader(http.StatusBadRequest)
				return
			}
			if r.URL.Path == "/answer" { // one call into Go and no fetch: the runtime's cost alone
				w.Header().Set("Content-Type", "application/json")
				_, _ = w.Write([]byte(`{"jsonrpc":"2.0","id":1,"result":"0x0"}`))
				return
			}
			ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
			defer cancel()
			status, answer, err := hostcall.Post(ctx, upstream, body, 16<<20)
			if err != nil {
				w.WriteHeader(http.StatusBadGateway)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			_, _ = w.Write(answer)
		}),
		Alarm: func(context.Context, string, string, int) error { return nil },
	})
	workers.Ready()
	select {}
}
