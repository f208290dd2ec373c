package protocol

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/evmlb/evmlb/internal/balance"
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

// Issue 19: a snapshot carries the chain's finalized block and cache epoch, through JSON, to an isolate's copy of
// the table, which takes them as given (Follow) and does not decide them again from its rows.
func TestSnapshotCarriesFinality(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	src := balance.New(balance.Settings{}, []string{"a", "b"}, nil)
	src.RestoreCache(balance.CacheState{}, at)
	src.Report("a", balance.Report{At: at, Height: 200, ChainID: 1, Finalized: 136})
	src.Report("b", balance.Report{At: at, Height: 200, ChainID: 1, Finalized: 140})
	epoch := src.MoveCacheEpoch(at, "")
	b, _ := json.Marshal(SnapshotOf(src))
	var snap Snapshot
	if err := json.Unmarshal(b, &snap); err != nil {
		t.Fatal(err)
	}
	if snap.Finalized != 136 || snap.CacheEpoch != epoch {
		t.Fatalf("snapshot %s", b)
	}
	iso := balance.New(balance.Settings{}, []string{"a", "b"}, nil)
	snap.Restore(iso)
	if f, ok := iso.Finalized(); f != 136 || !ok || iso.CacheEpoch() != epoch {
		t.Errorf("the isolate's copy: finalized %d %v, epoch %d; want 136, %d", f, ok, iso.CacheEpoch(), epoch)
	}
	// Its own observations move its head, not its finality.
	iso.ServeHead("a", 201, at.Add(time.Second))
	if f, _ := iso.Finalized(); f != 136 || iso.CacheEpoch() != epoch {
		t.Errorf("after serving a head: finalized %d, epoch %d", f, iso.CacheEpoch())
	}
	// Unknown finality travels as unknown.
	none := balance.New(balance.Settings{}, []string{"a"}, nil)
	none.Report("a", balance.Report{At: at, Height: 200, ChainID: 1})
	b, _ = json.Marshal(SnapshotOf(none))
	snap = Snapshot{}
	_ = json.Unmarshal(b, &snap)
	iso = balance.New(balance.Settings{}, []string{"a"}, nil)
	snap.Restore(iso)
	if f, ok := iso.Finalized(); f != 0 || ok {
		t.Errorf("unknown finality restored as %d %v", f, ok)
	}
}
