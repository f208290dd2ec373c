package logsplit

import (
	"encoding/json"
	"math"
	"math/rand"
	"testing"
)

// checkCover fails unless pieces cover s exactly once, in block order, each at most width blocks.
func checkCover(t *testing.T, s Span, width uint64, pieces []Span) {
	t.Helper()
	if len(pieces) == 0 || pieces[0].From != s.From || pieces[len(pieces)-1].To != s.To {
		t.Fatalf("%v at %d: pieces %v do not span it", s, width, pieces)
	}
	for i, p := range pieces {
		if p.From > p.To || width > 0 && p.Len() > width {
			t.Fatalf("%v at %d: piece %v", s, width, p)
		}
		if i > 0 && p.From != pieces[i-1].To+1 {
			t.Fatalf("%v at %d: gap or overlap between %v and %v", s, width, pieces[i-1], p)
		}
	}
}

func TestPiecesCover(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	for range 2000 {
		from := uint64(r.Intn(1000))
		s := Span{from, from + uint64(r.Intn(5000))}
		width := uint64(r.Intn(600))
		pieces, err := Pieces(s, width, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		checkCover(t, s, width, pieces)
		if width > 0 && uint64(len(pieces)) != (s.Len()+width-1)/width {
			t.Fatalf("%v at %d: %d pieces, want the fewest", s, width, len(pieces))
		}
	}
	top := Span{math.MaxUint64 - 10, math.MaxUint64}
	pieces, err := Pieces(top, 3, 100)
	if err != nil {
		t.Fatal(err)
	}
	checkCover(t, top, 3, pieces)
}

func TestPiecesBound(t *testing.T) {
	if _, err := Pieces(Span{0, 999}, 10, 99); err != ErrTooManyPieces {
		t.Fatalf("100 pieces allowed 99: %v", err)
	}
	if p, err := Pieces(Span{0, 999}, 10, 100); err != nil || len(p) != 100 {
		t.Fatalf("100 pieces allowed 100: %v %d", err, len(p))
	}
}

func TestLimits(t *testing.T) {
	if (Limits{}).Splits() || (Limits{}).Width() != 0 {
		t.Fatal("an upstream with no setting that never refused splits")
	}
	for _, c := range []struct {
		l     Limits
		width uint64
	}{{Limits{Range: 500}, 500}, {Limits{Learned: 700}, 700}, {Limits{Range: 500, Learned: 300}, 300},
		{Limits{Range: 200, Learned: 300}, 200}, {Limits{Results: 1000}, 0}} {
		if !c.l.Splits() || c.l.Width() != c.width {
			t.Errorf("%+v: splits %v width %d, want width %d", c.l, c.l.Splits(), c.l.Width(), c.width)
		}
	}
}

func TestLearnProgresses(t *testing.T) {
	for _, c := range []struct {
		refused Span
		r       Refusal
		want    uint64
	}{
		{Span{0, 9999}, Refusal{Kind: TooManyBlocks, Cap: 2000}, 2000},
		{Span{0, 999}, Refusal{Kind: TooManyBlocks, Cap: 2000}, 500}, // a cap the range is under: halve
		{Span{0, 999}, Refusal{Kind: TooManyBlocks, Cap: 1000}, 500},
		{Span{0, 999}, Refusal{Kind: TooManyResults, Cap: 10000}, 500},
		{Span{100, 999}, Refusal{Kind: TooManyResults, HasHint: true, Hint: Span{100, 149}}, 50},
		{Span{0, 1}, Refusal{Kind: TooManyResults}, 1},
		{Span{7, 7}, Refusal{Kind: TooManyResults}, 0},
	} {
		if got := Learn(c.refused, c.r); got != c.want {
			t.Errorf("Learn(%v, %+v) = %d, want %d", c.refused, c.r, got, c.want)
		}
	}
}

func TestRefine(t *testing.T) {
	piece := Span{100, 1099}
	got, err := Refine(piece, Refusal{Kind: TooManyResults, HasHint: true, Hint: Span{100, 399}}, 100)
	if err != nil {
		t.Fatal(err)
	}
	checkCover(t, piece, 300, got)
	if got[0] != (Span{100, 399}) || len(got) != 4 {
		t.Fatalf("refined to %v, want the hint first then pieces of 300", got)
	}
	got, _ = Refine(piece, Refusal{Kind: TooManyBlocks, Cap: 250}, 100)
	checkCover(t, piece, 250, got)
	if len(got) != 4 {
		t.Fatalf("refined to %v, want 4 pieces of 250", got)
	}
	if got, _ := Refine(Span{5, 5}, Refusal{Kind: TooManyResults}, 100); got != nil {
		t.Fatalf("one block refined to %v", got)
	}
	if _, err := Refine(piece, Refusal{Kind: TooManyBlocks, Cap: 1}, 10); err != ErrTooManyPieces {
		t.Fatalf("1000 pieces allowed 10: %v", err)
	}
}

func TestRange(t *testing.T) {
	for params, want := range map[string]Span{
		`[{"fromBlock":"0x10","toBlock":"0x20","address":"0x01"}]`: {16, 32},
		`[{"fromBlock":"0x0","toBlock":"0x0","blockHash":null}]`:   {0, 0},
	} {
		if got, ok := Range(json.RawMessage(params)); !ok || got != want {
			t.Errorf("Range(%s) = %v %v, want %v", params, got, ok, want)
		}
	}
	for _, params := range []string{
		`[{"fromBlock":"0x10","toBlock":"latest"}]`, `[{"fromBlock":"earliest","toBlock":"0x10"}]`,
		`[{"toBlock":"0x10"}]`, `[{"fromBlock":"0x10"}]`, `[{"fromBlock":"0x20","toBlock":"0x10"}]`,
		`[{"blockHash":"0xab","fromBlock":"0x1","toBlock":"0x2"}]`, `[{"fromBlock":16,"toBlock":"0x20"}]`,
		`[]`, `[{},{}]`, `{}`, `[null]`, ``,
	} {
		if got, ok := Range(json.RawMessage(params)); ok {
			t.Errorf("Range(%s) = %v, want none (sent as it is)", params, got)
		}
	}
}

func TestWithSpan(t *testing.T) {
	params := json.RawMessage(`[{"address":["0x01","0x02"],"fromBlock":"0x10","toBlock":"0x20","topics":[null,["0xaa"]]}]`)
	got, ok := WithSpan(params, Span{17, 18})
	want := `[{"address":["0x01","0x02"],"fromBlock":"0x11","toBlock":"0x12","topics":[null,["0xaa"]]}]`
	if !ok || string(got) != want {
		t.Fatalf("WithSpan = %s, want %s", got, want)
	}
	if s, ok := Range(got); !ok || s != (Span{17, 18}) {
		t.Fatalf("Range(WithSpan) = %v %v", s, ok)
	}
}
