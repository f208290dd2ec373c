package durable

import (
	"reflect"
	"testing"
	"time"

	"github.com/evmlb/evmlb/internal/balance"
	"github.com/evmlb/evmlb/internal/retry"
)

// A state probe reported before the chain's best height is known is kept, and learned at a later report, once the
// table can tell an old block from a recent one; then it is dropped.
func TestStateProbesKeptUntilBestKnown(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	o := &chain{table: balance.New(balance.Settings{CapabilityTTL: time.Hour}, []string{"a", "b"}, nil)}
	lack := Report{Name: "a", StateProbes: []StateProbe{{Block: 1, Class: retry.MissingData, Lack: retry.LacksState, At: t0},
		{Block: 744, Class: retry.MissingData, Lack: retry.LacksState, At: t0}}}
	if got := o.takeProbes(lack); got != nil || o.table.Best() != 0 {
		t.Fatalf("best %d: learned %v before the best height is known", o.table.Best(), got)
	}
	for _, n := range []string{"a", "b"} {
		o.table.Report(n, balance.Report{At: t0, Height: 1000, ChainID: 1})
	}
	if got := o.takeProbes(Report{Name: "b"}); !reflect.DeepEqual(got, []string{"a"}) {
		t.Fatalf("learned %v at the next report, want a's probe", got)
	}
	if u, _ := o.table.Get("a"); !u.Caps.LacksState(744, t0.Add(time.Minute)) {
		t.Errorf("a's caps %+v: the probe was not learned", u.Caps)
	}
	if len(o.probes) != 0 {
		t.Errorf("probes kept after they were learned: %v", o.probes)
	}
}
