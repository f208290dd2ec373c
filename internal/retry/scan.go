package retry

import (
	"bytes"
	"encoding/json"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/evmlb/evmlb/internal/strscan"
)

// An upstream's answer is validated and classified in one pass: RFC 8259 JSON in UTF-8, strings checked as the
// request scanner (internal/jsonrpc) checks them (no invalid UTF-8, no control character, no escape of a lone
// UTF-16 surrogate), nesting at most MaxAnswerDepth deep. The pass notes, for the top-level object or each element
// of a top-level array, where its "jsonrpc", "id", "result" and "error" members are. encoding/json's scanner calls
// a function per byte: in wasm it took about 40 ms per MiB, which an eth_getLogs answer of a few MiB turns into a
// CPU limit hit. This one keeps strings, the bulk of every answer, in a tight loop.
//
// The scanner does not recurse: open arrays and objects are an explicit stack. Go's js/wasm port makes every Go
// call a wasm call, so in workerd a recursive descent is bounded by V8's native stack (about 1 MB), not by Go's:
// an answer nested about 9,000 deep overflowed it ("Maximum call stack size exceeded" thrown through the Go
// runtime), while wazero's deeper stack took it. Without recursion the bound is MaxAnswerDepth in both hosts.

// MaxAnswerDepth bounds the nesting of arrays and objects in an answer, as encoding/json bounds it: an answer
// nested deeper is not JSON the balancer passes on (NonJSON).
const MaxAnswerDepth = 10000

// members are the spans (nil when absent) of the JSON-RPC members of one response object, matched by their
// exact unescaped keys as nodes write them.
type members struct {
	jsonrpc, id, result, err []byte
	// obj: the value is an object (an element of a top-level array may be anything).
	obj bool
	// twice: one of the four members is given twice, or a key equals one only under case folding ("ID",
	// "Result"): which one a client's library reads is anyone's guess.
	twice bool
}

// note records the member named key (its text between the quotes, escapes undone when escaped) with value v.
func (m *members) note(key []byte, escaped bool, v []byte) {
	if escaped { // an escaped key, as a JSON reader sees it (rare)
		var k string
		if json.Unmarshal(key, &k) != nil {
			return
		}
		key = []byte(k)
	} else {
		key = key[1 : len(key)-1]
	}
	var slot *[]byte
	switch string(key) { // no allocation: a comparison
	case "jsonrpc":
		slot = &m.jsonrpc
	case "id":
		slot = &m.id
	case "result":
		slot = &m.result
	case "error":
		slot = &m.err
	default:
		if len(key) <= 24 && (bytes.EqualFold(key, []byte("jsonrpc")) || bytes.EqualFold(key, []byte("id")) ||
			bytes.EqualFold(key, []byte("result")) || bytes.EqualFold(key, []byte("error"))) {
			m.twice = true
		}
		return
	}
	if *slot != nil {
		m.twice = true
	}
	*slot = v
}

// scanAnswer validates b as one JSON value. For a top-level object it returns its members; for a top-level array,
// isArray and each element's members.
func scanAnswer(b []byte) (top members, elems []members, isArray, ok bool) {
	i := ws(b, 0)
	if i >= len(b) {
		return members{}, nil, false, false
	}
	isArray = b[i] == '['
	// rec is the depth of the objects whose members are recorded: the top-level object, or the elements of the
	// top-level array.
	rec := 1
	if isArray {
		rec = 2
	}
	var (
		stack   = make([]byte, 0, 16) // the open containers, '{' or '['
		cur     = &top                // the response object being read (at depth rec)
		elem    members               // the element of a top-level array being read
		key     []byte                // the last key read at depth rec, with its quotes
		escaped bool                  // key holds an escape
		vstart  int                   // where its value starts
	)
	if isArray {
		cur = &elem
	}
	for {
		// A value starts at i.
		i = ws(b, i)
		if i >= len(b) {
			return members{}, nil, false, false
		}
		switch c := b[i]; {
		case c == '{' || c == '[':
			if len(stack) >= MaxAnswerDepth {
				return members{}, nil, false, false
			}
			stack = append(stack, c)
			if c == '{' && len(stack) == rec {
				cur.obj = true
			}
			i = ws(b, i+1)
			if i < len(b) && b[i] == c+2 { // '}' or ']': empty
				stack = stack[:len(stack)-1]
				i++
				break
			}
			if c == '[' {
				continue // the first element
			}
			if i = objectKey(b, i, len(stack) == rec, &key, &escaped); i < 0 {
				return members{}, nil, false, false
			}
			if len(stack) == rec {
				vstart = ws(b, i)
			}
			continue
		case c == '"':
			if i = str(b, i); i < 0 {
				return members{}, nil, false, false
			}
		case c == '-' || c >= '0' && c <= '9':
			if i = number(b, i); i < 0 {
				return members{}, nil, false, false
			}
		case c == 't':
			i = lit(b, i, "true")
		case c == 'f':
			i = lit(b, i, "false")
		case c == 'n':
			i = lit(b, i, "null")
		default:
			return members{}, nil, false, false
		}
		if i < 0 {
			return members{}, nil, false, false
		}
		// A value ended at i: close what it closes, then go on with the next member or element, or stop.
		for {
			if len(stack) == rec && stack[rec-1] == '{' && key != nil { // a member of a response object
				cur.note(key, escaped, b[vstart:i])
				key = nil
			}
			if isArray && len(stack) == 1 { // an element of the top-level array
				elems = append(elems, elem)
				elem = members{}
			}
			if len(stack) == 0 {
				i = ws(b, i)
				return top, elems, isArray, i == len(b)
			}
			i = ws(b, i)
			if i >= len(b) {
				return members{}, nil, false, false
			}
			open := stack[len(stack)-1]
			if b[i] == open+2 { // its closing bracket
				stack = stack[:len(stack)-1]
				i++
				continue
			}
			if b[i] != ',' {
				return members{}, nil, false, false
			}
			i = ws(b, i+1)
			if open == '{' {
				if i = objectKey(b, i, len(stack) == rec, &key, &escaped); i < 0 {
					return members{}, nil, false, false
				}
				if len(stack) == rec {
					vstart = ws(b, i)
				}
			}
			break
		}
	}
}

// objectKey reads a key and its colon at i; with note, it sets key (quotes included) and escaped. It returns
// where the value may start, or -1.
func objectKey(b []byte, i int, note bool, key *[]byte, escaped *bool) int {
	if i >= len(b) || b[i] != '"' {
		return -1
	}
	k0 := i
	if i = str(b, i); i < 0 {
		return -1
	}
	if note {
		*key = b[k0:i]
		*escaped = bytes.IndexByte(*key, '\\') >= 0
	}
	i = ws(b, i)
	if i >= len(b) || b[i] != ':' {
		return -1
	}
	return i + 1
}

func ws(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// str scans the string at i (its opening quote) and returns the index after its closing quote, or -1: a control
// character, a byte that is not UTF-8, a bad escape or an escape of a lone UTF-16 surrogate.
func str(b []byte, i int) int {
	i++
	for {
		// Most bytes of an answer are inside strings: skip printable ASCII eight bytes at a time.
		i = strscan.SkipASCII(b, i)
		if i >= len(b) {
			return -1
		}
		switch c := b[i]; {
		case c == '"':
			return i + 1
		case c < 0x20:
			return -1
		case c >= 0x80:
			r, n := utf8.DecodeRune(b[i:])
			if r == utf8.RuneError && n == 1 {
				return -1
			}
			i += n
			continue
		}
		// An escape.
		if i+1 >= len(b) {
			return -1
		}
		switch b[i+1] {
		case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			i += 2
			continue
		case 'u':
		default:
			return -1
		}
		r, ok := hex4(b, i+2)
		if !ok {
			return -1
		}
		i += 6
		if !utf16.IsSurrogate(r) {
			continue
		}
		// A surrogate: only a high one followed by an escaped low one encodes a character.
		if r >= 0xdc00 || i+6 > len(b) || b[i] != '\\' || b[i+1] != 'u' {
			return -1
		}
		if r2, ok := hex4(b, i+2); !ok || r2 < 0xdc00 || r2 > 0xdfff {
			return -1
		}
		i += 6
	}
}

func hex4(b []byte, i int) (rune, bool) {
	if i+4 > len(b) {
		return 0, false
	}
	var r rune
	for _, c := range b[i : i+4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

func number(b []byte, i int) int {
	if b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	default:
		return -1
	}
	if i < len(b) && b[i] == '.' {
		i++
		d := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == d {
			return -1
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		d := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == d {
			return -1
		}
	}
	return i
}

func lit(b []byte, i int, word string) int {
	if len(b)-i < len(word) || string(b[i:i+len(word)]) != word {
		return -1
	}
	return i + len(word)
}
