package retry

import (
	"bytes"
	"encoding/json"

	"github.com/evmlb/evmlb/internal/strscan"
)

// An upstream's answer is classified in one pass that validates it as JSON (as json.Valid does: RFC 8259, UTF-8
// not checked) and notes, for the top-level object or each object of a top-level array, where its "jsonrpc",
// "result" and "error" members are. encoding/json's scanner calls a function per byte: in wasm it took about
// 40 ms per MiB, which an eth_getLogs answer of a few MiB turns into a CPU limit hit. This one keeps strings, the
// bulk of every answer, in a tight loop.

// maxAnswerDepth bounds nesting, as encoding/json does.
const maxAnswerDepth = 10000

// members are the spans (nil when absent) of the JSON-RPC members of one response object, matched by their
// exact unescaped bytes as nodes write them.
type members struct{ jsonrpc, result, err []byte }

type answerScan struct {
	b     []byte
	i     int
	elems []members // a top-level array: each element's members (zero for an element that is not an object)
}

// scanAnswer validates b as one JSON value. For a top-level object it returns its members; for a top-level array,
// isArray and each element's members.
func scanAnswer(b []byte) (top members, elems []members, isArray, ok bool) {
	s := answerScan{b: b}
	s.ws()
	if s.i >= len(b) {
		return members{}, nil, false, false
	}
	switch b[s.i] {
	case '{':
		ok = s.object(1, &top)
	case '[':
		isArray = true
		ok = s.array(1, true)
	default:
		ok = s.value(1)
	}
	if !ok {
		return members{}, nil, false, false
	}
	s.ws()
	return top, s.elems, isArray, s.i == len(b)
}

func (s *answerScan) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *answerScan) value(depth int) bool {
	if s.i >= len(s.b) {
		return false
	}
	switch c := s.b[s.i]; {
	case c == '"':
		return s.str()
	case c == '{':
		return s.object(depth+1, nil)
	case c == '[':
		return s.array(depth+1, false)
	case c == '-' || c >= '0' && c <= '9':
		return s.number()
	case c == 't':
		return s.lit("true")
	case c == 'f':
		return s.lit("false")
	case c == 'n':
		return s.lit("null")
	}
	return false
}

// object scans the object at s.i; with rec set, it records the JSON-RPC members.
func (s *answerScan) object(depth int, rec *members) bool {
	if depth > maxAnswerDepth {
		return false
	}
	s.i++ // {
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == '}' {
		s.i++
		return true
	}
	for {
		if s.i >= len(s.b) || s.b[s.i] != '"' {
			return false
		}
		k0 := s.i
		if !s.str() {
			return false
		}
		key := s.b[k0+1 : s.i-1]
		s.ws()
		if s.i >= len(s.b) || s.b[s.i] != ':' {
			return false
		}
		s.i++
		s.ws()
		v := s.i
		if !s.value(depth) {
			return false
		}
		if rec != nil {
			if bytes.IndexByte(key, '\\') >= 0 { // an escaped key, as a JSON reader sees it (rare)
				var k string
				if json.Unmarshal(s.b[k0:k0+len(key)+2], &k) == nil {
					key = []byte(k)
				}
			}
			switch string(key) { // no allocation: a comparison
			case "jsonrpc":
				rec.jsonrpc = s.b[v:s.i]
			case "result":
				rec.result = s.b[v:s.i]
			case "error":
				rec.err = s.b[v:s.i]
			}
		}
		s.ws()
		if s.i >= len(s.b) {
			return false
		}
		switch s.b[s.i] {
		case ',':
			s.i++
			s.ws()
		case '}':
			s.i++
			return true
		default:
			return false
		}
	}
}

// array scans the array at s.i; with top set, it records each element's members.
func (s *answerScan) array(depth int, top bool) bool {
	if depth > maxAnswerDepth {
		return false
	}
	s.i++ // [
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == ']' {
		s.i++
		return true
	}
	for {
		if top {
			var m members
			if s.i < len(s.b) && s.b[s.i] == '{' {
				if !s.object(depth+1, &m) {
					return false
				}
			} else if !s.value(depth) {
				return false
			}
			s.elems = append(s.elems, m)
		} else if !s.value(depth) {
			return false
		}
		s.ws()
		if s.i >= len(s.b) {
			return false
		}
		switch s.b[s.i] {
		case ',':
			s.i++
			s.ws()
		case ']':
			s.i++
			return true
		default:
			return false
		}
	}
}

// str scans the string at s.i (its opening quote) and leaves s.i after its closing quote.
func (s *answerScan) str() bool {
	b := s.b
	i := s.i + 1
	for {
		// Most bytes of an answer are inside strings: skip what stands for itself eight bytes at a time.
		i = strscan.Skip(b, i)
		if i >= len(b) || b[i] < 0x20 {
			return false
		}
		if b[i] == '"' {
			s.i = i + 1
			return true
		}
		// An escape.
		if i+1 >= len(b) {
			return false
		}
		switch b[i+1] {
		case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			i += 2
		case 'u':
			if i+6 > len(b) {
				return false
			}
			for _, h := range b[i+2 : i+6] {
				if !(h >= '0' && h <= '9' || h >= 'a' && h <= 'f' || h >= 'A' && h <= 'F') {
					return false
				}
			}
			i += 6
		default:
			return false
		}
	}
}

func (s *answerScan) number() bool {
	b, i := s.b, s.i
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
		return false
	}
	if i < len(b) && b[i] == '.' {
		i++
		d := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == d {
			return false
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
			return false
		}
	}
	s.i = i
	return true
}

func (s *answerScan) lit(word string) bool {
	if len(s.b)-s.i < len(word) || string(s.b[s.i:s.i+len(word)]) != word {
		return false
	}
	s.i += len(word)
	return true
}
