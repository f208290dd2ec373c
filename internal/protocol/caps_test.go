package protocol

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/evmlb/evmlb/internal/balance"
	"github.com/evmlb/evmlb/internal/blockref"
	"github.com/evmlb/evmlb/internal/retry"
)

// What an isolate learned reaches the chain's table through the exchange, and every isolate through the snapshot,
// without the proofs that expired.
func TestLearnedTravels(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 0, 0, time.UTC)
	s := balance.Settings{CapabilityTTL: time.Minute}
	chain := balance.New(s, []string{"a", "b"}, nil)
	iso := balance.New(s, []string{"a", "b"}, nil)
	var ex Exchange
	for _, l := range []Learned{
		{Upstream: "a", Method: "trace_block", Class: retry.Unsupported, Lack: retry.LacksMethod, At: t0.UnixMilli()},
		{Upstream: "b", Method: "trace_filter", Class: retry.Unsupported, Lack: retry.LacksMethod, At: t0.Add(-time.Hour).UnixMilli()},
	} {
		if !l.Apply(iso) {
			t.Fatalf("%+v taught the isolate nothing", l)
		}
		ex.AddLearned(l)
	}
	b, _ := json.Marshal(ex)
	var got Exchange
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	for _, l := range got.Learned {
		l.Apply(chain)
	}
	b, _ = json.Marshal(SnapshotOf(chain))
	var snap Snapshot
	if err := json.Unmarshal(b, &snap); err != nil {
		t.Fatal(err)
	}
	if m := snap.Rows[1].Caps.Methods; m != nil {
		t.Errorf("an expired proof shipped: %v", m)
	}
	other := balance.New(s, []string{"a", "b"}, nil)
	snap.Restore(other)
	if r := other.Route("trace_block", blockref.Ref{}, t0); !reflect.DeepEqual(r, []string{"b"}) {
		t.Errorf("another isolate routes trace_block to %v, want b", r)
	}
}

func TestAddLearnedBounded(t *testing.T) {
	var ex Exchange
	for i := range MaxLearned + 10 {
		ex.AddLearned(Learned{Upstream: "a", Block: uint64(i)})
	}
	if len(ex.Learned) != MaxLearned || ex.Learned[0].Block != 10 || ex.Learned[MaxLearned-1].Block != MaxLearned+9 {
		t.Fatalf("%d kept, first %d", len(ex.Learned), ex.Learned[0].Block)
	}
}
