package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/evmlb/evmlb/e2e/internal/anvil"
	"github.com/evmlb/evmlb/e2e/internal/faultproxy"
	"github.com/evmlb/evmlb/e2e/internal/rpc"
	"github.com/evmlb/evmlb/e2e/internal/target"
)

// runFaults measures the fault table (issue 4's, with issue 8's rows): for each fault of
// faultproxy.Catalog and 1 or 2 faulty upstreams of 3 (in front of one
// anvil), reads at concurrency 4 through the balancer; a read succeeds when
// its answer is the node's, byte for byte. It prints the success rate and
// the latency of the successful reads.
func runFaults(reads int, hostList string) error {
	ctx := context.Background()
	node, err := anvil.Start(ctx, anvil.Options{ChainID: 31337})
	if err != nil {
		return err
	}
	defer node.Stop()
	if _, err := node.Mine(ctx, 60); err != nil {
		return err
	}
	// Reads that each fault can get wrong: the head (stale, ahead), the chain
	// id (wrong chain, chain switch), a balance (errors), the latest block
	// (a head served that the block does not match).
	bodies := [][]byte{
		rpc.Request(1, "eth_blockNumber"),
		rpc.Request(2, "eth_chainId"),
		rpc.Request(3, "eth_getBalance", anvil.DevAddress, "latest"),
		rpc.Request(4, "eth_getBlockByNumber", "latest", false),
	}
	var want [][]byte
	for _, b := range bodies {
		r, err := rpc.Post(ctx, nil, node.URL, b)
		if err != nil {
			return err
		}
		want = append(want, r.Body)
	}
	tmp, err := os.MkdirTemp("", "evmlb-faults-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "host\tfault\tfaulty\treads\tsuccess\tp50\tp99\t")
	wanted := strings.Split(hostList, ",")
	for _, h := range []target.Host{&target.Wazero{CacheDir: filepath.Join(tmp, "cache")}, target.Workerd{}} {
		if !slices.Contains(wanted, h.Name()) {
			continue
		}
		if err := h.Available(); err != nil {
			fmt.Fprintf(os.Stderr, "bench: %s skipped: %v\n", h.Name(), err)
			continue
		}
		for _, f := range faultproxy.Catalog {
			for bad := 1; bad <= 2; bad++ {
				r, err := faultRow(h, node, f, bad, reads, bodies, want, filepath.Join(tmp, fmt.Sprintf("%s-%s-%d", h.Name(), f.Name, bad)))
				if err != nil {
					fmt.Fprintf(tw, "%s\t%s\t%d of 3\t-\t%s\t\t\t\n", h.Name(), f.Name, bad, firstLine(err))
					continue
				}
				fmt.Fprintf(tw, "%s\t%s\t%d of 3\t%d\t%.1f%%\t%s\t%s\t\n", h.Name(), f.Name, bad, r.requests,
					100*float64(r.requests-r.errors)/float64(max(1, r.requests)), ms(r.p50), ms(r.p99))
				fmt.Fprintf(os.Stderr, "bench: %s %s %d of 3 done\n", h.Name(), f.Name, bad)
			}
		}
	}
	return tw.Flush()
}

// faultRow runs one row: three proxies, bad of them faulty from the start,
// a balancer, a few seconds for health checks, then the reads.
func faultRow(h target.Host, node *anvil.Node, f faultproxy.Fault, bad, reads int, bodies, want [][]byte, state string) (result, error) {
	var ups []target.Upstream
	for i := range 3 {
		p, err := faultproxy.New(node.URL, faultproxy.Options{})
		if err != nil {
			return result{}, err
		}
		defer p.Close()
		if i < bad {
			if err := f.Apply(p); err != nil {
				return result{}, err
			}
		}
		ups = append(ups, target.Upstream{Chain: "ethereum", Name: fmt.Sprintf("u%d", i), URL: p.URL()})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cfg := target.Config{
		Upstreams:     ups,
		AdminPassword: "bench",
		Env:           map[string]string{"EVMLB_HEALTH_INTERVAL": "1s", "EVMLB_ATTEMPT_TIMEOUT": "2s"},
		StateDir:      state,
	}
	if f.Pinned && bad == 2 {
		// A wrong majority can only be told by a configured chain id (as in the e2e table).
		raw, err := json.Marshal(map[string]any{"chains": map[string]any{"ethereum": map[string]any{"chain_id": 31337}}, "upstreams": ups})
		if err != nil {
			return result{}, err
		}
		cfg.RawUpstreamConfig = string(raw)
	}
	inst, err := h.Start(ctx, cfg)
	if err != nil {
		return result{}, err
	}
	defer inst.Stop()
	time.Sleep(3 * time.Second)
	return load(f.Name, inst.URL+"/ethereum", 4, reads, 2*time.Minute, func(i int) ([]byte, func(*rpc.Response) bool) {
		k := i % len(bodies)
		return bodies[k], func(r *rpc.Response) bool {
			return r.Status == http.StatusOK && bytes.Equal(r.Body, want[k])
		}
	}), nil
}
