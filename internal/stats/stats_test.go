package stats

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestRecordAndViews(t *testing.T) {
	s := make(Stats)
	s.Record("eth_call", 10*time.Millisecond, false)
	s.Record("eth_call", 30*time.Millisecond, true)
	s.Record("eth_chainId", -time.Second, false) // a clock step back counts as 0
	v := s.Views()
	if got := v["eth_call"]; got != (View{Count: 2, Errors: 1, MeanMs: 20, MaxMs: 30}) {
		t.Errorf("eth_call %+v", got)
	}
	if got := v["eth_chainId"]; got != (View{Count: 1}) {
		t.Errorf("eth_chainId %+v", got)
	}
}

func TestLimits(t *testing.T) {
	s := make(Stats)
	for i := range MaxMethods + 50 {
		s.Record("m"+strconv.Itoa(i), time.Millisecond, false)
	}
	s.Record(strings.Repeat("x", MaxMethodLen+1), time.Millisecond, false)
	s.Record("m0", time.Millisecond, false)
	if len(s) != MaxMethods+1 {
		t.Errorf("%d keys", len(s))
	}
	if s[Other].Count != 51 || s["m0"].Count != 2 {
		t.Errorf("other %d, m0 %d", s[Other].Count, s["m0"].Count)
	}
}

func TestParseRoundTrip(t *testing.T) {
	s := make(Stats)
	s.Record("a", 1500*time.Microsecond, true)
	b, _ := json.Marshal(s)
	p, err := Parse(string(b))
	if err != nil || *p["a"] != *s["a"] {
		t.Fatalf("%v %+v", err, p)
	}
	if p, err := Parse(`{"a":null}`); err != nil || len(p) != 0 {
		t.Errorf("null entry: %v %v", p, err)
	}
	if p, err := Parse(`nope`); err == nil || p == nil {
		t.Error("garbage accepted or nil stats")
	}
	if p, err := Parse(""); err != nil || p == nil {
		t.Error("empty text")
	}
}
