// Command evmlb-serve is `evmlb serve` alone: the wazero host serving build/app.wasm, without the operator's
// commands (validate, secrets, status, deploy-check) and the Cloudflare SDK they link, so that it compiles in a
// fraction of the time on a fresh machine. `make run` builds and runs it as build/evmlb-serve.
//
//	evmlb-serve serve [-wasm build/app.wasm] [-addr 127.0.0.1:8787] [-state .evmlb/state] [-cache .evmlb/cache]
//	                  [-env-file .dev.vars] [-workers N] [-memory-mb 128] [-pprof ADDR]
//
// The word serve may be left out.
package main

import (
	"fmt"
	"os"

	"github.com/evmlb/evmlb/host/internal/serve"
)

func main() {
	args := os.Args[1:]
	if len(args) == 0 || args[0] != "serve" {
		args = append([]string{"serve"}, args...)
	}
	if err := serve.Run(args, "usage: evmlb-serve [serve] "+serve.Flags); err != nil {
		fmt.Fprintln(os.Stderr, "evmlb host: "+err.Error())
		os.Exit(1)
	}
}
