package jsonrpc

import (
	"bytes"
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/evmlb/evmlb/internal/strscan"
)

// MaxDepth is how deeply arrays and objects may nest in a request: far beyond what any EVM call needs, and a
// bound on the scanner's recursion.
const MaxDepth = 256

// The scanner reads a body once, strictly: RFC 8259 JSON in UTF-8, where no object holds two keys that are equal
// after unescaping and Unicode case folding and no escape encodes a lone UTF-16 surrogate. Whatever the balancer
// decides on is then what every node reads, whether it matches keys exactly (serde, most non-Go nodes) or
// case-insensitively and keeps the last duplicate (Go's encoding/json, geth): see RATIONALE.md.
//
// A reason the bytes are not such JSON (fail, answered with ErrParse) stops the scan; a reason the JSON is not a
// valid request (bad, ErrInvalidRequest) is noted, the first one only, and the scan goes on, so that any ErrParse
// wins. Nothing is copied: values are located by their offsets in the body.
type scanner struct {
	b    []byte
	i    int
	fail *Error
	bad  string
	elem int // the batch element being read, or -1: it prefixes bad
	// keys holds the keys of the objects open now, innermost last; an object's keys are checked when it closes.
	keys []keyRec
}

// keyRec is one key of an open object: its text between the quotes, as written, and a hash of its folded form.
type keyRec struct {
	start, end int
	hash       uint64
	escaped    bool
}

func (s *scanner) syntax() bool {
	if s.fail == nil {
		if s.i >= len(s.b) {
			s.fail = ErrParse.With("unexpected end of JSON")
		} else {
			s.fail = ErrParse.With(fmt.Sprintf("invalid character %q at byte %d", s.b[s.i], s.i))
		}
	}
	return false
}

func (s *scanner) failf(format string, args ...any) bool {
	if s.fail == nil {
		s.fail = ErrParse.With(fmt.Sprintf(format, args...))
	}
	return false
}

// invalid notes why the JSON is not a valid request, unless a reason is noted already.
func (s *scanner) invalid(msg string) {
	if s.bad != "" {
		return
	}
	if s.elem >= 0 {
		msg = fmt.Sprintf("batch element %d: %s", s.elem, msg)
	}
	s.bad = msg
}

// ws skips JSON whitespace (only these four bytes: no other Unicode space, no byte order mark).
func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// end reports whether nothing but whitespace follows.
func (s *scanner) end() bool {
	s.ws()
	return s.i == len(s.b) || s.syntax()
}

// expect consumes c after whitespace.
func (s *scanner) expect(c byte) bool {
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return s.syntax()
}

// value reads one value inside a container at depth; s.i is on its first byte or on whitespace before it.
func (s *scanner) value(depth int) bool {
	s.ws()
	if s.i >= len(s.b) {
		return s.syntax()
	}
	switch c := s.b[s.i]; c {
	case '{':
		return s.object(depth+1, nil)
	case '[':
		return s.array(depth + 1)
	case '"':
		return s.str()
	case 't':
		return s.lit("true")
	case 'f':
		return s.lit("false")
	case 'n':
		return s.lit("null")
	default:
		if c == '-' || '0' <= c && c <= '9' {
			return s.number()
		}
		return s.syntax()
	}
}

func (s *scanner) deep() bool {
	return s.failf("nesting deeper than %d arrays and objects at byte %d", MaxDepth, s.i)
}

func (s *scanner) array(depth int) bool {
	if depth > MaxDepth {
		return s.deep()
	}
	s.i++ // [
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == ']' {
		s.i++
		return true
	}
	for {
		if !s.value(depth) {
			return false
		}
		s.ws()
		if s.i >= len(s.b) {
			return s.syntax()
		}
		switch s.b[s.i] {
		case ',':
			s.i++
		case ']':
			s.i++
			return true
		default:
			return s.syntax()
		}
	}
}

// member indexes the JSON-RPC members of a call.
const (
	mJSONRPC = iota
	mID
	mMethod
	mParams
	nMembers
)

var (
	memberNames = [nMembers]string{"jsonrpc", "id", "method", "params"}
	memberHash  [nMembers]uint64
)

func init() {
	for m, name := range memberNames {
		h := uint64(fnvOffset)
		for _, r := range name {
			h = fnvRune(h, foldRune(r))
		}
		memberHash[m] = h
	}
}

// members is what object found of the JSON-RPC members in a call object: each one's value, as offsets.
type members struct {
	start, end [nMembers]int // end 0: absent
	folds      [nMembers]int // how many keys fold to each member, itself included
}

func (m *members) raw(b []byte, k int) []byte {
	if m.end[k] == 0 {
		return nil
	}
	return b[m.start[k]:m.end[k]:m.end[k]]
}

// object reads an object at depth. With call set, it is a call: the values of its JSON-RPC members are noted,
// and a key that equals a member only under case folding is refused.
func (s *scanner) object(depth int, call *members) bool {
	if depth > MaxDepth {
		return s.deep()
	}
	s.i++ // {
	base := len(s.keys)
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == '}' {
		s.i++
		return true
	}
	for {
		s.ws()
		if s.i >= len(s.b) || s.b[s.i] != '"' {
			return s.syntax()
		}
		k, ok := s.key()
		if !ok || !s.expect(':') {
			return false
		}
		s.keys = append(s.keys, k)
		m := -1
		if call != nil {
			m = s.member(k, call)
		}
		s.ws()
		start := s.i
		if !s.value(depth) {
			return false
		}
		if m >= 0 {
			call.start[m], call.end[m] = start, s.i
		}
		s.ws()
		if s.i >= len(s.b) {
			return s.syntax()
		}
		switch s.b[s.i] {
		case ',':
			s.i++
		case '}':
			s.i++
			s.duplicates(base)
			s.keys = s.keys[:base]
			return true
		default:
			return s.syntax()
		}
	}
}

// member says which JSON-RPC member the key of a call is (-1: none), and refuses a key that folds to a member
// without being it: a node that matches keys case-insensitively would take it for the member.
func (s *scanner) member(k keyRec, call *members) int {
	for m, h := range memberHash {
		if k.hash != h || !s.foldEqualString(k, memberNames[m]) {
			continue
		}
		call.folds[m]++
		if s.equalString(k, memberNames[m]) {
			return m
		}
		if s.bad == "" {
			s.invalid(fmt.Sprintf("key %s differs from the JSON-RPC member %q only by case", s.quoteKey(k), memberNames[m]))
		}
		return -1
	}
	return -1
}

// duplicates refuses two keys of the object whose keys are s.keys[base:] that are equal after unescaping and
// case folding (the same folding as encoding/json: each rune's unicode.SimpleFold orbit).
func (s *scanner) duplicates(base int) {
	ks := s.keys[base:]
	if len(ks) < 2 || s.bad != "" {
		return
	}
	if len(ks) <= 16 {
		for j := 1; j < len(ks); j++ {
			for i := range j {
				if ks[i].hash == ks[j].hash && s.foldCompare(ks[i], ks[j]) == 0 {
					s.duplicate(ks[i], ks[j])
					return
				}
			}
		}
		return
	}
	// Many keys: sort them by hash, then folded text (so that colliding hashes cost no more than a sort), then
	// position; equal keys end up side by side. O(n log n) comparisons, no allocation.
	slices.SortFunc(ks, func(a, b keyRec) int {
		if c := cmp.Compare(a.hash, b.hash); c != 0 {
			return c
		}
		if c := s.foldCompare(a, b); c != 0 {
			return c
		}
		return cmp.Compare(a.start, b.start)
	})
	for j := 1; j < len(ks); j++ {
		if ks[j-1].hash == ks[j].hash && s.foldCompare(ks[j-1], ks[j]) == 0 {
			s.duplicate(ks[j-1], ks[j])
			return
		}
	}
}

func (s *scanner) duplicate(a, b keyRec) {
	if s.equal(a, b) {
		s.invalid("duplicate key " + s.quoteKey(b))
	} else {
		s.invalid(fmt.Sprintf("keys %s and %s differ only by case", s.quoteKey(a), s.quoteKey(b)))
	}
}

// quoteKey is a key for a message: unescaped, cut to 64 bytes, quoted.
func (s *scanner) quoteKey(k keyRec) string {
	return strconv.Quote(shorten(unquote(s.b[k.start:k.end]), 64))
}

// shorten cuts str to at most max bytes, on a rune boundary, marking the cut with "…".
func shorten(str string, max int) string {
	if len(str) <= max {
		return str
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(str[cut]) {
		cut--
	}
	return str[:cut] + "…"
}

// key reads an object key, hashing its folded runes.
func (s *scanner) key() (keyRec, bool) {
	s.i++ // "
	k := keyRec{start: s.i, hash: fnvOffset}
	for {
		if s.i >= len(s.b) {
			return k, s.syntax()
		}
		c := s.b[s.i]
		switch {
		case c == '"':
			k.end = s.i
			s.i++
			return k, true
		case c == '\\':
			r, ok := s.escape()
			if !ok {
				return k, false
			}
			k.escaped = true
			k.hash = fnvRune(k.hash, foldRune(r))
		case c < 0x20:
			return k, s.syntax()
		case c < utf8.RuneSelf:
			if 'a' <= c && c <= 'z' {
				c -= 'a' - 'A' // an ASCII letter's fold orbit starts with the capital letter
			}
			k.hash = fnvRune(k.hash, rune(c))
			s.i++
		default:
			r, n := utf8.DecodeRune(s.b[s.i:])
			if r == utf8.RuneError && n == 1 {
				return k, s.notUTF8()
			}
			k.hash = fnvRune(k.hash, foldRune(r))
			s.i += n
		}
	}
}

func (s *scanner) notUTF8() bool {
	return s.failf("not UTF-8 at byte %d", s.i)
}

// str reads a string value.
func (s *scanner) str() bool {
	b, i := s.b, s.i+1
	for {
		i = strscan.SkipASCII(b, i) // past the bytes that stand for themselves: printable ASCII but '"' and '\\'
		if i >= len(b) {
			s.i = i
			return s.syntax()
		}
		switch c := b[i]; {
		case c == '"':
			s.i = i + 1
			return true
		case c == '\\':
			s.i = i
			if _, ok := s.escape(); !ok {
				return false
			}
			i = s.i
		case c < 0x20:
			s.i = i
			return s.syntax()
		default:
			r, n := utf8.DecodeRune(b[i:])
			if r == utf8.RuneError && n == 1 {
				s.i = i
				return s.notUTF8()
			}
			i += n
		}
	}
}

// escape reads the escape at s.i, a surrogate pair as one rune. An escape of a lone surrogate is refused: it
// encodes no character, and decoders disagree on what to make of it (U+FFFD, an error, WTF-8 bytes).
func (s *scanner) escape() (rune, bool) {
	at := s.i
	s.i++ // backslash
	if s.i >= len(s.b) {
		return 0, s.syntax()
	}
	c := s.b[s.i]
	s.i++
	switch c {
	case '"', '\\', '/':
		return rune(c), true
	case 'b':
		return '\b', true
	case 'f':
		return '\f', true
	case 'n':
		return '\n', true
	case 'r':
		return '\r', true
	case 't':
		return '\t', true
	case 'u':
	default:
		s.i--
		return 0, s.syntax()
	}
	r, ok := s.hex4()
	if !ok || !utf16.IsSurrogate(r) {
		return r, ok
	}
	if r < 0xdc00 && s.i+1 < len(s.b) && s.b[s.i] == '\\' && s.b[s.i+1] == 'u' {
		save := s.i
		s.i += 2
		if r2, ok := s.hex4(); ok && 0xdc00 <= r2 && r2 <= 0xdfff {
			return utf16.DecodeRune(r, r2), true
		}
		s.i = save
	}
	return 0, s.failf("lone UTF-16 surrogate %s at byte %d", s.b[at:at+6], at)
}

func (s *scanner) hex4() (rune, bool) {
	var r rune
	for range 4 {
		if s.i >= len(s.b) {
			return 0, s.syntax()
		}
		c := s.b[s.i]
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, s.syntax()
		}
		r = r<<4 | rune(c)
		s.i++
	}
	return r, true
}

func (s *scanner) lit(word string) bool {
	for j := range len(word) {
		if s.i >= len(s.b) || s.b[s.i] != word[j] {
			return s.syntax()
		}
		s.i++
	}
	return true
}

func (s *scanner) number() bool {
	b := s.b
	digits := func() bool {
		if s.i >= len(b) || b[s.i] < '0' || b[s.i] > '9' {
			return s.syntax()
		}
		for s.i < len(b) && '0' <= b[s.i] && b[s.i] <= '9' {
			s.i++
		}
		return true
	}
	if b[s.i] == '-' {
		s.i++
	}
	if s.i < len(b) && b[s.i] == '0' {
		s.i++
	} else if !digits() {
		return false
	}
	if s.i < len(b) && b[s.i] == '.' {
		s.i++
		if !digits() {
			return false
		}
	}
	if s.i < len(b) && (b[s.i] == 'e' || b[s.i] == 'E') {
		s.i++
		if s.i < len(b) && (b[s.i] == '+' || b[s.i] == '-') {
			s.i++
		}
		return digits()
	}
	return true
}

// FNV-1a over runes, for the folded keys. A collision costs a comparison, never a wrong answer.
const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

func fnvRune(h uint64, r rune) uint64 {
	return (h ^ uint64(r)) * fnvPrime
}

// foldRune is the smallest rune of r's case folding orbit: two runes fold alike exactly when encoding/json (and
// strings.EqualFold) takes them for equal, the Kelvin sign K and 'k', or 'ſ' and 's', included.
func foldRune(r rune) rune {
	if r < utf8.RuneSelf {
		if 'a' <= r && r <= 'z' {
			r -= 'a' - 'A'
		}
		return r
	}
	for {
		r2 := unicode.SimpleFold(r)
		if r2 <= r {
			return r2
		}
		r = r2
	}
}

// rawRune decodes the rune at b[i] of the text of a string the scanner has accepted (an escape, a surrogate pair
// included, or UTF-8), and where the next one starts.
func rawRune(b []byte, i int) (rune, int) {
	c := b[i]
	if c < utf8.RuneSelf && c != '\\' {
		return rune(c), i + 1
	}
	if c != '\\' {
		r, n := utf8.DecodeRune(b[i:])
		return r, i + n
	}
	switch c = b[i+1]; c {
	case 'b':
		return '\b', i + 2
	case 'f':
		return '\f', i + 2
	case 'n':
		return '\n', i + 2
	case 'r':
		return '\r', i + 2
	case 't':
		return '\t', i + 2
	case 'u':
	default:
		return rune(c), i + 2
	}
	r := hexRune(b[i+2 : i+6])
	if utf16.IsSurrogate(r) {
		return utf16.DecodeRune(r, hexRune(b[i+8:i+12])), i + 12
	}
	return r, i + 6
}

func hexRune(h []byte) rune {
	var r rune
	for _, c := range h {
		switch {
		case c <= '9':
			c -= '0'
		case c >= 'a':
			c -= 'a' - 10
		default:
			c -= 'A' - 10
		}
		r = r<<4 | rune(c)
	}
	return r
}

// foldCompare orders two keys by their folded runes.
func (s *scanner) foldCompare(a, b keyRec) int {
	i, j := a.start, b.start
	for i < a.end && j < b.end {
		var ra, rb rune
		ra, i = rawRune(s.b, i)
		rb, j = rawRune(s.b, j)
		if c := cmp.Compare(foldRune(ra), foldRune(rb)); c != 0 {
			return c
		}
	}
	return cmp.Compare(a.end-i, b.end-j)
}

// foldEqualString reports whether key k folds to name.
func (s *scanner) foldEqualString(k keyRec, name string) bool {
	i := k.start
	for _, rn := range name {
		if i >= k.end {
			return false
		}
		var r rune
		r, i = rawRune(s.b, i)
		if foldRune(r) != foldRune(rn) {
			return false
		}
	}
	return i == k.end
}

// equalString reports whether key k is name once unescaped.
func (s *scanner) equalString(k keyRec, name string) bool {
	if !k.escaped {
		return string(s.b[k.start:k.end]) == name
	}
	i := k.start
	for _, rn := range name {
		if i >= k.end {
			return false
		}
		var r rune
		r, i = rawRune(s.b, i)
		if r != rn {
			return false
		}
	}
	return i == k.end
}

// equal reports whether two keys are the same once unescaped.
func (s *scanner) equal(a, b keyRec) bool {
	if !a.escaped && !b.escaped {
		return bytes.Equal(s.b[a.start:a.end], s.b[b.start:b.end])
	}
	i, j := a.start, b.start
	for i < a.end && j < b.end {
		var ra, rb rune
		ra, i = rawRune(s.b, i)
		rb, j = rawRune(s.b, j)
		if ra != rb {
			return false
		}
	}
	return i == a.end && j == b.end
}

// unquote is the text of a string the scanner accepted (without its quotes), unescaped.
func unquote(raw []byte) string {
	if bytes.IndexByte(raw, '\\') < 0 {
		return string(raw)
	}
	out := make([]byte, 0, len(raw))
	for i := 0; i < len(raw); {
		if raw[i] != '\\' {
			j := i + 1
			for j < len(raw) && raw[j] != '\\' {
				j++
			}
			out = append(out, raw[i:j]...)
			i = j
			continue
		}
		var r rune
		r, i = rawRune(raw, i)
		out = utf8.AppendRune(out, r)
	}
	return string(out)
}
