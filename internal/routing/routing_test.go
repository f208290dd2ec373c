package routing

import (
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func TestOrder(t *testing.T) {
	for _, tc := range []struct {
		name    string
		reports []Report
		fails   []string
		want    string
	}{
		{"nothing known: config order", nil, nil, "a,b,c"},
		{"highest healthy first", []Report{{Name: "a", OK: true, Height: 10}, {Name: "b", OK: true, Height: 12}}, nil, "b,a,c"},
		{"ties keep config order", []Report{{Name: "c", OK: true, Height: 5}, {Name: "b", OK: true, Height: 5}}, nil, "b,c,a"},
		{"unhealthy last", []Report{{Name: "a", OK: false, ErrorClass: "timeout"}}, nil, "b,c,a"},
		{"failed request demotes", []Report{{Name: "a", OK: true, Height: 10}, {Name: "b", OK: true, Height: 9}}, []string{"a"}, "b,c,a"},
		{"unknown before unhealthy, after healthy", []Report{{Name: "c", OK: true, Height: 1}}, []string{"a"}, "c,b,a"},
		{"unknown name ignored", []Report{{Name: "z", OK: true, Height: 99}}, nil, "a,b,c"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tb := NewTable([]string{"a", "b", "c"}, nil)
			for _, r := range tc.reports {
				r.CheckedAt = t0
				tb.Report(r)
			}
			for _, f := range tc.fails {
				tb.Fail(f, "http_5xx", t0.Add(time.Second))
			}
			if got := strings.Join(tb.Order(), ","); got != tc.want {
				t.Errorf("order %s, want %s", got, tc.want)
			}
		})
	}
}

func TestReportAfterFailure(t *testing.T) {
	tb := NewTable([]string{"a"}, nil)
	tb.Report(Report{Name: "a", OK: true, Height: 3, ChainID: "0x1", CheckedAt: t0})
	tb.Fail("a", "timeout", t0.Add(2*time.Second))
	if s, _ := tb.Report(Report{Name: "a", OK: true, Height: 4, CheckedAt: t0.Add(time.Second)}); s.Health != Unhealthy || s.Height != 3 {
		t.Errorf("an older report overrode a failure: %+v", s)
	}
	s, _ := tb.Report(Report{Name: "a", OK: true, Height: 5, CheckedAt: t0.Add(3 * time.Second)})
	if s.Health != Healthy || s.Height != 5 || s.ChainID != "0x1" || s.LastErrorClass != "timeout" {
		t.Errorf("recovery: %+v", s)
	}
	if tb.Best() != 5 {
		t.Errorf("best %d", tb.Best())
	}
	if _, ok := tb.Fail("zz", "timeout", t0); ok {
		t.Error("failed an unknown name")
	}
}

func TestNewTableFromSaved(t *testing.T) {
	saved := map[string]State{"b": {Name: "b", Health: Healthy, Height: 7}, "gone": {Health: Healthy, Height: 99}}
	tb := NewTable([]string{"a", "b"}, saved)
	rows := tb.Rows()
	if len(rows) != 2 || rows[0].Health != Unknown || rows[1].Height != 7 || tb.Best() != 7 {
		t.Errorf("rows %+v", rows)
	}
	if got := strings.Join(tb.Order(), ","); got != "b,a" {
		t.Errorf("order %s", got)
	}
}
