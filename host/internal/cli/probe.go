package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/evmlb/evmlb/internal/config"
	"github.com/evmlb/evmlb/internal/healthcheck"
)

// probeResult is what one upstream answered.
type probeResult struct {
	u       config.Upstream
	chainID uint64
	head    uint64
	syncing bool
	// finalized is the block at the "finalized" tag (0: none: the node lacks the tag); it never fails the probe.
	finalized uint64
	latency   time.Duration // of eth_blockNumber, a single call
	batch     bool
	err       string // why the upstream could not be probed; never holds its URL
}

// runProbe asks every upstream at once (each within timeout) and prints a table per chain. It fails when an
// upstream cannot be reached or serves another chain: likely a wrong key or URL. Lag and syncing are reported,
// not failed: they pass.
func runProbe(ctx context.Context, c *config.Config, _ config.Settings, timeout time.Duration, env Env) error {
	results := make([]probeResult, len(c.Upstreams))
	var wg sync.WaitGroup
	for i, u := range c.Upstreams {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			results[i] = probeOne(ctx, env.HTTP, u)
		})
	}
	wg.Wait()
	bad := 0
	for _, chain := range c.Chains() {
		var rs []probeResult
		for _, r := range results {
			if r.u.Chain == chain {
				rs = append(rs, r)
			}
		}
		bad += printChainProbe(env.Stdout, chain, c.ChainSettings(chain).WithDefaults(), rs)
	}
	if bad > 0 {
		return fmt.Errorf("%d upstream%s failed the probe", bad, plural(bad))
	}
	return nil
}

// printChainProbe prints one chain's table and returns how many of its upstreams failed.
func printChainProbe(w io.Writer, chain string, set config.Chain, rs []probeResult) (bad int) {
	want, how := set.ChainID, "configured"
	if want == 0 {
		// As the chain's table decides (balance): a strict majority of the upstreams that answered; a split
		// with no majority is undecided, since the probe has no id verified before to break it.
		counts, answered := map[uint64]int{}, 0
		for _, r := range rs {
			if r.err == "" {
				counts[r.chainID]++
				answered++
			}
		}
		how = "majority"
		for id, n := range counts {
			if 2*n > answered {
				want = id
			}
		}
		if want == 0 && answered > 0 {
			how = "undecided: the upstreams disagree and no chain_id is configured; the balancer would refuse every request (-32073)"
		}
	}
	var best uint64
	for _, r := range rs {
		if r.err == "" && r.chainID == want && !r.syncing {
			best = max(best, r.head)
		}
	}
	fmt.Fprintf(w, "\n%s: chain id %d (%s), best head %d\n", chain, want, how, best)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  UPSTREAM\tENDPOINT\tCHAIN ID\tHEAD\tFINALIZED\tLAG\tLATENCY\tBATCH\tVERDICT")
	for _, r := range rs {
		if r.err != "" {
			bad++
			fmt.Fprintf(tw, "  %s\t%s\t-\t-\t-\t-\t-\t-\tFAIL: %s\n", r.u.Name, r.u.Endpoint(), r.err)
			continue
		}
		lag := int64(best) - int64(r.head)
		verdict := "ok"
		switch {
		case want == 0:
			bad++
			verdict = fmt.Sprintf("FAIL: chain id undecided (serves %d): configure chain_id", r.chainID)
		case r.chainID != want:
			bad++
			verdict = fmt.Sprintf("FAIL: wrong chain (serves %d)", r.chainID)
		case r.syncing:
			verdict = "syncing: out of rotation until synced"
		case lag > int64(set.MaxLagBlocks):
			verdict = fmt.Sprintf("lagging: more than max_lag_blocks (%d) behind", set.MaxLagBlocks)
		}
		batch := "yes"
		if !r.batch {
			batch = "no"
			if verdict == "ok" {
				verdict = "ok (no batches: checked call by call)"
			}
		}
		fin := "-" // the node lacks the tag: the chain's finality comes from others, or finality_depth
		if r.finalized != 0 {
			fin = strconv.FormatUint(r.finalized, 10)
		}
		fmt.Fprintf(tw, "  %s\t%s\t%d\t%d\t%s\t%d\t%.1fms\t%s\t%s\n", r.u.Name, r.u.Endpoint(), r.chainID, r.head, fin, lag,
			float64(r.latency.Microseconds())/1000, batch, verdict)
	}
	tw.Flush()
	return bad
}

// probeOne sends the health check's calls (internal/healthcheck) one by one, eth_chainId, eth_blockNumber,
// eth_syncing and eth_getBlockByNumber at "finalized", and reads their answers as the check does; then the check's batch, which it takes or not as the
// check would (BATCH no: the balancer's checks go call by call).
func probeOne(ctx context.Context, hc *http.Client, u config.Upstream) probeResult {
	r := probeResult{u: u}
	answers := make([][]byte, 3)
	for i, m := range []string{"eth_chainId", "eth_blockNumber", "eth_syncing"} {
		start := time.Now()
		body, err := rpc(ctx, hc, u, healthcheck.Call(m))
		if err == nil {
			_, err = healthcheck.Read(body)
		}
		if err != nil {
			r.err = m + ": " + err.Error()
			return r
		}
		if m == "eth_blockNumber" {
			r.latency = time.Since(start)
		}
		answers[i] = body
	}
	var err error
	if _, r.chainID, err = healthcheck.ReadQuantity(answers[0]); err != nil {
		r.err = "eth_chainId: " + err.Error()
		return r
	}
	if _, r.head, err = healthcheck.ReadQuantity(answers[1]); err != nil {
		r.err = "eth_blockNumber: " + err.Error()
		return r
	}
	r.syncing = healthcheck.Syncing(answers[2])
	if body, err := rpc(ctx, hc, u, healthcheck.FinalizedCall()); err == nil {
		r.finalized = healthcheck.ReadFinalized(body) // as the check reads it: an error or null is none
	}
	if body, err := rpc(ctx, hc, u, healthcheck.Batch(0, healthcheck.Final{})); err == nil {
		_, r.batch = healthcheck.ReadBatch(body, 0, healthcheck.Final{})
	}
	return r
}

// rpc posts body to the upstream and returns the answer's body. Its errors never hold the URL.
func rpc(ctx context.Context, hc *http.Client, u config.Upstream, body []byte) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.URL, bytes.NewReader(body))
	if err != nil {
		return nil, errors.New("bad URL")
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		var ue *url.Error
		switch {
		case ctx.Err() != nil:
			return nil, errors.New("timeout")
		case errors.As(err, &ue):
			return nil, errors.New(strings.ReplaceAll(ue.Err.Error(), u.URL, u.Endpoint()))
		}
		return nil, errors.New("request failed")
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, errors.New("answer cut short")
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	return b, nil
}
