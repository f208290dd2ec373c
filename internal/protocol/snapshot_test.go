package protocol

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/evmlb/evmlb/internal/retry"
)

// A report merges each upstream's successes into runs, per upstream, and keeps every failure and the order
// within an upstream: a failure ends that upstream's run.
func TestAddOutcomeMergesRunsOfSuccesses(t *testing.T) {
	var ex Exchange
	ok := func(up string, us, at int64) { ex.AddOutcome(Outcome{Upstream: up, LatencyUS: us, At: at}) }
	ok("a", 100, 1)
	ok("b", 500, 2)
	ok("a", 300, 3) // merges into a's run across b's entry
	ex.AddOutcome(Outcome{Upstream: "a", Class: retry.HTTP5xx, LatencyUS: 50, At: 4})
	ok("a", 200, 5) // after a failure of a: a new run
	ok("b", 700, 6)
	want := []Outcome{
		{Upstream: "a", LatencyUS: 200, At: 3, N: 2},
		{Upstream: "b", LatencyUS: 600, At: 6, N: 2},
		{Upstream: "a", Class: retry.HTTP5xx, LatencyUS: 50, At: 4},
		{Upstream: "a", LatencyUS: 200, At: 5},
	}
	if len(ex.Outcomes) != len(want) {
		t.Fatalf("%+v", ex.Outcomes)
	}
	for i := range want {
		if ex.Outcomes[i] != want[i] {
			t.Errorf("outcome %d: %+v, want %+v", i, ex.Outcomes[i], want[i])
		}
	}
	total := 0
	for _, o := range ex.Outcomes {
		total += o.Count()
	}
	if total != 6 {
		t.Errorf("the report stands for %d attempts, want 6", total)
	}
}

// Heads an upstream answered merge while they do not go down; a lower head, or a block read showing it behind,
// is kept as its own entry.
func TestAddSeenKeepsDecreases(t *testing.T) {
	var ex Exchange
	ex.AddSeen(Seen{Upstream: "a", Height: 10, At: 1})
	ex.AddSeen(Seen{Upstream: "b", Height: 9, At: 2})
	ex.AddSeen(Seen{Upstream: "a", Height: 12, At: 3})
	ex.AddSeen(Seen{Upstream: "a", Height: 12, At: 4})
	ex.AddSeen(Seen{Upstream: "a", Height: 5, At: 5}) // a reset: kept
	ex.AddSeen(Seen{Upstream: "a", Height: 4, Behind: true, At: 6})
	ex.AddSeen(Seen{Upstream: "a", Height: 6, At: 7})
	want := []Seen{
		{Upstream: "a", Height: 12, At: 4},
		{Upstream: "b", Height: 9, At: 2},
		{Upstream: "a", Height: 5, At: 5},
		{Upstream: "a", Height: 4, Behind: true, At: 6},
		{Upstream: "a", Height: 6, At: 7},
	}
	if len(ex.Seen) != len(want) {
		t.Fatalf("%+v", ex.Seen)
	}
	for i := range want {
		if ex.Seen[i] != want[i] {
			t.Errorf("seen %d: %+v, want %+v", i, ex.Seen[i], want[i])
		}
	}
}

// An upstream's run further back than the merge window is not searched for: the success starts a new run, and
// the report still stands for every attempt.
func TestAddOutcomeLooksBackABoundedWay(t *testing.T) {
	var ex Exchange
	ex.AddOutcome(Outcome{Upstream: "b", LatencyUS: 10})
	for range mergeWindow {
		ex.AddOutcome(Outcome{Upstream: "a", Class: retry.HTTP5xx})
	}
	ex.AddOutcome(Outcome{Upstream: "b", LatencyUS: 10})
	if n := len(ex.Outcomes); n != mergeWindow+2 {
		t.Fatalf("%d entries, want %d", n, mergeWindow+2)
	}
	total := 0
	for _, o := range ex.Outcomes {
		total += o.Count()
	}
	if total != mergeWindow+2 {
		t.Errorf("the report stands for %d attempts", total)
	}
}

// Poison marks: an ended one is dropped, a fingerprint keeps its later end, and past MaxPoison the marks that end
// first go.
func TestAddPoison(t *testing.T) {
	now := time.UnixMilli(1_000_000)
	m := map[uint64]int64{}
	AddPoison(m, []PoisonMark{{1, 999_000}, {2, 1_005_000}, {2, 1_003_000}, {3, 1_010_000}}, now)
	if len(m) != 2 || m[2] != 1_005_000 || m[3] != 1_010_000 {
		t.Errorf("marks %v", m)
	}
	var many []PoisonMark
	for i := range MaxPoison + 10 {
		many = append(many, PoisonMark{uint64(100 + i), 1_020_000 + int64(i)})
	}
	AddPoison(m, many, now)
	if len(m) != MaxPoison || m[2] != 0 || m[3] != 0 || m[uint64(100+MaxPoison+9)] == 0 {
		t.Errorf("%d marks kept; 2: %d, 3: %d", len(m), m[2], m[3])
	}
	if got := PoisonList(m, time.UnixMilli(1_020_000+int64(MaxPoison)+5)); len(got) != 4 {
		t.Errorf("%d marks live near the end, want 4", len(got))
	}
	b, _ := json.Marshal(PoisonMark{FP: 1<<63 + 1, Until: 5})
	if string(b) != `{"fp":"9223372036854775809","until":5}` {
		t.Errorf("JSON %s", b)
	}
}
