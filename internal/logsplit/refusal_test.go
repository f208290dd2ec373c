package logsplit

import "testing"

// Every row of the table reads its own example as itself, with the cap and hint the text states.
func TestRefusalTableExamples(t *testing.T) {
	want := map[string]Refusal{ // by example
		Refusals[0].Example:  {Provider: "alchemy", Kind: TooManyResults, Cap: 10000, Hint: Span{0xc5dc00, 0xc614a7}, HasHint: true},
		Refusals[1].Example:  {Provider: "alchemy", Kind: TooManyBlocks, Cap: 10, Hint: Span{0x1180fca, 0x1180fd3}, HasHint: true},
		Refusals[2].Example:  {Provider: "alchemy", Kind: TooManyResults, Hint: Span{0x5223c98, 0x5223e80}, HasHint: true},
		Refusals[3].Example:  {Provider: "infura", Kind: TooManyResults, Cap: 10000, Hint: Span{0x10ad7c5, 0x10ad8a2}, HasHint: true},
		Refusals[4].Example:  {Provider: "reth", Kind: TooManyResults, Cap: 20000, Hint: Span{3600741, 3620740}, HasHint: true},
		Refusals[5].Example:  {Provider: "reth", Kind: TooManyBlocks, Cap: 100000},
		Refusals[6].Example:  {Provider: "quicknode", Kind: TooManyBlocks, Cap: 10000},
		Refusals[7].Example:  {Provider: "blockpi", Kind: TooManyBlocks, Cap: 1024},
		Refusals[8].Example:  {Provider: "geth", Kind: TooManyBlocks, Cap: 50000},
		Refusals[9].Example:  {Provider: "drpc", Kind: TooManyBlocks, Cap: 10000},
		Refusals[10].Example: {Provider: "chainstack", Kind: TooManyBlocks, Cap: 1024},
		Refusals[11].Example: {Provider: "op-geth", Kind: TooManyBlocks, Cap: 5000},
		Refusals[12].Example: {Provider: "ankr", Kind: TooManyBlocks},
		Refusals[13].Example: {Provider: "base", Kind: TooManyBlocks},
		Refusals[14].Example: {Provider: "erigon", Kind: TooManyResults},
	}
	if len(want) != len(Refusals) {
		t.Fatalf("%d rows, %d expectations: give the new row its expectation", len(Refusals), len(want))
	}
	for i, row := range Refusals {
		got, ok := Read(row.Code, row.Example)
		if !ok {
			t.Errorf("row %d (%s): its example %q does not read", i, row.Provider, row.Example)
			continue
		}
		if got != want[row.Example] {
			t.Errorf("row %d (%s): read %+v, want %+v", i, row.Provider, got, want[row.Example])
		}
	}
}

// The providers' texts the issue names, as the clients see them.
func TestRefusalIssueTexts(t *testing.T) {
	for _, c := range []struct {
		msg  string
		kind Kind
		cap  uint64
	}{
		{"Log response size exceeded. this block range should work: [0x1a2b, 0x1a99]", TooManyResults, 0},
		{"query returned more than 10000 results", TooManyResults, 10000},
		{"eth_getLogs is limited to a 10,000 range", TooManyBlocks, 10000},
		{"eth_getLogs is limited to a 10,000 blocks range", TooManyBlocks, 10000},
		{"exceed maximum block range: 50000", TooManyBlocks, 50000},
		{"ranges over 10000 blocks are not supported", TooManyBlocks, 10000},
		{"You can make eth_getLogs requests with up to a 2K block range and no limit on the response size", TooManyBlocks, 2000},
		{"eth_getLogs block range is limited to a 5000 block range", TooManyBlocks, 5000},
	} {
		got, ok := Read(-32000, c.msg)
		if !ok || got.Kind != c.kind || got.Cap != c.cap {
			t.Errorf("%q: read %+v %v, want kind %d cap %d", c.msg, got, ok, c.kind, c.cap)
		}
	}
}

// Errors that are not a refusal of size are not read as one: they stay the client's answer or retry's class.
func TestNotRefusals(t *testing.T) {
	for _, msg := range []string{
		"execution reverted", "header not found", "missing trie node", "rate limit exceeded", "invalid params",
		"method not found", "eth_getLogs not supported", "block range extends beyond current head block",
		"query timeout exceeded", "limit exceeded", "",
	} {
		if r, ok := Read(-32000, msg); ok {
			t.Errorf("%q read as a refusal: %+v", msg, r)
		}
	}
}

func TestNumber(t *testing.T) {
	for s, want := range map[string]uint64{
		"10,000 range": 10000, "10.000 blocks": 10000, "2k block": 2000, "50000": 50000, "1,000,000x": 1000000,
		"1024 blocks": 1024, "12,34": 12, "5, 6": 5,
	} {
		if got, ok := number(s); !ok || got != want {
			t.Errorf("number(%q) = %d %v, want %d", s, got, ok, want)
		}
	}
	for _, s := range []string{"", "x10", "0", "99999999999999999999999"} {
		if got, ok := number(s); ok {
			t.Errorf("number(%q) = %d, want none", s, got)
		}
	}
}

func TestHint(t *testing.T) {
	for m, want := range map[string]Span{
		"should work: [0x10, 0x1f]":           {16, 31},
		"try with this block range [0x0,0x1]": {0, 1},
		"retry with the range 5-9":            {5, 9},
	} {
		if got, ok := hint(m); !ok || got != want {
			t.Errorf("hint(%q) = %v %v, want %v", m, got, ok, want)
		}
	}
	for _, m := range []string{"[0x1f, 0x10]", "[0x10]", "the range 9-5", "[0xzz, 0x1]", "no range"} {
		if got, ok := hint(m); ok {
			t.Errorf("hint(%q) = %v, want none", m, got)
		}
	}
}

// Any text reads without a panic, and a cap or hint read is consistent (a hint never ends below its start).
func FuzzRead(f *testing.F) {
	for _, row := range Refusals {
		f.Add(row.Example)
	}
	f.Add("eth_getLogs is limited to a 1,")
	f.Add("query returned more than 9,99")
	f.Add("this block range should work: [0x, 0x1]")
	f.Fuzz(func(t *testing.T, msg string) {
		r, ok := Read(-32000, msg)
		if ok && r.HasHint && r.Hint.From > r.Hint.To {
			t.Fatalf("%q: hint %v", msg, r.Hint)
		}
	})
}
