package logsplit

import (
	"bytes"
	"errors"
	"strconv"

	"github.com/evmlb/evmlb/internal/strscan"
)

// The errors of Merger.Add.
var (
	// ErrTooLarge: the merged answer would be over the cap on its bytes.
	ErrTooLarge = errors.New("merged answer over its byte cap")
	// ErrBadPiece: a piece's result is not an array of logs each in the piece's range, in block and log order,
	// or the pieces do not come in block order. The upstream that answered it did not answer the call sent.
	ErrBadPiece = errors.New("piece's answer is not its logs in order")
)

// Merger joins the results of the pieces of one eth_getLogs, added in block order, into the result one node
// without limits answers: the logs of every piece, in block then log order, each log's bytes as its upstream
// wrote them (no decoding, no re-encoding). It keeps each piece's logs where they are, in the upstream's answer
// (copied only when the upstream spaced them), and writes the merged answer once, at its exact size (Answer): no
// buffer grows by copies, so the merged answer costs its size twice at most (the pieces, then the answer).
type Merger struct {
	max   int
	parts [][]byte // each piece's logs, joined by ',' (no brackets); pieces without logs have none
	size  int      // len of Result
	count int
	prev  Span // the last piece added
	added bool
	// the last log's position
	lastBlock, lastIndex uint64
}

// NewMerger is a Merger whose result may hold at most maxBytes bytes.
func NewMerger(maxBytes int) *Merger {
	return &Merger{max: maxBytes, size: len("[]")}
}

// Add appends piece's result (a JSON array, raw), which the Merger keeps (the caller must not change it). On an
// error nothing of result is kept.
func (m *Merger) Add(piece Span, result []byte) error {
	if m.added && piece.From <= m.prev.To || piece.From > piece.To {
		return ErrBadPiece
	}
	b := bytes.TrimSpace(result)
	if len(b) < 2 || b[0] != '[' || b[len(b)-1] != ']' {
		return ErrBadPiece
	}
	count, lastBlock, lastIndex := m.count, m.lastBlock, m.lastIndex
	first, last, compact := -1, -1, true // compact: no space around the commas between the logs
	i := skipSpace(b, 1)
	for b[i] != ']' {
		end, ok := skipValue(b, i)
		if !ok {
			m.count, m.lastBlock, m.lastIndex = count, lastBlock, lastIndex
			return ErrBadPiece
		}
		elem := b[i:end]
		block, ok1 := member(elem, `"blockNumber"`)
		index, ok2 := member(elem, `"logIndex"`)
		if !ok1 || !ok2 || block < piece.From || block > piece.To ||
			m.count > 0 && (block < m.lastBlock || block == m.lastBlock && index <= m.lastIndex) {
			m.count, m.lastBlock, m.lastIndex = count, lastBlock, lastIndex
			return ErrBadPiece
		}
		if first < 0 {
			first = i
		}
		last = end
		m.count++
		m.lastBlock, m.lastIndex = block, index
		i = skipSpace(b, end)
		if i != end && b[i] == ',' {
			compact = false
		}
		switch {
		case b[i] == ',':
			next := skipSpace(b, i+1)
			if next != i+1 {
				compact = false
			}
			i = next
			if b[i] == ']' {
				m.count, m.lastBlock, m.lastIndex = count, lastBlock, lastIndex
				return ErrBadPiece
			}
		case b[i] != ']':
			m.count, m.lastBlock, m.lastIndex = count, lastBlock, lastIndex
			return ErrBadPiece
		}
	}
	if i != len(b)-1 {
		m.count, m.lastBlock, m.lastIndex = count, lastBlock, lastIndex
		return ErrBadPiece
	}
	var part []byte
	switch {
	case first < 0: // no logs
	case compact:
		part = b[first:last:last]
	default: // the logs' own bytes, without the upstream's spaces between them (read again: they are valid)
		part = make([]byte, 0, last-first)
		for j := first; j < last; {
			end, _ := skipValue(b, j)
			if len(part) > 0 {
				part = append(part, ',')
			}
			part = append(part, b[j:end]...)
			j = skipSpace(b, end)
			if b[j] == ',' {
				j = skipSpace(b, j+1)
			}
		}
	}
	size := m.size
	if part != nil {
		if len(m.parts) > 0 {
			size++
		}
		size += len(part)
	}
	if size > m.max {
		m.count, m.lastBlock, m.lastIndex = count, lastBlock, lastIndex
		return ErrTooLarge
	}
	if part != nil {
		m.parts = append(m.parts, part)
	}
	m.size = size
	m.prev, m.added = piece, true
	return nil
}

// Len is the length of Result so far.
func (m *Merger) Len() int { return m.size }

// Count is the number of logs merged so far.
func (m *Merger) Count() int { return m.count }

// Result is the merged result: a JSON array.
func (m *Merger) Result() []byte { return m.Answer(nil, nil) }

// Answer is prefix, the merged result and suffix (an answer's envelope around its result), made in one
// allocation of its exact size.
func (m *Merger) Answer(prefix, suffix []byte) []byte {
	b := make([]byte, 0, len(prefix)+m.size+len(suffix))
	b = append(append(b, prefix...), '[')
	for k, p := range m.parts {
		if k > 0 {
			b = append(b, ',')
		}
		b = append(b, p...)
	}
	return append(append(b, ']'), suffix...)
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	if i == len(b) {
		return len(b) - 1 // the closing ']' of the array, checked by the caller
	}
	return i
}

// skipValue is the end of the JSON value starting at b[i]: strings skipped whole (escapes included), objects and
// arrays by their depth. The bytes are the upstream's, already checked as JSON by retry's scan of its answer.
func skipValue(b []byte, i int) (int, bool) {
	depth := 0
	for i < len(b) {
		switch c := b[i]; c {
		case '"':
			i++
			for {
				i = strscan.Skip(b, i)
				if i >= len(b) {
					return 0, false
				}
				if b[i] == '\\' {
					i += 2
					continue
				}
				if b[i] == '"' {
					break
				}
				i++ // a control character: not in valid JSON, kept as is
			}
			i++
			if depth == 0 {
				return i, true
			}
			continue
		case '{', '[':
			depth++
		case '}', ']':
			if depth == 0 {
				return i, i > 0
			}
			depth--
			if depth == 0 {
				return i + 1, true
			}
		case ',', ' ', '\t', '\n', '\r':
			if depth == 0 {
				return i, true
			}
		}
		i++
	}
	return 0, false
}

// member reads the quantity string member key (written with its quotes) of a log object. A log's other members
// are hex strings and arrays of them, so the key's bytes with their quotes appear nowhere else.
func member(elem []byte, key string) (uint64, bool) {
	j := bytes.Index(elem, []byte(key))
	if j < 0 {
		return 0, false
	}
	rest := elem[j+len(key):]
	k := 0
	for k < len(rest) && (rest[k] == ' ' || rest[k] == ':' || rest[k] == '\t' || rest[k] == '\n' || rest[k] == '\r') {
		k++
	}
	if k >= len(rest) || rest[k] != '"' {
		return 0, false
	}
	end := bytes.IndexByte(rest[k+1:], '"')
	if end < 0 {
		return 0, false
	}
	s := string(rest[k+1 : k+1+end])
	if len(s) < 3 || len(s) > 18 || s[:2] != "0x" {
		return 0, false
	}
	n, err := strconv.ParseUint(s[2:], 16, 64)
	return n, err == nil
}
