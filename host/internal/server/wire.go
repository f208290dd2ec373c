package server

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/evmlb/evmlb/internal/contract"
)

// readWire reads a message's JSON text into w by hand: encoding/json's reflection cost about 20 µs per message
// on the loop, on every request's path. It is as strict as encoding/json with DisallowUnknownFields: one object,
// known members of the right type (null leaves a member absent), nothing after it. Type errors and unknown
// members do not stop the reading, so that the id of a message that is wrong in another member is still read
// (the operation can then be answered); the first error is returned.
func readWire(text string, w *wire) error {
	r := &wireReader{s: text}
	r.object(w)
	if r.syntax == nil {
		if r.ws(); r.i < len(r.s) {
			r.fail("invalid character %q after top-level value", r.s[r.i])
		}
	}
	if r.syntax != nil {
		w.ID = nil // the text is not JSON: nothing in it counts
		return r.syntax
	}
	return r.first
}

type wireReader struct {
	s      string
	i      int
	last   int   // where the last value() began
	syntax error // the text is not JSON: reading stops
	first  error // the first type error or unknown member
}

func (r *wireReader) fail(format string, args ...any) {
	if r.syntax == nil {
		r.syntax = fmt.Errorf("json: "+format, args...)
	}
}

func (r *wireReader) typeErr(got, field, want string) {
	if r.first == nil {
		r.first = fmt.Errorf("json: cannot unmarshal %s into Go struct field wire.%s of type %s", got, field, want)
	}
}

func (r *wireReader) ws() {
	for r.i < len(r.s) && (r.s[r.i] == ' ' || r.s[r.i] == '\n' || r.s[r.i] == '\r' || r.s[r.i] == '\t') {
		r.i++
	}
}

// peek returns the next non-space byte, 0 at the end.
func (r *wireReader) peek() byte {
	r.ws()
	if r.i >= len(r.s) {
		return 0
	}
	return r.s[r.i]
}

func (r *wireReader) expect(c byte) bool {
	if r.peek() != c {
		if r.i >= len(r.s) {
			r.fail("unexpected end of JSON input")
		} else {
			r.fail("invalid character %q, want %q", r.s[r.i], c)
		}
		return false
	}
	r.i++
	return true
}

func (r *wireReader) str() (string, bool) {
	r.ws()
	v, n, err := contract.ReadString(r.s, r.i)
	if err != nil {
		r.fail("invalid string at offset %d", r.i)
		return "", false
	}
	for j := r.i; j < n; j++ {
		if r.s[j] < 0x20 {
			r.fail("invalid character %q in string literal", r.s[j])
			return "", false
		}
	}
	r.i = n
	if !utf8.ValidString(v) { // as encoding/json: each invalid byte reads as U+FFFD
		b := make([]byte, 0, len(v)+8)
		for _, c := range v {
			b = utf8.AppendRune(b, c)
		}
		v = string(b)
	}
	return v, true
}

func (r *wireReader) object(w *wire) {
	if r.peek() == 'n' && strings.HasPrefix(r.s[r.i:], "null") { // as encoding/json: null leaves w as it is
		r.i += len("null")
		return
	}
	if !r.expect('{') {
		return
	}
	if r.peek() == '}' {
		r.i++
		return
	}
	for r.syntax == nil {
		key, ok := r.str()
		if !ok || !r.expect(':') {
			return
		}
		r.member(w, key)
		switch r.peek() {
		case ',':
			r.i++
		case '}':
			r.i++
			return
		default:
			r.expect('}')
			return
		}
	}
}

// wireKeys are wire's members, as encoding/json matches them: exactly, else case-insensitively.
var wireKeys = []string{"op", "id", "url", "method", "headers", "timeout", "limit", "namespace", "name", "path",
	"call", "key", "entries", "keys", "prefix", "time", "ttl", "ms", "target", "status", "error", "done",
	"tags", "all", "tag", "attachment", "code", "reason", "accept"}

func wireKey(key string) string {
	for _, k := range wireKeys {
		if k == key {
			return k
		}
	}
	for _, k := range wireKeys {
		if strings.EqualFold(k, key) {
			return k
		}
	}
	return key
}

// member reads the value of the member key into w.
func (r *wireReader) member(w *wire, key string) {
	key = wireKey(key)
	var s **string
	var f **float64
	var a **[]string
	switch key {
	case "op":
		if v, ok := r.stringValue(key); ok && v != nil {
			w.Op = *v
		}
		return
	case "url":
		s = &w.URL
	case "method":
		s = &w.Method
	case "namespace":
		s = &w.Namespace
	case "name":
		s = &w.Name
	case "path":
		s = &w.Path
	case "call":
		s = &w.Call
	case "key":
		s = &w.Key
	case "prefix":
		s = &w.Prefix
	case "error":
		s = &w.Error
	case "id":
		f = &w.ID
	case "timeout":
		f = &w.Timeout
	case "limit":
		f = &w.Limit
	case "time":
		f = &w.Time
	case "ttl":
		f = &w.TTL
	case "ms":
		f = &w.MS
	case "target":
		f = &w.Target
	case "status":
		f = &w.Status
	case "headers":
		a = &w.Headers
	case "entries":
		a = &w.Entries
	case "keys":
		a = &w.Keys
	case "tags":
		a = &w.Tags
	case "accept":
		a = &w.Accept
	case "tag":
		s = &w.Tag
	case "attachment":
		s = &w.Attachment
	case "reason":
		s = &w.Reason
	case "code":
		f = &w.Code
	case "done", "all":
		p := &w.Done
		if key == "all" {
			p = &w.All
		}
		switch v := r.value(); v {
		case "true", "false":
			b := v == "true"
			*p = &b
		case "null", "":
		default:
			r.typeErr(v, key, "bool")
		}
		return
	default:
		r.value()
		if r.first == nil {
			r.first = fmt.Errorf("json: unknown field %q", key)
		}
		return
	}
	switch {
	case s != nil:
		if v, ok := r.stringValue(key); ok {
			*s = v
		}
	case f != nil:
		switch v := r.value(); v {
		case "number":
			n, err := strconv.ParseFloat(r.s[r.last:r.i], 64)
			if err != nil {
				r.typeErr("number "+r.s[r.last:r.i], key, "float64")
				return
			}
			*f = &n
		case "null", "":
		default:
			r.typeErr(v, key, "float64")
		}
	case a != nil:
		if r.peek() != '[' {
			if v := r.value(); v != "null" && v != "" {
				r.typeErr(v, key, "[]string")
			}
			return
		}
		r.i++
		list := []string{}
		if r.peek() == ']' {
			r.i++
			*a = &list
			return
		}
		typeOK := true
		for r.syntax == nil {
			if r.peek() == '"' {
				v, _ := r.str()
				list = append(list, v)
			} else if v := r.value(); v != "" {
				r.typeErr(v, key, "string")
				typeOK = false
			}
			switch r.peek() {
			case ',':
				r.i++
			case ']':
				r.i++
				if typeOK {
					*a = &list
				}
				return
			default:
				r.expect(']')
				return
			}
		}
	}
}

// stringValue reads a string member; null gives nil.
func (r *wireReader) stringValue(key string) (*string, bool) {
	if r.peek() == '"' {
		v, ok := r.str()
		return &v, ok
	}
	if v := r.value(); v != "null" && v != "" {
		r.typeErr(v, key, "string")
	}
	return nil, false
}

// value skips any JSON value and names its kind as encoding/json's errors do ("string", "number", "object",
// "array", "true", "false", "null"; "bool" members check true/false), "" on a syntax error. r.last is where it
// began.
func (r *wireReader) value() string {
	r.ws()
	r.last = r.i
	if r.i >= len(r.s) {
		r.fail("unexpected end of JSON input")
		return ""
	}
	switch c := r.s[r.i]; {
	case c == '"':
		if _, ok := r.str(); ok {
			return "string"
		}
		return ""
	case c == '{':
		r.i++
		if r.peek() == '}' {
			r.i++
			return "object"
		}
		for r.syntax == nil {
			if _, ok := r.str(); !ok || !r.expect(':') {
				return ""
			}
			r.value()
			switch r.peek() {
			case ',':
				r.i++
			case '}':
				r.i++
				return "object"
			default:
				r.expect('}')
				return ""
			}
		}
		return ""
	case c == '[':
		r.i++
		if r.peek() == ']' {
			r.i++
			return "array"
		}
		for r.syntax == nil {
			r.value()
			switch r.peek() {
			case ',':
				r.i++
			case ']':
				r.i++
				return "array"
			default:
				r.expect(']')
				return ""
			}
		}
		return ""
	case c == '-' || c >= '0' && c <= '9':
		start := r.i
		r.number()
		if r.syntax != nil {
			return ""
		}
		r.last = start
		return "number"
	}
	for _, lit := range []string{"true", "false", "null"} {
		if len(r.s)-r.i >= len(lit) && r.s[r.i:r.i+len(lit)] == lit {
			r.i += len(lit)
			return lit
		}
	}
	r.fail("invalid character %q looking for beginning of value", r.s[r.i])
	return ""
}

// number reads a JSON number (RFC 8259 grammar).
func (r *wireReader) number() {
	digits := func() int {
		n := 0
		for r.i < len(r.s) && r.s[r.i] >= '0' && r.s[r.i] <= '9' {
			r.i++
			n++
		}
		return n
	}
	if r.s[r.i] == '-' {
		r.i++
	}
	switch {
	case r.i < len(r.s) && r.s[r.i] == '0':
		r.i++
	case digits() == 0:
		r.fail("invalid number")
		return
	}
	if r.i < len(r.s) && r.s[r.i] == '.' {
		r.i++
		if digits() == 0 {
			r.fail("invalid number")
			return
		}
	}
	if r.i < len(r.s) && (r.s[r.i] == 'e' || r.s[r.i] == 'E') {
		r.i++
		if r.i < len(r.s) && (r.s[r.i] == '+' || r.s[r.i] == '-') {
			r.i++
		}
		if digits() == 0 {
			r.fail("invalid number")
		}
	}
}
