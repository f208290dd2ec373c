package durable

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/evmlb/evmlb/internal/adminapi"
	"github.com/evmlb/evmlb/internal/balance"
	"github.com/evmlb/evmlb/internal/retry"
)

// oldStoredRow is a row as the chain object stored it before the stored row was a type of its own (the JSON of
// balance.Upstream), with every field set; "caps" came with issue 20 (a row stored before it loads with none).
const oldStoredRow = `{"name":"a","height":100,"height_moved_at":"2026-01-02T03:04:05Z","chain_id":1,"syncing":true,` +
	`"reported_at":"2026-01-02T03:04:06Z","last_error":"timeout","last_error_at":"2026-01-02T03:04:07Z",` +
	`"cooldown_until":"2026-01-02T03:04:08Z","breaker":{"consecutive_failures":3,"open_until":"2026-01-02T03:04:09Z"},` +
	`"latency_ewma_ms":12.5,"error_rate_ewma":0.25,"requests":42,"height_at":"2026-01-02T03:04:10Z","unserved":99,` +
	`"proven":98,"lead_since":"2026-01-02T03:04:11Z","last_http_status":404,"finalized":97,` +
	`"caps":{"archive":true,"lacks_methods":{"trace_block":"2026-01-02T03:04:12Z"},"lacks_state_below":90,` +
	`"lacks_state_until":"2026-01-02T03:04:13Z","has_state_from":95,"has_state_until":"2026-01-02T03:04:14Z"}}`

func at(s int) time.Time { return time.Date(2026, 1, 2, 3, 4, s, 0, time.UTC) }

// everyField is the table row oldStoredRow holds.
var everyField = balance.Upstream{
	Name: "a", Height: 100, HeightMovedAt: at(5), ChainID: 1, Syncing: true, ReportedAt: at(6), LastError: retry.Timeout,
	LastErrorAt: at(7), CooldownUntil: at(8), Breaker: balance.Breaker{Failures: 3, OpenUntil: at(9)}, LatencyMS: 12.5,
	ErrorRate: 0.25, Requests: 42, HeightAt: at(10), Unserved: 99, Proven: 98, LeadSince: at(11),
	LastStatus: 404, Finalized: 97,
	Caps: balance.Caps{Archive: true, Methods: map[string]time.Time{"trace_block": at(12)}, StateBelow: 90,
		StateBelowUntil: at(13), StateFrom: 95, StateFromUntil: at(14)},
}

// A row already in storage loads with every field, and a row stored now is the same text (a build before this
// one reads it too).
func TestStoredRowOfOldLoads(t *testing.T) {
	if v := reflect.ValueOf(everyField); true {
		for i := range v.NumField() {
			if v.Field(i).IsZero() {
				t.Fatalf("everyField leaves %s unset: set it, and in oldStoredRow", v.Type().Field(i).Name)
			}
		}
	}
	var r storedRow
	if err := json.Unmarshal([]byte(oldStoredRow), &r); err != nil {
		t.Fatal(err)
	}
	if got := r.row(); !reflect.DeepEqual(got, everyField) {
		t.Errorf("loaded %+v\nwant   %+v", got, everyField)
	}
	b, _ := json.Marshal(storedRowOf(everyField))
	if string(b) != oldStoredRow {
		t.Errorf("stored as\n%s\nwas\n%s", b, oldStoredRow)
	}
}

// The stored row and admin's row carry every field of the table's row: a field added to balance.Upstream must be
// stored (or an evicted object forgets it) and shown, through storedRowOf, row and rowView.
func TestRowFormsCarryEveryField(t *testing.T) {
	if got := storedRowOf(everyField).row(); !reflect.DeepEqual(got, everyField) {
		t.Errorf("stored and loaded: %+v", got)
	}
	for i := range reflect.TypeOf(everyField).NumField() {
		if n := reflect.TypeOf(everyField).Field(i).Name; !reflect.ValueOf(adminapi.UpstreamRow{}).FieldByName(n).IsValid() {
			t.Errorf("adminapi.UpstreamRow lacks %s", n)
		}
	}
	v := reflect.ValueOf(rowView(everyField, balance.Healthy, "", at(0)))
	for i := range v.NumField() {
		if f := v.Type().Field(i); f.Name != "Reason" && v.Field(i).IsZero() {
			t.Errorf("rowView leaves adminapi.UpstreamRow.%s unset", f.Name)
		}
	}
	ht := reflect.TypeOf(health{})
	vt := reflect.TypeOf(adminapi.UpstreamHealth{})
	if ht.NumField() != vt.NumField() {
		t.Errorf("health has %d fields, adminapi.UpstreamHealth %d: show what is stored", ht.NumField(), vt.NumField())
	}
	for i := range ht.NumField() {
		f, ok := vt.FieldByName(ht.Field(i).Name)
		if !ok || f.Tag != ht.Field(i).Tag {
			t.Errorf("health.%s is not shown as it is stored", ht.Field(i).Name)
		}
	}
}
