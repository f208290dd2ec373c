package metrics

import (
	"bufio"
	"bytes"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/evmlb/evmlb/internal/readme"
	"github.com/prometheus/common/expfmt"
)

// full is a chain whose every family has samples.
func full() []ChainView {
	m := &Chain{}
	m.Request("eth_call", OutcomeOK, time.Millisecond)
	m.Attempt("a", "eth_call", "", time.Millisecond)
	m.Transition("a", "open")
	m.Skip("a", "state")
	m.CacheResult("eth_call", CacheMiss)
	m.BroadcastResult("a", "accepted")
	m.ClientRequest("app1", ClientOK)
	m.Retries, m.Hedges, m.Poison, m.LogsSplits, m.LogsPieces = 1, 1, 1, 1, 2
	return []ChainView{{Name: "eth", Head: 100, Metrics: m, CacheBytes: 10, WS: &WSView{Sockets: 2, Subscriptions: 3, Events: 9, Reorgs: 1, Deep: 1, Skipped: 4}, Upstreams: []UpstreamView{
		{Name: "a", Height: 100, State: "healthy", LacksMethods: []string{"trace_block", "made_up"}, LacksState: true, StateBelow: 50},
		{Name: "b", Height: 99, State: "healthy", Archive: true, HasState: true, StateFrom: 1},
	}}}
}

var backticked = regexp.MustCompile("`([^`]+)`")

// TestReadmeMetricsTable holds README.md's table of metrics to what Write writes: every family, in the order
// written (a row may name several), with exactly its labels (a histogram's le aside).
func TestReadmeMetricsTable(t *testing.T) {
	rows, err := readme.Table("metric", "labels", "what")
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := Write(&out, full(), BreakerStates); err != nil {
		t.Fatal(err)
	}
	var p expfmt.TextParser
	fams, err := p.TextToMetricFamilies(bytes.NewReader(out.Bytes()))
	if err != nil {
		t.Fatalf("expfmt: %v", err)
	}
	var order []string // the families in the order written
	sc := bufio.NewScanner(&out)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "# TYPE "); ok {
			order = append(order, strings.Fields(rest)[0])
		}
	}
	labels := func(name string) []string {
		set := map[string]bool{}
		for _, m := range fams[name].GetMetric() {
			for _, l := range m.GetLabel() {
				set[l.GetName()] = true
			}
		}
		var out []string
		for l := range set {
			out = append(out, l)
		}
		slices.Sort(out)
		return out
	}
	var problems []string
	var documented []string
	for _, r := range rows {
		var want []string
		for _, m := range backticked.FindAllStringSubmatch(r.Cells[1], -1) {
			want = append(want, m[1])
		}
		slices.Sort(want)
		for _, m := range backticked.FindAllStringSubmatch(r.Cells[0], -1) {
			name := m[1]
			documented = append(documented, name)
			if fams[name] == nil {
				problems = append(problems, fmt.Sprintf("README.md:%d: %s is not written (or has no sample)", r.Line, name))
			} else if got := labels(name); !slices.Equal(got, want) {
				problems = append(problems, fmt.Sprintf("README.md:%d: %s has labels %v, README says %v", r.Line, name, got, want))
			}
		}
	}
	for _, name := range order {
		if !slices.Contains(documented, name) {
			problems = append(problems, fmt.Sprintf("%s is written but README.md's table has no row for it", name))
		}
	}
	if len(problems) == 0 && !slices.Equal(documented, order) {
		problems = append(problems, fmt.Sprintf("README.md's rows are in the order %v, Write's is %v", documented, order))
	}
	for _, p := range problems {
		t.Error(p)
	}
}

// The learned capabilities' families: one gauge per upstream for archive, a sample per method held (only the known
// list's), the state bounds only while a proof holds, and the skips by lack for every upstream.
func TestWriteCaps(t *testing.T) {
	var out bytes.Buffer
	if err := Write(&out, full(), BreakerStates); err != nil {
		t.Fatal(err)
	}
	text := out.String()
	for _, want := range []string{
		`evmlb_upstream_archive{chain="eth",upstream="a"} 0`,
		`evmlb_upstream_archive{chain="eth",upstream="b"} 1`,
		`evmlb_upstream_lacks_method{chain="eth",upstream="a",method="trace_block"} 1`,
		`evmlb_upstream_lacks_state_below_block{chain="eth",upstream="a"} 50`,
		`evmlb_upstream_has_state_from_block{chain="eth",upstream="b"} 1`,
		`evmlb_upstream_skipped_total{chain="eth",upstream="a",lack="state"} 1`,
		`evmlb_upstream_skipped_total{chain="eth",upstream="a",lack="method"} 0`,
		`evmlb_upstream_skipped_total{chain="eth",upstream="b",lack="state"} 0`,
	} {
		if !strings.Contains(text, want+"\n") {
			t.Errorf("no line %s", want)
		}
	}
	for _, not := range []string{
		`method="made_up"`, // not on the known list
		`evmlb_upstream_lacks_state_below_block{chain="eth",upstream="b"}`,
		`evmlb_upstream_has_state_from_block{chain="eth",upstream="a"}`,
	} {
		if strings.Contains(text, not) {
			t.Errorf("%s written", not)
		}
	}
	// Skips add up across isolates' counts.
	var sum Chain
	sum.Add(full()[0].Metrics, time.Time{}, nil)
	sum.Add(full()[0].Metrics, time.Time{}, nil)
	if got := sum.Upstreams["a"].Skipped["state"]; got != 2 {
		t.Errorf("summed skips %d, want 2", got)
	}
}
