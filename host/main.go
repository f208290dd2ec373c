// Command evmlb (built as build/evmlb; `go run ./host` in the tree) serves the balancer's wasm program
// (build/app.wasm) on wazero, with no Node.js or workerd, and operates a deployment:
//
//	evmlb serve [-wasm build/app.wasm] [-addr 127.0.0.1:8787] [-state .evmlb/state]
//	            [-cache .evmlb/cache] [-env-file .dev.vars] [-workers N] [-memory-mb 128] [-pprof ADDR]
//	evmlb validate [FILE|-] [--probe]          check UPSTREAM_CONFIG and EVMLB_* (package host/internal/cli)
//	evmlb secrets push|list|delete             the deployed Worker's secrets, through the Cloudflare API
//	evmlb status --url URL                     deployments, versions and the balancer's routing tables
//	evmlb deploy-check                         make deploy's checks
//
// The env file holds KEY=VALUE lines; the environment's UPSTREAM_CONFIG, ADMIN_PASSWORD, ADMIN_USER,
// METRICS_TOKEN and EVMLB_* (config.Environment) override it. PORT, when set, replaces the port of -addr. See package host/internal/server.
// host/cmd/evmlb-serve is the same `serve` without the operator's commands (what `make run` builds).
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/evmlb/evmlb/host/internal/cli"
	"github.com/evmlb/evmlb/host/internal/serve"
)

func main() {
	if len(os.Args) > 1 && cli.Is(os.Args[1]) {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		code := cli.Run(ctx, os.Args[1:], cli.OS())
		stop()
		os.Exit(code)
	}
	if err := serve.Run(os.Args[1:], "usage: evmlb serve "+serve.Flags+" | "+cli.Commands); err != nil {
		fmt.Fprintln(os.Stderr, "evmlb host: "+err.Error())
		os.Exit(1)
	}
}
