package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"time"

	"github.com/evmlb/evmlb/e2e/internal/procutil"
	"github.com/evmlb/evmlb/e2e/internal/repo"
	"github.com/evmlb/evmlb/e2e/internal/target"
)

// The wazero host's floors, measured in the same run as the balancer (as the plain-JS floor is for workerd):
//   - a native Go reverse proxy (net/http/httputil, its own process): what two more net/http hops cost on this
//     machine, the floor of any Go proxy;
//   - the Go-wasm floor (e2e/testdata/floorgo in the wazero host): the balancer's path through the runtime with
//     no balancer in it, the binding and one hostcall.Post per request; the floor of any balancer built on it;
//     and the same program answering by itself (floorgoAnswerPath): one call into Go, no fetch.

// floorgoAnswerPath is where e2e/testdata/floorgo answers eth_blockNumber itself.
const floorgoAnswerPath = "/answer"

// goProxyEnv, when set in the environment of this program, makes it the native reverse proxy to that URL instead:
// it prints the address it listens on and serves until killed.
const goProxyEnv = "EVMLB_BENCH_GOPROXY_UPSTREAM"

func serveGoProxy(upstream string) int {
	u, err := url.Parse(upstream)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench proxy:", err)
		return 1
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench proxy:", err)
		return 1
	}
	fmt.Printf("listening on http://%s\n", ln.Addr())
	err = http.Serve(ln, httputil.NewSingleHostReverseProxy(u))
	fmt.Fprintln(os.Stderr, "bench proxy:", err)
	return 1
}

// startGoProxy runs this program again as the native reverse proxy to upstream; it returns its URL and how to stop it.
func startGoProxy(ctx context.Context, upstream string) (string, func(), error) {
	self, err := os.Executable()
	if err != nil {
		return "", nil, err
	}
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), goProxyEnv+"="+upstream)
	proc, err := procutil.Start(cmd)
	if err != nil {
		return "", nil, err
	}
	stop := func() { proc.Stop(5 * time.Second) }
	m, err := proc.Logs.WaitMatch(ctx, regexp.MustCompile(`listening on (http://\S+)`), proc.Exited())
	if err != nil {
		stop()
		return "", nil, fmt.Errorf("%w\n%s", err, proc.Logs)
	}
	return m[1], stop, nil
}

// startGoWasmFloor builds e2e/testdata/floorgo into dir and runs it in the wazero host in front of upstream.
func startGoWasmFloor(ctx context.Context, dir, cache, upstream string) (*target.Instance, error) {
	root, err := repo.Root()
	if err != nil {
		return nil, err
	}
	wasm := filepath.Join(dir, "floorgo.wasm")
	build := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags=-s", "-o", wasm, "./e2e/testdata/floorgo")
	build.Dir = root
	build.Env = append(os.Environ(), "GOOS=js", "GOARCH=wasm")
	if out, err := build.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("building the Go-wasm floor: %v\n%s", err, out)
	}
	cfg := target.Config{
		RawUpstreamConfig: "[]",
		Env:               map[string]string{"EVMLB_FLOOR_UPSTREAM": upstream},
		StateDir:          filepath.Join(dir, "floorgo-state"),
	}
	return (&target.Wazero{CacheDir: cache, Wasm: wasm}).Start(ctx, cfg)
}
