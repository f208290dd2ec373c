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
		if err := json.Unmarshal([]byte(string(o.Bytes())), &got); err != nil {
			t.Fatalf("%q: encoder wrote invalid JSON %s: %v", in, string(o.Bytes()), err)
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

// FuzzStrings holds the writer and reader to encoding/json: what Strings writes is valid JSON that encoding/json
// reads back as the same strings (invalid UTF-8 as U+FFFD, as encoding/json itself does), and DecodeStrings
// reads what encoding/json writes.
func FuzzStrings(f *testing.F) {
	for _, s := range []string{"", "a", `q"b\`, "ctl\x00\x1f\n", "ünï ✓ 𝄞", "bad\xffutf8", "\u2028<&>"} {
		f.Add(s, "x")
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		text := Strings(a, b)
		var out []string
		if err := json.Unmarshal([]byte(text), &out); err != nil {
			t.Fatalf("%q %q: wrote invalid JSON %s: %v", a, b, text, err)
		}
		want := []string{perByte(a), perByte(b)}
		if len(out) != 2 || out[0] != want[0] || out[1] != want[1] {
			t.Fatalf("%q %q: read back %q", a, b, out)
		}
		std, _ := json.Marshal([]string{a, b})
		back, err := DecodeStrings(string(std))
		if err != nil || len(back) != 2 || back[0] != out[0] || back[1] != out[1] {
			t.Fatalf("%s: DecodeStrings %q %v, want %q", std, back, err, out)
		}
	})
}

// perByte replaces each byte of invalid UTF-8 with U+FFFD, as encoding/json does.
func perByte(s string) string {
	var b strings.Builder
	for _, r := range s {
		b.WriteRune(r) // ranging yields U+FFFD for each invalid byte
	}
	return b.String()
}
