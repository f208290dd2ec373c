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
	"sync"
	"text/tabwriter"
	"time"

	"github.com/evmlb/evmlb/e2e/internal/anvil"
	"github.com/evmlb/evmlb/e2e/internal/rpc"
	"github.com/evmlb/evmlb/e2e/internal/target"
)

// memRow is one measurement of -memory: a fresh balancer, warmed with small requests, then one request of size
// bytes, then ten at once.
type memRow struct {
	target                string
	size                  int
	base, one, ten        uint64 // the runtime's memory_bytes: warm, after one request, after ten concurrent
	oneStatus, tenAnswers string
	restarted             bool
}

// runMemory measures what large requests cost the Go runtime's memory (issue 11): for each host and size, a fresh
// balancer in front of anvil, 50 small requests, then one eth_call of the size, then ten concurrent, reading the
// runtime's memory_bytes from /admin/stats after each step. The wazero host runs one Worker runtime (-workers 1),
// so that every request and every reading is the same runtime's, with the 128 MB cap serve has by default; workerd
// (wrangler dev) runs one isolate. With url set, it measures that running balancer instead, at the first size
// only (a balancer of another build: start it fresh for each size).
func runMemory(hostList, sizeList, url, password string) error {
	var sizes []int
	for _, f := range strings.Split(sizeList, ",") {
		var kib int
		if _, err := fmt.Sscanf(strings.TrimSpace(f), "%d", &kib); err != nil || kib < 1 {
			return fmt.Errorf("bad size %q (KiB)", f)
		}
		sizes = append(sizes, kib<<10)
	}
	var rows []memRow
	if url != "" {
		r, err := measureMemory(url, password, "balancer at "+url, sizes[0])
		if err != nil {
			return err
		}
		rows = append(rows, r)
		printMemory(rows)
		return nil
	}
	ctx := context.Background()
	node, err := anvil.Start(ctx, anvil.Options{ChainID: 31337})
	if err != nil {
		return err
	}
	defer node.Stop()
	tmp, err := os.MkdirTemp("", "evmlb-bench-mem-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	wanted := strings.Split(hostList, ",")
	for _, h := range []target.Host{&target.Wazero{CacheDir: filepath.Join(tmp, "cache"), Workers: 1}, target.Workerd{}} {
		if !slices.Contains(wanted, h.Name()) {
			continue
		}
		if err := h.Available(); err != nil {
			fmt.Printf("%s: skipped: %v\n", h.Name(), err)
			continue
		}
		for _, size := range sizes {
			cfg := target.Config{
				Upstreams:     []target.Upstream{{Chain: "ethereum", Name: "anvil", URL: node.URL}},
				AdminPassword: "bench",
				Env:           map[string]string{"EVMLB_HEALTH_INTERVAL": "5s"},
				StateDir:      filepath.Join(tmp, fmt.Sprintf("%s-%d", h.Name(), size)),
			}
			sctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
			inst, err := h.Start(sctx, cfg)
			cancel()
			if err != nil {
				return fmt.Errorf("%s: %v", h.Name(), firstLine(err))
			}
			r, err := measureMemory(inst.URL, "bench", "balancer in "+h.Name(), size)
			inst.Stop()
			if err != nil {
				return err
			}
			rows = append(rows, r)
			fmt.Fprintf(os.Stderr, "bench: memory, %s, %d KiB done\n", h.Name(), size>>10)
		}
	}
	printMemory(rows)
	return nil
}

func measureMemory(base, password, name string, size int) (memRow, error) {
	row := memRow{target: name, size: size}
	url := base + "/ethereum"
	if err := warm(url); err != nil {
		return row, fmt.Errorf("%s: %v", name, err)
	}
	started, mem, err := runtimeMemory(base, password)
	if err != nil {
		return row, fmt.Errorf("%s: %v", name, err)
	}
	row.base = mem
	body := largeCall(size - len(largeCall(0)))
	client := &http.Client{Timeout: 2 * time.Minute}
	answer := func() string {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		r, err := rpc.Post(ctx, client, url, body)
		switch {
		case err != nil:
			return "failed"
		case r.Status == http.StatusOK && bytes.Contains(r.Body, []byte(`"result"`)):
			return "200 result"
		default:
			var e struct {
				Error struct{ Code int } `json:"error"`
			}
			_ = json.Unmarshal(r.Body, &e)
			return fmt.Sprintf("%d %d", r.Status, e.Error.Code)
		}
	}
	row.oneStatus = answer()
	if _, row.one, err = runtimeMemory(base, password); err != nil {
		return row, fmt.Errorf("%s: %v", name, err)
	}
	answers := make([]string, 10)
	var wg sync.WaitGroup
	for i := range answers {
		wg.Go(func() { answers[i] = answer() })
	}
	wg.Wait()
	counts := map[string]int{}
	for _, a := range answers {
		counts[a]++
	}
	var parts []string
	for a, n := range counts {
		parts = append(parts, fmt.Sprintf("%d× %s", n, a))
	}
	slices.Sort(parts)
	row.tenAnswers = strings.Join(parts, ", ")
	if err := warm(url); err != nil {
		return row, fmt.Errorf("%s: not answering after the large requests: %v", name, err)
	}
	var after time.Time
	if after, row.ten, err = runtimeMemory(base, password); err != nil {
		return row, fmt.Errorf("%s: %v", name, err)
	}
	row.restarted = !after.Equal(started)
	return row, nil
}

// runtimeMemory reads /admin/stats: the runtime's start and its memory_bytes.
func runtimeMemory(base, password string) (time.Time, uint64, error) {
	req, _ := http.NewRequest(http.MethodGet, base+"/admin/stats", nil)
	req.SetBasicAuth("admin", password)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return time.Time{}, 0, err
	}
	defer resp.Body.Close()
	var st struct {
		Runtime struct {
			StartedAt   time.Time `json:"started_at"`
			MemoryBytes uint64    `json:"memory_bytes"`
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil || resp.StatusCode != http.StatusOK {
		return time.Time{}, 0, fmt.Errorf("/admin/stats: %d %v", resp.StatusCode, err)
	}
	if st.Runtime.MemoryBytes == 0 {
		return time.Time{}, 0, fmt.Errorf("/admin/stats has no runtime.memory_bytes")
	}
	return st.Runtime.StartedAt, st.Runtime.MemoryBytes, nil
}

func printMemory(rows []memRow) {
	mib := func(b uint64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }
	multiple := func(from, to uint64, bytes int) string {
		if to < from {
			return "0"
		}
		return fmt.Sprintf("%.1f×", float64(to-from)/float64(bytes))
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "target\trequest\twarm\tafter one\tgrowth ÷ body\tone answered\tafter ten at once\tgrowth ÷ ten bodies\tten answered\truntime\t")
	for _, r := range rows {
		kept := "kept"
		if r.restarted {
			kept = "RESTARTED"
		}
		fmt.Fprintf(tw, "%s\t%d KiB\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", r.target, r.size>>10, mib(r.base), mib(r.one),
			multiple(r.base, r.one, r.size), r.oneStatus, mib(r.ten), multiple(r.base, r.ten, 10*r.size), r.tenAnswers, kept)
	}
	tw.Flush()
}
