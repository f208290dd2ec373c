package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/evmlb/evmlb/e2e/internal/anvil"
	"github.com/evmlb/evmlb/e2e/internal/faultproxy"
	"github.com/evmlb/evmlb/e2e/internal/rpc"
	"github.com/evmlb/evmlb/e2e/internal/target"
)

// finalityView is the part of /admin/chains this file reads.
type finalityView struct {
	Chains []struct {
		Chain      string `json:"chain"`
		Finalized  uint64 `json:"finalized"`
		CacheEpoch uint64 `json:"cache_epoch"`
		Table      []struct {
			Name      string `json:"name"`
			Finalized uint64 `json:"finalized"`
		} `json:"table"`
	} `json:"chains"`
}

// Issue 19: against anvil (whose "finalized" block is its head minus two epochs of 32 slots: 36 at block 100),
// /admin/chains shows the chain's finalized block and each upstream's, as learnt by the health checks; POST
// /admin/cache/purge moves the chain's cache epoch, which /admin/chains then shows; a devnet restarted under the
// balancer moves it again.
func scFinality(s *S) {
	n := s.Node(31337, 100)
	direct := s.direct(n, rpc.Request(1, "eth_getBlockByNumber", "finalized", false))
	var blk struct {
		Number string `json:"number"`
	}
	if m, err := rpc.Decode(direct.Body); err == nil {
		_ = json.Unmarshal(m.Result, &blk)
	}
	var want uint64
	_, err := fmt.Sscanf(blk.Number, "0x%x", &want)
	s.must(err == nil && want != 0, "anvil's finalized block: %s", direct.Body)
	var ups []target.Upstream
	var proxies []*faultproxy.Proxy
	for i := range 2 {
		px, up := s.Upstream(n, "ethereum", fmt.Sprintf("u%d", i))
		ups, proxies = append(ups, up), append(proxies, px)
	}
	b := s.Start(ups, nil)
	b.Post("ethereum", rpc.Request(1, "eth_blockNumber")) // wakes the chain
	var v finalityView
	b.waitAdmin("/admin/chains", fmt.Sprintf("the chain's finalized block %d", want), func(body []byte) bool {
		return json.Unmarshal(body, &v) == nil && len(v.Chains) == 1 && v.Chains[0].Finalized == want
	})
	c := v.Chains[0]
	for _, u := range c.Table {
		s.must(u.Finalized == want, "upstream %s: finalized %d, want %d", u.Name, u.Finalized, want)
	}
	s.must(c.CacheEpoch != 0, "no cache epoch: %+v", c)
	s.Note("finalized", fmt.Sprintf("the chain's finalized block is anvil's: head 100, finalized %d", want))

	r := b.Admin(http.MethodPost, "/admin/cache/purge?chain=ethereum")
	var purged struct {
		Chains []struct {
			Chain      string `json:"chain"`
			CacheEpoch uint64 `json:"cache_epoch"`
			Error      string `json:"error"`
		} `json:"chains"`
	}
	s.must(r.Status == http.StatusOK && json.Unmarshal(r.Body, &purged) == nil && len(purged.Chains) == 1 &&
		purged.Chains[0].Chain == "ethereum" && purged.Chains[0].Error == "" && purged.Chains[0].CacheEpoch > c.CacheEpoch,
		"purge: %d %s (epoch was %d)", r.Status, r.Body, c.CacheEpoch)
	s.Note("purge", fmt.Sprintf("POST /admin/cache/purge?chain=ethereum: %d, the epoch moved up", r.Status))
	var after finalityView
	b.waitAdmin("/admin/chains", "the new cache epoch", func(body []byte) bool {
		return json.Unmarshal(body, &after) == nil && len(after.Chains) == 1 && after.Chains[0].CacheEpoch == purged.Chains[0].CacheEpoch
	})

	// The devnet restarts under the running balancer (a fresh anvil at block 1, finalized block 0: none): once the
	// head floor yields to it, the head is below the finalized block decided before, and the epoch moves again.
	fresh := anvil.StartT(s.T, 31337)
	if _, err := fresh.Mine(s.Ctx, 1); err != nil {
		s.Fatal(err)
	}
	for _, px := range proxies {
		px.SetTarget(fresh.URL)
	}
	b.waitAdmin("/admin/chains", "the epoch to move after the devnet restarted", func(body []byte) bool {
		var v finalityView
		return json.Unmarshal(body, &v) == nil && len(v.Chains) == 1 && v.Chains[0].CacheEpoch > purged.Chains[0].CacheEpoch &&
			v.Chains[0].Finalized == 0
	})
	s.Note("devnet restarted", "the epoch moved and finality is unknown")

	r = b.Do(http.MethodGet, "/admin/cache/purge", nil, map[string]string{"Authorization": basic("admin", s.Password)})
	s.Record("GET /admin/cache/purge", r, NormRPC)
	r = b.Admin(http.MethodPost, "/admin/cache/purge?chain=nope")
	s.Record("POST /admin/cache/purge?chain=nope", r, NormRPC)
}
