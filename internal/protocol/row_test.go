package protocol

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/evmlb/evmlb/internal/balance"
	"github.com/evmlb/evmlb/internal/retry"
)

// notInSnapshot are the fields of the table's row a snapshot leaves out: no isolate routes by them.
var notInSnapshot = map[string]string{
	"LastError":   "shown by admin (Reason), from the chain object's table",
	"LastErrorAt": "shown by admin",
	"Requests":    "the chain object's Blind; an isolate counts its own",
	"LastStatus":  "shown by admin (Reason)",
	"Finalized":   "an isolate takes the chain's finalized block as decided (Snapshot.Finalized), never each row's",
}

// A snapshot carries every field of the table's row but notInSnapshot, through JSON and back: a field added to
// balance.Upstream must be shipped to the isolates or listed there with the reason it need not be.
func TestSnapshotCarriesWhatRoutes(t *testing.T) {
	at := func(s int) time.Time { return time.Date(2026, 1, 2, 3, 4, s, 0, time.UTC) }
	want := balance.Upstream{
		Name: "a", Height: 100, HeightMovedAt: at(5), ChainID: 1, Syncing: true, ReportedAt: at(6),
		CooldownUntil: at(8), Breaker: balance.Breaker{Failures: 3, OpenUntil: at(9)}, LatencyMS: 12.5,
		ErrorRate: 0.25, HeightAt: at(10), Unserved: 99, Proven: 98, LeadSince: at(11),
		Caps: balance.Caps{Archive: true, Methods: map[string]time.Time{"trace_block": at(12)}, StateBelow: 90,
			StateBelowUntil: at(13), StateFrom: 95, StateFromUntil: at(14)},
	}
	full := want
	full.LastError, full.LastErrorAt, full.Requests, full.LastStatus, full.Finalized = retry.Timeout, at(7), 42, 404, 97
	v := reflect.ValueOf(full)
	for i := range v.NumField() {
		if v.Field(i).IsZero() {
			t.Fatalf("the test leaves balance.Upstream.%s unset: set it (or list it in notInSnapshot)", v.Type().Field(i).Name)
		}
	}
	for n := range notInSnapshot {
		if !v.FieldByName(n).IsValid() {
			t.Errorf("notInSnapshot names %s, which balance.Upstream no longer has", n)
		}
	}
	b, err := json.Marshal(rowOf(full))
	if err != nil {
		t.Fatal(err)
	}
	var r Row
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	if got := r.upstream(); !reflect.DeepEqual(got, want) {
		t.Errorf("an isolate restored\n%+v\nwant\n%+v", got, want)
	}
	// Through a table, as the chain object ships it and an isolate restores it.
	src := balance.New(balance.Settings{}, []string{"a", "b"}, nil)
	src.RestoreAll([]balance.Upstream{{Name: "a", Height: 7, ChainID: 1, HeightAt: at(1), ReportedAt: at(1)}})
	b, _ = json.Marshal(SnapshotOf(src))
	var snap Snapshot
	if err := json.Unmarshal(b, &snap); err != nil {
		t.Fatal(err)
	}
	dst := balance.New(balance.Settings{}, []string{"a", "b"}, nil)
	snap.Restore(dst)
	if g, _ := dst.Get("a"); g.Height != 7 || dst.Best() != 7 || dst.Head() != src.Head() {
		t.Errorf("restored %+v, best %d head %d", g, dst.Best(), dst.Head())
	}
	// A zero row is small: its zero times are left out.
	b, _ = json.Marshal(SnapshotOf(balance.New(balance.Settings{}, []string{"a"}, nil)).Rows)
	if string(b) != `[{"name":"a","height":0}]` {
		t.Errorf("a zero row ships as %s", b)
	}
}
