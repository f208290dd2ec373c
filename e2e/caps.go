package e2e

import (
	"bytes"
	"fmt"
	"net/http"

	"github.com/evmlb/evmlb/e2e/internal/anvil"
	"github.com/evmlb/evmlb/e2e/internal/rpc"
	"github.com/evmlb/evmlb/e2e/internal/target"
)

// scOldStateToArchive (issue 20): two full nodes whose state does not reach back (they answer reads of old state
// "missing trie node") and one that has it: every read of old state succeeds, and after the first the full nodes
// are no longer asked (each is asked at most once per Worker runtime that learned it), while reads at latest still
// go to all.
func scOldStateToArchive(s *S) {
	n := s.Node(31337, 300)
	full1, u1 := s.Upstream(n, "ethereum", "full1")
	full2, u2 := s.Upstream(n, "ethereum", "full2")
	arch, u3 := s.Upstream(n, "ethereum", "archive")
	const trie = "missing trie node 1db428ea79cb2e8cc233ae7f4db7c5ad4b1b7e9b2a3a5f4ad3d4e0c9b8a7f6e5 (path )"
	full1.SetStatePruned(200, trie)
	full2.SetStatePruned(200, trie)
	// The cache off: every read must reach an upstream.
	b := s.StartConfig(target.Config{Upstreams: []target.Upstream{u1, u2, u3}, Chains: `{"ethereum":{"cache":false}}`})
	b.waitHead("ethereum", "0x12c")
	body := rpc.Request(1, "eth_getBalance", anvil.DevAddress, "0x10")
	want := s.direct(n, body)
	for i := range 100 {
		r := b.Post("ethereum", body)
		if i == 0 {
			s.Record("eth_getBalance at block 16", r, NormRPC)
		}
		s.must(r.Status == http.StatusOK && bytes.Equal(r.Body, want.Body), "old read %d: %d %s, want %s", i, r.Status, r.Body, want.Body)
	}
	fulls := full1.Count("eth_getBalance") + full2.Count("eth_getBalance")
	s.must(arch.Count("eth_getBalance") == 100, "the archive answered %d of 100 old reads", arch.Count("eth_getBalance"))
	s.must(fulls <= 8, "the full nodes were asked %d times for state they proved they lack", fulls)
	s.Note("old reads", fmt.Sprintf("100 answered by the archive; the full nodes asked at most once each per runtime: %t", fulls <= 8))
}
