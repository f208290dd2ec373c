package contract

import (
	"errors"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// The call protocol's metadata crosses as JSON text (CONTRACT.md §3–4): workerd's shim parses and writes it with
// JSON.parse and JSON.stringify, and Go (app.wasm, and the wazero host, which plays the shim's part) reads and
// writes it here by hand. encoding/json's reflection costs about 100 µs per call in wasm (8× native), measured;
// these take a few.

// AppendString appends s as a JSON string (invalid UTF-8 becomes U+FFFD).
func AppendString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); {
		start := i // a run that needs no escaping goes in one append: byte by byte costs a call each in wasm
		for i < len(s) && s[i] >= 0x20 && s[i] < utf8.RuneSelf && s[i] != '"' && s[i] != '\\' {
			i++
		}
		b = append(b, s[start:i]...)
		if i == len(s) {
			break
		}
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
			i++
		case c < 0x20:
			b = append(b, `\u00`...)
			b = append(b, "0123456789abcdef"[c>>4], "0123456789abcdef"[c&0xf])
			i++
		case c < utf8.RuneSelf:
			b = append(b, c)
			i++
		default:
			r, n := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && n == 1 {
				b = append(b, `\ufffd`...)
			} else {
				b = append(b, s[i:i+n]...)
			}
			i += n
		}
	}
	return append(b, '"')
}

// Object builds a JSON object.
type Object struct{ b []byte }

// NewObject starts an empty object.
func NewObject() *Object { return &Object{b: append(make([]byte, 0, 256), '{')} }

func (o *Object) key(k string) {
	if len(o.b) > 1 {
		o.b = append(o.b, ',')
	}
	o.b = AppendString(o.b, k)
	o.b = append(o.b, ':')
}

// Str adds a string member.
func (o *Object) Str(k, v string) { o.key(k); o.b = AppendString(o.b, v) }

// Num adds a number member.
func (o *Object) Num(k string, v float64) {
	o.key(k)
	if v == float64(int64(v)) && v > -1<<53 && v < 1<<53 { // ids, lengths, ms: integers, without float formatting
		o.b = strconv.AppendInt(o.b, int64(v), 10)
		return
	}
	o.b = strconv.AppendFloat(o.b, v, 'f', -1, 64)
}

// Strs adds an array of strings.
func (o *Object) Strs(k string, vs []string) {
	o.key(k)
	o.b = append(o.b, '[')
	for i, v := range vs {
		if i > 0 {
			o.b = append(o.b, ',')
		}
		o.b = AppendString(o.b, v)
	}
	o.b = append(o.b, ']')
}

// Pairs adds h as a flat array of strings [name1, value1, …] (an http.Header's shape), without building it.
func (o *Object) Pairs(k string, h map[string][]string) {
	o.key(k)
	o.b = append(o.b, '[')
	first := true
	for name, vs := range h {
		for _, v := range vs {
			if !first {
				o.b = append(o.b, ',')
			}
			first = false
			o.b = AppendString(o.b, name)
			o.b = append(o.b, ',')
			o.b = AppendString(o.b, v)
		}
	}
	o.b = append(o.b, ']')
}

// True adds the member k: true.
func (o *Object) True(k string) { o.key(k); o.b = append(o.b, "true"...) }

// Bytes closes the object and returns its text, without a copy; the Object must not be used afterwards.
func (o *Object) Bytes() []byte { return append(o.b, '}') }

// Strings writes ss as a JSON array of strings.
func Strings(ss ...string) string {
	n := 2
	for _, s := range ss {
		n += len(s) + 3
	}
	b := make([]byte, 0, n)
	b = append(b, '[')
	for i, s := range ss {
		if i > 0 {
			b = append(b, ',')
		}
		b = AppendString(b, s)
	}
	return string(append(b, ']'))
}

var errStrings = errors.New("not a JSON array of strings")

// DecodeStrings reads a JSON array of strings, as JSON.stringify writes it.
func DecodeStrings(s string) ([]string, error) {
	i := skip(s, 0)
	if i >= len(s) || s[i] != '[' {
		return nil, errStrings
	}
	i = skip(s, i+1)
	var out []string
	if i < len(s) && s[i] == ']' {
		return out, nil
	}
	out = make([]string, 0, 16) // a call's fields and a few headers: one allocation, not five
	for {
		v, n, err := readString(s, i)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
		i = skip(s, n)
		if i >= len(s) {
			return nil, errStrings
		}
		switch s[i] {
		case ',':
			i = skip(s, i+1)
		case ']':
			return out, nil
		default:
			return nil, errStrings
		}
	}
}

func skip(s string, i int) int {
	for i < len(s) && (s[i] == ' ' || s[i] == '\n' || s[i] == '\r' || s[i] == '\t') {
		i++
	}
	return i
}

// ReadString reads the JSON string at s[i] (i at its opening quote) and returns it and the index after it.
func ReadString(s string, i int) (string, int, error) { return readString(s, i) }

// readString reads the JSON string at s[i] and returns it and the index after it.
func readString(s string, i int) (string, int, error) {
	if i >= len(s) || s[i] != '"' {
		return "", 0, errStrings
	}
	i++
	start := i
	for i < len(s) && s[i] != '"' && s[i] != '\\' {
		i++
	}
	if i < len(s) && s[i] == '"' {
		return s[start:i], i + 1, nil // no escapes: a substring, no copy
	}
	b := []byte(s[start:i])
	for i < len(s) {
		c := s[i]
		switch {
		case c == '"':
			return string(b), i + 1, nil
		case c != '\\':
			b = append(b, c)
			i++
			continue
		}
		if i+1 >= len(s) {
			return "", 0, errStrings
		}
		switch e := s[i+1]; e {
		case '"', '\\', '/':
			b = append(b, e)
		case 'b':
			b = append(b, '\b')
		case 'f':
			b = append(b, '\f')
		case 'n':
			b = append(b, '\n')
		case 'r':
			b = append(b, '\r')
		case 't':
			b = append(b, '\t')
		case 'u':
			r, ok := hex4(s, i+2)
			if !ok {
				return "", 0, errStrings
			}
			i += 4
			if utf16.IsSurrogate(r) {
				r2, ok := rune(0), false
				if i+7 < len(s) && s[i+2] == '\\' && s[i+3] == 'u' {
					r2, ok = hex4(s, i+4)
				}
				if d := utf16.DecodeRune(r, r2); ok && d != utf8.RuneError {
					r = d
					i += 6
				} else {
					r = utf8.RuneError
				}
			}
			b = utf8.AppendRune(b, r)
		default:
			return "", 0, errStrings
		}
		i += 2
	}
	return "", 0, errStrings
}

func hex4(s string, i int) (rune, bool) {
	if i+4 > len(s) {
		return 0, false
	}
	n, err := strconv.ParseUint(s[i:i+4], 16, 32)
	return rune(n), err == nil
}
