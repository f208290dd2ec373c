package jsonrpc

import (
	"strings"
	"testing"
)

// BenchmarkParse parses a small call and a 1 MiB eth_call (the calldata in params). Parse keeps id and params as
// sub-slices of the body, so its allocations must not grow with the body: compare allocs/op of the two.
func BenchmarkParse(b *testing.B) {
	small := []byte(`{"jsonrpc":"2.0","id":1,"method":"eth_getBalance","params":["0x0000000000000000000000000000000000000001","latest"]}`)
	calldata := strings.Repeat("ab", 1<<19)
	large := []byte(`{"jsonrpc":"2.0","id":7,"method":"eth_call","params":[{"to":"0x0000000000000000000000000000000000000001",` +
		`"data":"0x` + calldata + `"},"latest"]}`)
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
