package logsplit

import (
	"bytes"
	"fmt"
	"math/rand"
	"strings"
	"testing"
)

// node is a fake node's logs: (block, logIndex) in order, printed as geth prints them.
type node struct{ logs []Span } // From: block, To: log index

func newNode(r *rand.Rand, blocks uint64) node {
	var n node
	for b := uint64(0); b < blocks; b++ {
		for i := range uint64(r.Intn(4)) {
			n.logs = append(n.logs, Span{b, i})
		}
	}
	return n
}

func logJSON(l Span) string {
	return fmt.Sprintf(`{"address":"0x5fbdb2315678afecb367f032d93f642f64180aa3","topics":["0x%064x"],"data":"0x%x","blockNumber":"0x%x","transactionHash":"0x%064x","transactionIndex":"0x0","blockHash":"0x%064x","logIndex":"0x%x","removed":false}`,
		l.From*7+l.To, l.From, l.From, l.From, l.From, l.To)
}

// answer is what the node answers for s, with sep between the logs.
func (n node) answer(s Span, sep string) []byte {
	var parts []string
	for _, l := range n.logs {
		if l.From >= s.From && l.From <= s.To {
			parts = append(parts, logJSON(l))
		}
	}
	return []byte("[" + strings.Join(parts, sep) + "]")
}

// Any cut of a range into pieces merges to the bytes of the whole range's answer.
func TestMergeByteEqual(t *testing.T) {
	r := rand.New(rand.NewSource(2))
	n := newNode(r, 300)
	whole := Span{0, 299}
	want := n.answer(whole, ",")
	for range 200 {
		pieces, _ := Pieces(whole, uint64(1+r.Intn(80)), 1000)
		m := NewMerger(1 << 30)
		for _, p := range pieces {
			sep := ","
			if r.Intn(2) == 0 {
				sep = " ,\n " // another node's spacing: the logs' own bytes are kept, not the spaces between
			}
			if err := m.Add(p, n.answer(p, sep)); err != nil {
				t.Fatalf("piece %v: %v", p, err)
			}
		}
		if got := m.Result(); !bytes.Equal(got, want) {
			t.Fatalf("merged %d bytes differ from the whole answer's %d", len(got), len(want))
		}
		if m.Count() != len(n.logs) {
			t.Fatalf("count %d, want %d", m.Count(), len(n.logs))
		}
	}
	empty := NewMerger(10)
	if err := empty.Add(Span{0, 5}, []byte(" [ ] ")); err != nil || string(empty.Result()) != "[]" {
		t.Fatalf("empty: %v %s", err, empty.Result())
	}
}

func TestMergeByteCap(t *testing.T) {
	n := node{logs: []Span{{1, 0}, {1, 1}, {2, 0}}}
	full := n.answer(Span{0, 9}, ",")
	m := NewMerger(len(full))
	if err := m.Add(Span{0, 9}, full); err != nil {
		t.Fatalf("a result of exactly the cap: %v", err)
	}
	m = NewMerger(len(full) - 1)
	if err := m.Add(Span{0, 1}, n.answer(Span{0, 1}, ",")); err != nil {
		t.Fatal(err)
	}
	kept := string(m.Result())
	if err := m.Add(Span{2, 9}, n.answer(Span{2, 9}, ",")); err != ErrTooLarge {
		t.Fatalf("one byte over the cap: %v", err)
	}
	if string(m.Result()) != kept {
		t.Fatal("a refused piece left bytes behind")
	}
}

func TestMergeBadPieces(t *testing.T) {
	n := node{logs: []Span{{1, 0}, {1, 1}, {2, 0}, {5, 0}}}
	l := func(b, i uint64) string { return logJSON(Span{b, i}) }
	for name, c := range map[string]struct {
		first  Span
		second Span
		result string
	}{
		"log below its piece":   {Span{0, 1}, Span{2, 9}, "[" + l(1, 5) + "]"},
		"log above its piece":   {Span{0, 1}, Span{2, 4}, "[" + l(5, 0) + "]"},
		"pieces overlap":        {Span{0, 1}, Span{1, 9}, "[" + l(2, 0) + "]"},
		"pieces out of order":   {Span{3, 4}, Span{0, 2}, "[" + l(2, 0) + "]"},
		"logs out of order":     {Span{0, 1}, Span{2, 9}, "[" + l(5, 0) + "," + l(2, 0) + "]"},
		"log twice":             {Span{0, 1}, Span{2, 9}, "[" + l(2, 0) + "," + l(2, 0) + "]"},
		"not an array":          {Span{0, 1}, Span{2, 9}, l(2, 0)},
		"null":                  {Span{0, 1}, Span{2, 9}, "null"},
		"trailing comma":        {Span{0, 1}, Span{2, 9}, "[" + l(2, 0) + ",]"},
		"no comma":              {Span{0, 1}, Span{2, 9}, "[" + l(2, 0) + l(5, 0) + "]"},
		"not a log":             {Span{0, 1}, Span{2, 9}, `[1]`},
		"no logIndex":           {Span{0, 1}, Span{2, 9}, `[{"blockNumber":"0x2"}]`},
		"number not a quantity": {Span{0, 1}, Span{2, 9}, `[{"blockNumber":2,"logIndex":"0x0"}]`},
		"unterminated string":   {Span{0, 1}, Span{2, 9}, `[{"blockNumber":"0x2,"logIndex":"0x0"]`},
	} {
		m := NewMerger(1 << 20)
		if err := m.Add(c.first, n.answer(c.first, ",")); err != nil {
			t.Fatalf("%s: first piece: %v", name, err)
		}
		kept := string(m.Result())
		if err := m.Add(c.second, []byte(c.result)); err != ErrBadPiece {
			t.Errorf("%s: %v, want ErrBadPiece", name, err)
		}
		if string(m.Result()) != kept {
			t.Errorf("%s: a refused piece left bytes behind", name)
		}
	}
}

// A string holding brackets, commas and escaped quotes does not cut a log.
func TestMergeStrings(t *testing.T) {
	odd := `{"x":"],[{\"\\","blockNumber":"0x3","logIndex":"0x0","y":[{"z":"}"}]}`
	m := NewMerger(1 << 10)
	if err := m.Add(Span{3, 3}, []byte("["+odd+"]")); err != nil {
		t.Fatal(err)
	}
	if got := string(m.Result()); got != "["+odd+"]" {
		t.Fatalf("got %s", got)
	}
}

// Answer is the envelope around Result, in one allocation; a piece whose logs are not spaced is kept where it
// is (not copied): Add allocates nothing for it but the list of pieces.
func TestMergeAnswerNoCopy(t *testing.T) {
	r := rand.New(rand.NewSource(3))
	n := newNode(r, 60)
	m := NewMerger(1 << 20)
	for _, p := range []Span{{0, 19}, {20, 39}, {40, 59}} {
		sep := ","
		if p.From == 20 {
			sep = " , "
		}
		if err := m.Add(p, n.answer(p, sep)); err != nil {
			t.Fatal(err)
		}
	}
	want := n.answer(Span{0, 59}, ",")
	if got := m.Answer([]byte(`{"id":1,"result":`), []byte(`}`)); string(got) != `{"id":1,"result":`+string(want)+`}` || cap(got) != len(got) {
		t.Fatalf("Answer: %d bytes (cap %d), want the envelope around %d", len(got), cap(got), len(want))
	}
	if !bytes.Equal(m.Result(), want) || m.Len() != len(want) {
		t.Fatalf("Result or Len differ from the whole answer")
	}
	piece := newNode(r, 200).answer(Span{60, 199}, ",")
	allocs := testing.AllocsPerRun(1, func() {
		m := NewMerger(1 << 20)
		m.parts = make([][]byte, 0, 1)
		if err := m.Add(Span{60, 199}, piece); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 1 { // the Merger (the copy of the logs would be one more)
		t.Fatalf("Add of an unspaced piece: %v allocations, want the piece kept where it is", allocs)
	}
}
