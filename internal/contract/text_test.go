package contract

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestStringsRoundTrip(t *testing.T) {
	for _, in := range [][]string{
		{}, {""}, {"a", "b"}, {"quote\"back\\slash", "nl\n\ttab\x01", "é日本🎉", "\u2028"},
	} {
		o := NewObject()
		o.Strs("x", in)
		var got struct{ X []string }
		if err := json.Unmarshal([]byte(o.String()), &got); err != nil {
			t.Fatalf("%q: encoder wrote invalid JSON %s: %v", in, o.String(), err)
		}
		var arr []string
		if err := json.Unmarshal([]byte(Strings(in...)), &arr); err != nil || strings.Join(arr, "|") != strings.Join(in, "|") {
			t.Errorf("%q: Strings wrote %s (%v)", in, Strings(in...), err)
		}
		text, _ := json.Marshal(in)
		back, err := DecodeStrings(string(text))
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
	if s, err := DecodeStrings(`["\ud83c\udf89", "\u00e9"]`); err != nil || s[0] != "🎉" || s[1] != "é" {
		t.Errorf("escapes: %q %v", s, err)
	}
	for _, bad := range []string{``, `[`, `["a"`, `["a",]`, `[1]`, `{"a":1}`, `["\x"]`} {
		if _, err := DecodeStrings(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestStringsInvalidUTF8(t *testing.T) {
	in := []string{"", `q"b\`, "ctl\x00\x1f\n", "ünï ✓ 𝄞", "<&>", "bad\xffutf8"}
	var out []string
	if err := json.Unmarshal([]byte(Strings(in...)), &out); err != nil {
		t.Fatal(err)
	}
	in[5] = "bad\ufffdutf8"
	if strings.Join(out, "|") != strings.Join(in, "|") {
		t.Fatalf("%q", out)
	}
	if Strings() != "[]" {
		t.Fatal(Strings())
	}
}
