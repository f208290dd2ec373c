package stats

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/evmlb/evmlb/internal/methods"
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

// Junk method names count under methods.Other and never take the place of real methods: 210 of them (more than the 200
// names the stats used to keep) before the real ones.
func TestJunkCannotEvictRealMethods(t *testing.T) {
	s := make(Stats)
	for i := range 210 {
		s.Record("junk_"+strconv.Itoa(i), time.Millisecond, false)
	}
	s.Record(strings.Repeat("x", 1000), time.Millisecond, true)
	s.Record("eth_call", 2*time.Millisecond, false)
	s.Record("eth_getLogs", 3*time.Millisecond, false)
	if len(s) != 3 || s[methods.Other].Count != 211 || s[methods.Other].Errors != 1 || s["eth_call"].Count != 1 || s["eth_getLogs"].Count != 1 {
		t.Errorf("%d keys; other %+v, eth_call %+v", len(s), s[methods.Other], s["eth_call"])
	}
}

// Stats stored before the list existed hold junk names (and the old "(other)" key): they are folded into methods.Other
// on load.
func TestParseFoldsUnknownNames(t *testing.T) {
	stored := map[string]*Counter{
		"eth_call": {Count: 5, Errors: 1, SumMicros: 500, MaxMicros: 300},
		"(other)":  {Count: 2, Errors: 0, SumMicros: 20, MaxMicros: 15},
		"junk_1":   {Count: 3, Errors: 3, SumMicros: 30, MaxMicros: 25},
		"other":    {Count: 1, Errors: 0, SumMicros: 1, MaxMicros: 1},
	}
	for i := range 210 {
		stored["m"+strconv.Itoa(i)] = &Counter{Count: 1, SumMicros: 10, MaxMicros: 10}
	}
	b, _ := json.Marshal(stored)
	s, err := Parse(string(b))
	if err != nil {
		t.Fatal(err)
	}
	if len(s) != 2 || *s["eth_call"] != *stored["eth_call"] {
		t.Fatalf("%d keys, eth_call %+v", len(s), s["eth_call"])
	}
	if got, want := *s[methods.Other], (Counter{Count: 216, Errors: 3, SumMicros: 2151, MaxMicros: 25}); got != want {
		t.Errorf("other %+v, want %+v", got, want)
	}
}

func TestParseRoundTrip(t *testing.T) {
	s := make(Stats)
	s.Record("eth_call", 1500*time.Microsecond, true)
	b, _ := json.Marshal(s)
	p, err := Parse(string(b))
	if err != nil || *p["eth_call"] != *s["eth_call"] {
		t.Fatalf("%v %+v", err, p)
	}
	if p, err := Parse(`{"eth_call":null}`); err != nil || len(p) != 0 {
		t.Errorf("null entry: %v %v", p, err)
	}
	if p, err := Parse(`nope`); err == nil || p == nil {
		t.Error("garbage accepted or nil stats")
	}
	if p, err := Parse(""); err != nil || p == nil {
		t.Error("empty text")
	}
}
