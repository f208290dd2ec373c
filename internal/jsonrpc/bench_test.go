package jsonrpc

import (
	"strings"
	"testing"
)

func benchBodies() (small, large []byte) {
	small = []byte(`{"jsonrpc":"2.0","id":1,"method":"eth_getBalance","params":["0x0000000000000000000000000000000000000001","latest"]}`)
	large = []byte(`{"jsonrpc":"2.0","id":7,"method":"eth_call","params":[{"to":"0x0000000000000000000000000000000000000001",` +
		`"data":"0x` + strings.Repeat("ab", 1<<19) + `"},"latest"]}`)
	return small, large
}

// Parse allocates no more for a 1 MiB eth_call than for a small call: params are not copied.
func TestParseAllocationsDoNotGrowWithTheBody(t *testing.T) {
	small, large := benchBodies()
	allocs := func(body []byte) float64 {
		return testing.AllocsPerRun(20, func() {
			if _, err := Parse(body, 1); err != nil {
				t.Fatal(err)
			}
		})
	}
	if s, l := allocs(small), allocs(large); l > s || s > 4 {
		t.Errorf("allocations: %v for a small call, %v for a 1 MiB one", s, l)
	}
}

// BenchmarkParse parses a small call and a 1 MiB eth_call (the calldata in params). Parse keeps id and params as
// sub-slices of the body, so its allocations must not grow with the body: compare allocs/op of the two.
func BenchmarkParse(b *testing.B) {
	small, large := benchBodies()
	batch := []byte(`[` + strings.Repeat(string(small)+`,`, 9) + string(small) + `]`)
	for _, bc := range []struct {
		name string
		body []byte
	}{{"small", small}, {"batch10", batch}, {"eth_call_1MiB", large}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(bc.body)))
			for b.Loop() {
				if _, err := Parse(bc.body, 100); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
