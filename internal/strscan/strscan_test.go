package strscan

import (
	"bytes"
	"math/rand/v2"
	"strings"
	"testing"
)

func naive(b []byte, i int, ascii bool) int {
	for ; i < len(b); i++ {
		c := b[i]
		if c == '"' || c == '\\' || c < 0x20 || ascii && c >= 0x80 {
			return i
		}
	}
	return i
}

func check(t testing.TB, b []byte, i int) {
	t.Helper()
	if got, want := Skip(b, i), naive(b, i, false); got != want {
		t.Fatalf("Skip(%q, %d) = %d, want %d", b, i, got, want)
	}
	if got, want := SkipASCII(b, i), naive(b, i, true); got != want {
		t.Fatalf("SkipASCII(%q, %d) = %d, want %d", b, i, got, want)
	}
}

// Every byte value at every place of a word, after plain bytes and before stopping ones: a borrow in the word
// arithmetic must never hide a stop, nor make one of a plain byte.
// The buffers are 72 bytes, so that a stop falls in each word of SkipASCII's four-word rounds too.
func TestEveryByteAtEveryPlace(t *testing.T) {
	for c := range 256 {
		for at := range 41 {
			for _, fill := range []byte{'a', 0x7f, 0x80, 0xff, 0x21, 0x23, 0x5b, 0x5d, 0x20} {
				b := bytes.Repeat([]byte{fill}, 72)
				b[at] = byte(c)
				for i := range 3 {
					check(t, b, i)
				}
			}
		}
	}
}

func TestRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	alphabet := []byte("ab09\"\\\x00\x1f \x7f\x80\xc3\xa9\xff")
	for range 20000 {
		b := make([]byte, r.IntN(100))
		for j := range b {
			if r.IntN(4) == 0 {
				b[j] = alphabet[r.IntN(len(alphabet))]
			} else {
				b[j] = byte(r.IntN(256))
			}
		}
		check(t, b, r.IntN(len(b)+1))
	}
}

func FuzzSkip(f *testing.F) {
	f.Add([]byte(`abcdefgh"ijk`), 0)
	f.Add([]byte("0123456789abcdef\x01"), 3)
	f.Add([]byte("\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\\"), 1)
	f.Fuzz(func(t *testing.T, b []byte, i int) {
		if i < 0 || i > len(b) {
			return
		}
		check(t, b, i)
	})
}

// BenchmarkSkip scans 1 MiB of calldata-like hex, as a large eth_call's; compare with BenchmarkNaive.
func BenchmarkSkip(b *testing.B) {
	data := []byte(strings.Repeat("ab", 1<<19) + `"`)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if SkipASCII(data, 0) != len(data)-1 {
			b.Fatal("wrong end")
		}
	}
}

func BenchmarkNaive(b *testing.B) {
	data := []byte(strings.Repeat("ab", 1<<19) + `"`)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if naive(data, 0, true) != len(data)-1 {
			b.Fatal("wrong end")
		}
	}
}
