package app

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/evmlb/evmlb/internal/evmtest"
	"github.com/evmlb/evmlb/internal/platform/memplatform"
)

// BenchmarkRequest measures one JSON-RPC request through the whole balancer (Worker router, Chain object,
// Upstream object, forward) natively on the in-memory host, against a local fake node: the Go side's own cost,
// without the wasm runtime or the JS bridge. Compare with `make bench`, which measures the same path in the hosts.
//
//	go test ./worker/app -run - -bench Request -benchmem
func BenchmarkRequest(b *testing.B) {
	n := evmtest.NewNode(b, "a", 1, 100)
	m := evmtest.NewNode(b, "b", 1, 100)
	host := memplatform.New(map[string]string{"UPSTREAM_CONFIG": configJSON(upstream{"eth", "a", n.URL}, upstream{"eth", "b", m.URL})}, nil, t0)
	host.Bind(New(host.Platform()))
	for _, tc := range []struct{ name, body string }{
		{"single", `{"jsonrpc":"2.0","id":1,"method":"eth_getBalance","params":["0x0000000000000000000000000000000000000000","latest"]}`},
		{"batch10", "[" + strings.Repeat(`{"jsonrpc":"2.0","id":1,"method":"eth_call","params":[{"to":"0x0"},"latest"]},`, 9) + `{"jsonrpc":"2.0","id":2,"method":"eth_chainId"}]`},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				r := httptest.NewRequest(http.MethodPost, "/eth", strings.NewReader(tc.body))
				r.Header.Set("Content-Type", "application/json")
				rec := httptest.NewRecorder()
				host.ServeHTTP(rec, r)
				if rec.Code != http.StatusOK {
					b.Fatalf("%d %s", rec.Code, rec.Body)
				}
			}
		})
	}
}
