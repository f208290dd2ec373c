package retry

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
)

// SameID reports whether the id an answer carries, got, is the call's id, want (both raw JSON, validated already).
// Ids are compared as JSON values, strictly but not by their bytes: a string equals a string with the same text
// once escapes are undone ("\u0031" is "1"), a number a number with the same value (1, 1.0, 10e-1 and 1E0 are one
// id; -0 is 0), null only null; a string never equals a number ("1" is not 1). A node may re-encode the id it was
// given (JavaScript nodes write 1.0 as 1), so the answer's spelling of the same value is passed on unchanged.
func SameID(want, got []byte) bool {
	if bytes.Equal(want, got) {
		return true
	}
	a, ok := idKey(want)
	if !ok {
		return false
	}
	b, ok := idKey(got)
	return ok && a == b
}

// IDKey is a JSON id (string, number or null) as a string that is equal for ids SameID says are the same; ok is
// false for anything else.
func IDKey(raw []byte) (string, bool) { return idKey(raw) }

func idKey(raw []byte) (string, bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return "", false
	}
	switch c := raw[0]; {
	case c == 'n':
		return "null", string(raw) == "null"
	case c == '"':
		if bytes.IndexByte(raw, '\\') < 0 {
			return "s" + string(raw[1:len(raw)-1]), len(raw) >= 2
		}
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return "", false
		}
		return "s" + s, true
	case c == '-' || c >= '0' && c <= '9':
		return numberKey(raw)
	}
	return "", false
}

// numberKey is a JSON number in one spelling per value: "n", the sign, the digits without leading or trailing
// zeros, "e" and the exponent; "n0" for zero. A number whose exponent is written with more than nine digits is kept
// as written.
func numberKey(raw []byte) (string, bool) {
	s := string(raw)
	neg := strings.HasPrefix(s, "-")
	if neg {
		s = s[1:]
	}
	mant, exp := s, 0
	if i := strings.IndexAny(s, "eE"); i >= 0 {
		e := strings.TrimPrefix(s[i+1:], "+")
		if len(strings.TrimPrefix(e, "-")) > 9 {
			return "r" + string(raw), true
		}
		n, err := strconv.Atoi(e)
		if err != nil {
			return "", false
		}
		mant, exp = s[:i], n
	}
	digits := mant
	if i := strings.IndexByte(mant, '.'); i >= 0 {
		digits = mant[:i] + mant[i+1:]
		exp -= len(mant) - i - 1
	}
	digits = strings.TrimLeft(digits, "0")
	for strings.HasSuffix(digits, "0") {
		digits = digits[:len(digits)-1]
		exp++
	}
	if digits == "" {
		return "n0", true
	}
	for _, c := range digits {
		if c < '0' || c > '9' {
			return "", false
		}
	}
	sign := ""
	if neg {
		sign = "-"
	}
	return "n" + sign + digits + "e" + strconv.Itoa(exp), true
}
