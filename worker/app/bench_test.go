package app

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/evmlb/evmlb/internal/clients"
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
	ups := []upstream{{"eth", "a", n.URL}, {"eth", "b", m.URL}}
	off := memplatform.New(map[string]string{"UPSTREAM_CONFIG": configJSON(ups...)}, nil, t0) // the cache off
	off.Bind(New(off.Platform()))
	on := memplatform.New(map[string]string{"UPSTREAM_CONFIG": configCached(ups...)}, nil, t0)
	on.Bind(New(on.Platform()))
	// keyed is on with CLIENT_KEYS of 100 clients, each with limits; the requests give the last one's key.
	var entries []string
	for i := range 100 {
		entries = append(entries, fmt.Sprintf(`{"name":"c%d","key_sha256":"%s","rps":1000000,"per_day":1000000000}`, i, clients.Hash(fmt.Sprint("key-", i))))
	}
	keyed := memplatform.New(map[string]string{"UPSTREAM_CONFIG": configCached(ups...), "CLIENT_KEYS": "[" + strings.Join(entries, ",") + "]"}, nil, t0)
	keyed.Bind(New(keyed.Platform()))
	balance := func(i int, tag string) string {
		return fmt.Sprintf(`{"jsonrpc":"2.0","id":1,"method":"eth_getBalance","params":["0x%040x",%q]}`, i, tag)
	}
	for _, tc := range []struct {
		name string
		host *memplatform.Host
		body func(i int) string
		key  string
	}{
		// single and batch10 are the figures from before the cache (its own path with the cache off).
		{"single", off, func(int) string { return balance(0, "latest") }, ""},
		{"batch10", off, func(int) string {
			return "[" + strings.Repeat(`{"jsonrpc":"2.0","id":1,"method":"eth_call","params":[{"to":"0x0"},"latest"]},`, 9) + `{"jsonrpc":"2.0","id":2,"method":"eth_chainId"}]`
		}, ""},
		// With the cache on: a miss (a new address each time: looked up, sent upstream, stored), a read the cache
		// never keeps (pending: it leads a flight), and a hit.
		{"single-miss", on, func(i int) string { return balance(i+1, "latest") }, ""},
		{"single-skip", on, func(int) string { return balance(0, "pending") }, ""},
		{"single-hit", on, func(int) string { return balance(0, "latest") }, ""},
		// The same hit with a client key (Bearer, the last of 100 entries): the key's added cost on the hot path.
		{"single-hit-key", keyed, func(int) string { return balance(0, "latest") }, "key-99"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				r := httptest.NewRequest(http.MethodPost, "/eth", strings.NewReader(tc.body(i)))
				i++
				r.Header.Set("Content-Type", "application/json")
				if tc.key != "" {
					r.Header.Set("Authorization", "Bearer "+tc.key)
				}
				rec := httptest.NewRecorder()
				tc.host.ServeHTTP(rec, r)
				if rec.Code != http.StatusOK {
					b.Fatalf("%d %s", rec.Code, rec.Body)
				}
			}
		})
	}
}
