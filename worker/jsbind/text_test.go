package jsbind

import (
	"encoding/json"
	"testing"
)

func TestStringsRoundTrip(t *testing.T) {
	for _, in := range [][]string{
		{}, {""}, {"a", "b"}, {"quote\"back\\slash", "nl\n\ttab\x01", "é日本🎉", "\u2028"},
	} {
		o := newObject()
		o.strs("x", in)
		var got struct{ X []string }
		if err := json.Unmarshal([]byte(o.String()), &got); err != nil {
			t.Fatalf("%q: encoder wrote invalid JSON %s: %v", in, o.String(), err)
		}
		text, _ := json.Marshal(in)
		back, err := decodeStrings(string(text))
		if err != nil {
			t.Fatalf("%s: %v", text, err)
		}
		if len(back) != len(in) || len(got.X) != len(in) {
			t.Fatalf("%q: decoded %q, encoded %q", in, back, got.X)
		}
		for i := range in {
			if back[i] != in[i] || got.X[i] != in[i] {
				t.Errorf("%q: decoded %q, encoded %q", in[i], back[i], got.X[i])
			}
		}
	}
	if s, err := decodeStrings(`["\ud83c\udf89", "\u00e9"]`); err != nil || s[0] != "🎉" || s[1] != "é" {
		t.Errorf("escapes: %q %v", s, err)
	}
	for _, bad := range []string{``, `[`, `["a"`, `["a",]`, `[1]`, `{"a":1}`, `["\x"]`} {
		if _, err := decodeStrings(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
