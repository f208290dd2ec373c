package logsplit

import (
	"encoding/json"
	"errors"
	"strconv"

	"github.com/evmlb/evmlb/internal/blockref"
)

// Limits is what one upstream is known to take in one eth_getLogs.
type Limits struct {
	Range   uint64 // its max_logs_range setting: blocks; 0 when not set
	Results uint64 // its max_logs_results setting: logs; 0 when not set
	Learned uint64 // the width its refusals taught (Learn); 0 when it never refused
}

// Width is the widest piece the upstream is known to take: the smaller of Range and Learned that is set, 0 when
// neither is (no known cap on blocks).
func (l Limits) Width() uint64 {
	switch {
	case l.Range == 0:
		return l.Learned
	case l.Learned == 0:
		return l.Range
	}
	return min(l.Range, l.Learned)
}

// Splits reports whether a request to this upstream may be split: only when it has a setting or has refused.
// An upstream that never refused and has no setting gets every range whole.
func (l Limits) Splits() bool { return l.Range > 0 || l.Results > 0 || l.Learned > 0 }

// Learn is the width to ask next after an upstream refused refused with r: the hint's width, else the cap on
// blocks it states, else half the refused range; always below refused's width, so that refining makes progress.
// 0 when refused is one block: it cannot be split.
func Learn(refused Span, r Refusal) uint64 {
	n := refused.Len()
	if n <= 1 {
		return 0
	}
	w := n / 2
	switch {
	case r.HasHint && r.Hint.Len() < n:
		w = r.Hint.Len()
	case r.Kind == TooManyBlocks && r.Cap > 0 && r.Cap < n:
		w = r.Cap
	}
	return max(w, 1)
}

// ErrTooManyPieces: the plan would need more pieces than allowed.
var ErrTooManyPieces = errors.New("too many pieces")

// Pieces cuts s into contiguous pieces of at most width blocks, in block order, at most maxPieces of them
// (ErrTooManyPieces beyond). width 0 is no cap: s whole.
func Pieces(s Span, width uint64, maxPieces int) ([]Span, error) {
	if width == 0 || width >= s.Len() {
		return []Span{s}, nil
	}
	count := s.Len() / width
	if s.Len()%width != 0 {
		count++
	}
	if count > uint64(maxPieces) {
		return nil, ErrTooManyPieces
	}
	out := make([]Span, 0, count)
	for from := s.From; ; from += width {
		to := from + width - 1
		if to >= s.To || to < from { // the last piece (or an overflow at the top of the range)
			out = append(out, Span{from, s.To})
			return out, nil
		}
		out = append(out, Span{from, to})
	}
}

// Refine is the pieces that replace piece after an upstream refused it with r: the hinted range first when it
// starts where piece does, then the rest at the learned width. nil when piece is one block (nothing to split:
// the refusal is the answer).
func Refine(piece Span, r Refusal, maxPieces int) ([]Span, error) {
	w := Learn(piece, r)
	if w == 0 {
		return nil, nil
	}
	if r.HasHint && r.Hint.From == piece.From && r.Hint.To < piece.To {
		rest, err := Pieces(Span{r.Hint.To + 1, piece.To}, w, maxPieces-1)
		if err != nil {
			return nil, err
		}
		return append([]Span{r.Hint}, rest...), nil
	}
	return Pieces(piece, w, maxPieces)
}

// Range reads an eth_getLogs call's params: the range when the filter's fromBlock and toBlock are both block
// numbers (fromBlock ≤ toBlock) and it has no blockHash. Any other filter (tags, blockHash, a bad one) is not a
// range to split: it goes as it is.
func Range(params json.RawMessage) (Span, bool) {
	f, ok := filterOf(params)
	if !ok {
		return Span{}, false
	}
	if h, there := f["blockHash"]; there && string(h) != "null" {
		return Span{}, false
	}
	from, ok1 := quantity(f["fromBlock"])
	to, ok2 := quantity(f["toBlock"])
	if !ok1 || !ok2 || from > to {
		return Span{}, false
	}
	return Span{from, to}, true
}

func filterOf(params json.RawMessage) (map[string]json.RawMessage, bool) {
	var p []map[string]json.RawMessage
	if json.Unmarshal(params, &p) != nil || len(p) != 1 || p[0] == nil {
		return nil, false
	}
	return p[0], true
}

func quantity(v json.RawMessage) (uint64, bool) {
	var s string
	if v == nil || json.Unmarshal(v, &s) != nil {
		return 0, false
	}
	return blockref.ParseQuantity(s)
}

// WithSpan is params (an eth_getLogs call's, Range read it) asking for s instead: the other members as they were.
func WithSpan(params json.RawMessage, s Span) (json.RawMessage, bool) {
	f, ok := filterOf(params)
	if !ok {
		return nil, false
	}
	f["fromBlock"] = hexOf(s.From)
	f["toBlock"] = hexOf(s.To)
	b, err := json.Marshal([]map[string]json.RawMessage{f})
	return b, err == nil
}

func hexOf(n uint64) json.RawMessage {
	return json.RawMessage(`"0x` + strconv.FormatUint(n, 16) + `"`)
}
