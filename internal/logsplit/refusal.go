// Package logsplit is the pure core of eth_getLogs over any range (issue 20): the table of the providers' texts
// by which they refuse a range or a result too large (Read), the planning of sub-ranges (Pieces, Refine, Learn),
// and the byte merge of the sub-answers (Merger). It does no I/O: internal/proxy sends the pieces.
package logsplit

import (
	"strconv"
	"strings"
)

// Kind is what a refusal says was too large.
type Kind uint8

// The kinds of refusals.
const (
	// TooManyBlocks: the range is over the upstream's cap on blocks (Cap, when stated).
	TooManyBlocks Kind = iota + 1
	// TooManyResults: the answer would be over the upstream's cap on logs or bytes (Cap, when stated, counts
	// logs); a smaller range may pass.
	TooManyResults
)

// Span is a block range, both ends included.
type Span struct{ From, To uint64 }

// Len is the number of blocks of s.
func (s Span) Len() uint64 { return s.To - s.From + 1 }

// Refusal is what an upstream's refusal of an eth_getLogs says.
type Refusal struct {
	Provider string // the row of Refusals that read it
	Kind     Kind
	// Cap is the limit the text states: blocks for TooManyBlocks, logs for TooManyResults; 0 when it states none.
	Cap uint64
	// Hint is the range the text suggests ("this block range should work: [0x…, 0x…]"), when HasHint.
	Hint    Span
	HasHint bool
}

// Row is one provider's refusal: a message holding every fragment of Match (lower case) is this refusal. When
// CapAfter is set, the number right after it in the message is the cap (digits with ',' or '.' between
// thousands, and an optional k: "10,000", "2K").
type Row struct {
	Provider string
	Match    []string
	Kind     Kind
	CapAfter string
	// Example is a real text of the provider's; the tests read every row's example back as that row.
	Example string
	Code    int64 // Example's JSON-RPC code
}

// Refusals is the table, most specific first: the first row all of whose fragments a message holds reads it.
// The codes are not matched (providers answer the same text under -32000, -32600, -32602 or -32005): the texts
// are specific enough, and a code alone says nothing of a range.
var Refusals = []Row{
	{Provider: "alchemy", Match: []string{"log response size exceeded"}, Kind: TooManyResults, CapAfter: "cap of ",
		Code: -32602, Example: "Log response size exceeded. You can make eth_getLogs requests with up to a 2K block range and no limit on the response size, or you can request any block range with a cap of 10K logs in the response. Based on your parameters and the response size limit, this block range should work: [0xc5dc00, 0xc614a7]"},
	{Provider: "alchemy", Match: []string{"eth_getlogs requests with up to a", "block range"}, Kind: TooManyBlocks, CapAfter: "up to a ",
		Code: -32600, Example: "Under the Free tier plan, you can make eth_getLogs requests with up to a 10 block range. Based on your parameters, this block range should work: [0x1180fca, 0x1180fd3]. Upgrade to PAYG for expanded block range."},
	{Provider: "alchemy", Match: []string{"query timeout exceeded", "block range"}, Kind: TooManyResults,
		Code: -32000, Example: "Query timeout exceeded. Consider reducing your block range. Based on your parameters and the response size limit, this block range should work: [0x5223c98, 0x5223e80]"},
	{Provider: "infura", Match: []string{"query returned more than", "results"}, Kind: TooManyResults, CapAfter: "more than ",
		Code: -32005, Example: "query returned more than 10000 results. Try with this block range [0x10ad7c5, 0x10ad8a2]."},
	{Provider: "reth", Match: []string{"query exceeds max results"}, Kind: TooManyResults, CapAfter: "max results ",
		Code: -32602, Example: "query exceeds max results 20000, retry with the range 3600741-3620740"},
	{Provider: "reth", Match: []string{"query exceeds max block range"}, Kind: TooManyBlocks, CapAfter: "max block range ",
		Code: -32602, Example: "query exceeds max block range 100000"},
	{Provider: "quicknode", Match: []string{"eth_getlogs is limited to a"}, Kind: TooManyBlocks, CapAfter: "limited to a ",
		Code: -32602, Example: "eth_getLogs is limited to a 10,000 range"},
	{Provider: "blockpi", Match: []string{"is limited to", "block"}, Kind: TooManyBlocks, CapAfter: "limited to ",
		Code: -32000, Example: "eth_getLogs block range is limited to 1024 blocks"},
	{Provider: "geth", Match: []string{"exceed maximum block range"}, Kind: TooManyBlocks, CapAfter: "block range: ",
		Code: -32000, Example: "exceed maximum block range: 50000"},
	{Provider: "drpc", Match: []string{"ranges over", "blocks are not supported"}, Kind: TooManyBlocks, CapAfter: "ranges over ",
		Code: -32000, Example: "ranges over 10000 blocks are not supported on freetier"},
	{Provider: "chainstack", Match: []string{"requested too many blocks from"}, Kind: TooManyBlocks, CapAfter: "maximum is set to ",
		Code: -32000, Example: "requested too many blocks from 0 to 5000000, maximum is set to 1024"},
	{Provider: "op-geth", Match: []string{"block range is larger than max block range"}, Kind: TooManyBlocks, CapAfter: "max block range = ",
		Code: -32000, Example: "block range is larger than max block range, block range = 5120, max block range = 5000"},
	{Provider: "ankr", Match: []string{"block range is too wide"}, Kind: TooManyBlocks,
		Code: -32600, Example: "block range is too wide"},
	{Provider: "base", Match: []string{"block range too large"}, Kind: TooManyBlocks,
		Code: -32000, Example: "block range too large"},
	{Provider: "erigon", Match: []string{"too many logs"}, Kind: TooManyResults,
		Code: -32000, Example: "too many logs, limit is 10000, please narrow your filter"},
}

// Read reads an upstream's JSON-RPC error to an eth_getLogs as a refusal of its size: false when no row of
// Refusals holds it (the error is then the client's, or another class of retry's).
func Read(code int64, message string) (Refusal, bool) {
	m := strings.ToLower(message)
	for _, row := range Refusals {
		if !holdsAll(m, row.Match) {
			continue
		}
		r := Refusal{Provider: row.Provider, Kind: row.Kind}
		if row.CapAfter != "" {
			if i := strings.Index(m, row.CapAfter); i >= 0 {
				rest := strings.TrimPrefix(m[i+len(row.CapAfter):], "a ")
				r.Cap, _ = number(rest)
			}
		}
		r.Hint, r.HasHint = hint(m)
		return r, true
	}
	return Refusal{}, false
}

func holdsAll(m string, frags []string) bool {
	for _, f := range frags {
		if !strings.Contains(m, f) {
			return false
		}
	}
	return true
}

// number reads the count s starts with: digits, ',' or '.' between groups of three digits, and an optional k
// (thousands). 0, false when s starts with none, or the number is 0 or overflows.
func number(s string) (uint64, bool) {
	var n uint64
	digits, i := 0, 0
	for i < len(s) {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			if n > (1<<64-1-9)/10 {
				return 0, false
			}
			n = n*10 + uint64(c-'0')
			digits++
			i++
			continue
		case (c == ',' || c == '.') && digits > 0 && i+4 <= len(s) && isDigits(s[i+1:i+4]) &&
			(i+4 == len(s) || s[i+4] < '0' || s[i+4] > '9'):
			i++ // a thousands separator: the next three digits are read on
			continue
		}
		break
	}
	if digits == 0 {
		return 0, false
	}
	if i < len(s) && s[i] == 'k' {
		if n > (1<<64-1)/1000 {
			return 0, false
		}
		n *= 1000
	}
	return n, n > 0
}

func isDigits(s string) bool {
	if len(s) != 3 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// hint reads the range a refusal suggests: "[0xa, 0xb]" (Alchemy, Infura) or "range a-b" in decimal (reth).
// A range whose end is below its start is none.
func hint(m string) (Span, bool) {
	if i := strings.Index(m, "[0x"); i >= 0 {
		rest := m[i+1:]
		if j := strings.IndexByte(rest, ']'); j >= 0 {
			a, b, ok := strings.Cut(rest[:j], ",")
			if ok {
				from, ok1 := hexQuantity(strings.TrimSpace(a))
				to, ok2 := hexQuantity(strings.TrimSpace(b))
				if ok1 && ok2 && from <= to {
					return Span{from, to}, true
				}
			}
		}
	}
	if i := strings.Index(m, "the range "); i >= 0 {
		rest := m[i+len("the range "):]
		a, b, ok := strings.Cut(rest, "-")
		if ok {
			from, err1 := strconv.ParseUint(a, 10, 64)
			end := 0
			for end < len(b) && b[end] >= '0' && b[end] <= '9' {
				end++
			}
			to, err2 := strconv.ParseUint(b[:end], 10, 64)
			if err1 == nil && err2 == nil && from <= to {
				return Span{from, to}, true
			}
		}
	}
	return Span{}, false
}

func hexQuantity(s string) (uint64, bool) {
	if len(s) < 3 || len(s) > 18 || s[:2] != "0x" {
		return 0, false
	}
	n, err := strconv.ParseUint(s[2:], 16, 64)
	return n, err == nil
}
