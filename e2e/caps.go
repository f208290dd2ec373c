package e2e

import (
	"bufio"
	"bytes"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/evmlb/evmlb/e2e/internal/anvil"
	"github.com/evmlb/evmlb/e2e/internal/faultproxy"
	"github.com/evmlb/evmlb/e2e/internal/rpc"
	"github.com/evmlb/evmlb/e2e/internal/target"
)

// Issue 20's capabilities learned, seen from outside: two full nodes whose state does not reach back (they answer
// reads of old state "missing trie node", as geth does) and one that has it. The attempts are read twice: from the
// fault proxies (a client's reads told from the health checks' state probes by their block, 0x10) and from the
// balancer's own per-upstream attempt counts (evmlb_upstream_requests_total, which only clients' calls make).

// trieMissing is geth's answer to a read of state it pruned.
const trieMissing = "missing trie node 1db428ea79cb2e8cc233ae7f4db7c5ad4b1b7e9b2a3a5f4ad3d4e0c9b8a7f6e5 (path )"

// oldReads is how many reads of old state (eth_getBalance at block 0x10) each scenario sends.
const oldReads = 100

// promSum adds the samples of family in a Prometheus text body whose labels include want.
func promSum(body []byte, family string, want map[string]string) float64 {
	var sum float64
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), family+"{")
		if !ok {
			continue
		}
		labels, value, ok := strings.Cut(rest, "} ")
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if err != nil {
			continue
		}
		l := map[string]string{}
		for _, kv := range strings.Split(labels, ",") {
			k, val, _ := strings.Cut(kv, "=")
			l[k] = strings.Trim(val, `"`)
		}
		match := true
		for k, v := range want {
			match = match && l[k] == v
		}
		if match {
			sum += v
		}
	}
	return sum
}

// attempts is evmlb_upstream_requests_total of the chain "ethereum" for up's eth_getBalance, of class ("" any).
func attempts(body []byte, up, class string) float64 {
	want := map[string]string{"chain": "ethereum", "upstream": up, "method": "eth_getBalance"}
	if class != "" {
		want["class"] = class
	}
	return promSum(body, "evmlb_upstream_requests_total", want)
}

// oldStateSetup starts anvil at block 300, full1 and full2 (state below block 200 pruned) and archive in front of
// it, and the balancer with the answer cache off (every read must reach an upstream) and archive's entry as given.
func oldStateSetup(s *S, archiveSetting bool) (b *Balancer, full1, full2, arch *faultproxy.Proxy, want []byte) {
	n := s.Node(31337, 300)
	full1, u1 := s.Upstream(n, "ethereum", "full1")
	full2, u2 := s.Upstream(n, "ethereum", "full2")
	arch, u3 := s.Upstream(n, "ethereum", "archive")
	u3.Archive = archiveSetting
	full1.SetStatePruned(200, trieMissing)
	full2.SetStatePruned(200, trieMissing)
	b = s.StartConfig(target.Config{Upstreams: []target.Upstream{u1, u2, u3}, Chains: `{"ethereum":{"cache":false}}`})
	b.waitHead("ethereum", "0x12c")
	return b, full1, full2, arch, s.direct(n, rpc.Request(1, "eth_getBalance", anvil.DevAddress, "0x10")).Body
}

// sendOldReads sends the oldReads reads of old state; each must be anvil's own answer.
func sendOldReads(s *S, b *Balancer, want []byte) {
	body := rpc.Request(1, "eth_getBalance", anvil.DevAddress, "0x10")
	for i := range oldReads {
		r := b.Post("ethereum", body)
		if i == 0 {
			s.Record("eth_getBalance at block 16", r, NormRPC)
		}
		s.must(r.Status == http.StatusOK && bytes.Equal(r.Body, want), "old read %d: %d %s, want %s", i, r.Status, r.Body, want)
	}
}

// oldReadMetrics waits until /admin/metrics counts the archive's oldReads good answers (every isolate's counts reach
// the chain object with its exchanges; a request's attempts at the full nodes come before its last, the archive's)
// and returns the body.
func (b *Balancer) oldReadMetrics() []byte {
	return b.waitAdmin("/admin/metrics", fmt.Sprintf("evmlb_upstream_requests_total to count the archive's %d answers", oldReads), func(body []byte) bool {
		return attempts(body, "archive", "ok") >= oldReads
	})
}

// scOldStateToArchive (issue 20): every read of old state succeeds, and after the first few they go straight to
// the archive: the full nodes are asked at most once each per Worker runtime that learned they lack it (or not at
// all, when their health checks' state probe told the chain first), while reads at latest still go to all.
func scOldStateToArchive(s *S) {
	b, full1, full2, arch, want := oldStateSetup(s, false)
	sendOldReads(s, b, want)
	fulls := full1.CountAt("eth_getBalance", "0x10") + full2.CountAt("eth_getBalance", "0x10")
	s.must(arch.CountAt("eth_getBalance", "0x10") == oldReads, "the archive answered %d of %d old reads", arch.CountAt("eth_getBalance", "0x10"), oldReads)
	s.must(fulls <= 8, "the full nodes were asked %d times for state they proved they lack", fulls)
	// The balancer's own attempt counts say the same.
	m := b.oldReadMetrics()
	a1, a2, aa := attempts(m, "full1", ""), attempts(m, "full2", ""), attempts(m, "archive", "")
	skipped := promSum(m, "evmlb_upstream_skipped_total", map[string]string{"chain": "ethereum", "lack": "state"})
	s.Logf("MEASURE %s old-state-to-archive: attempts (metrics) full1 %v, full2 %v, archive %v; proxies' client reads full1 %d, full2 %d, archive %d; calls routed without a full node %v",
		s.Host.Name(), a1, a2, aa, full1.CountAt("eth_getBalance", "0x10"), full2.CountAt("eth_getBalance", "0x10"), arch.CountAt("eth_getBalance", "0x10"), skipped)
	s.must(aa == oldReads && attempts(m, "archive", "ok") == oldReads, "evmlb_upstream_requests_total: the archive attempted %v, want %d, all ok", aa, oldReads)
	s.must(a1+a2 == float64(fulls), "evmlb_upstream_requests_total: the full nodes attempted %v, their proxies saw %d", a1+a2, fulls)
	s.must(skipped > 0, "evmlb_upstream_skipped_total counts no call routed without a full node")
	s.Note("old reads", fmt.Sprintf("%d answered by the archive; the full nodes asked at most once each per runtime, in the metrics as at the proxies: %t", oldReads, fulls <= 8))
}

// scOldStateArchiveConfigured (issue 20): the same, with the third upstream's entry `"archive": true`: it is asked
// first from the very first read, and the full nodes are asked for none. Their health checks' state probes (in
// requests of their own: block 1, then 256 below the head) have told the chain how far back their state reaches
// before the first read; the archive is never probed.
func scOldStateArchiveConfigured(s *S) {
	b, full1, full2, arch, want := oldStateSetup(s, true)
	b.waitAdmin("/admin/metrics", "the state probes of full1 and full2 (evmlb_upstream_lacks_state_below_block)", func(body []byte) bool {
		return promSum(body, "evmlb_upstream_lacks_state_below_block", map[string]string{"upstream": "full1"}) > 0 &&
			promSum(body, "evmlb_upstream_lacks_state_below_block", map[string]string{"upstream": "full2"}) > 0
	})
	sendOldReads(s, b, want)
	fulls := full1.CountAt("eth_getBalance", "0x10") + full2.CountAt("eth_getBalance", "0x10")
	s.must(fulls == 0, "the full nodes were asked %d old reads; the archive by configuration comes first", fulls)
	s.must(arch.Count("eth_getBalance") == oldReads, "the archive got %d eth_getBalance, want the %d reads (and no probe)", arch.Count("eth_getBalance"), oldReads)
	m := b.oldReadMetrics()
	a1, a2, aa := attempts(m, "full1", ""), attempts(m, "full2", ""), attempts(m, "archive", "")
	gauge := func(family, up string) float64 { return promSum(m, family, map[string]string{"upstream": up}) }
	s.Logf("MEASURE %s old-state-archive-configured: attempts (metrics) full1 %v, full2 %v, archive %v; lacks_state_below_block full1 %v, full2 %v; archive gauge %v; calls routed without a full node %v",
		s.Host.Name(), a1, a2, aa, gauge("evmlb_upstream_lacks_state_below_block", "full1"), gauge("evmlb_upstream_lacks_state_below_block", "full2"),
		gauge("evmlb_upstream_archive", "archive"), promSum(m, "evmlb_upstream_skipped_total", map[string]string{"lack": "state"}))
	s.must(a1 == 0 && a2 == 0, "evmlb_upstream_requests_total: the full nodes attempted %v and %v old reads, want 0", a1, a2)
	s.must(aa == oldReads && attempts(m, "archive", "ok") == oldReads, "evmlb_upstream_requests_total: the archive attempted %v, want %d, all ok", aa, oldReads)
	s.must(gauge("evmlb_upstream_archive", "archive") == 1 && gauge("evmlb_upstream_archive", "full1") == 0, "evmlb_upstream_archive: archive %v, full1 %v", gauge("evmlb_upstream_archive", "archive"), gauge("evmlb_upstream_archive", "full1"))
	s.Note("old reads", fmt.Sprintf("%d answered by the archive (configured), none asked of the full nodes, which the state probe found pruned first: %t", oldReads, fulls == 0))
}
