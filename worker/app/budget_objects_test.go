package app

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/evmlb/evmlb/internal/clients"
	"github.com/evmlb/evmlb/internal/evmtest"
)

// TestBudgetsThroughObjects: the real leases, through the budget objects (memplatform): a key's burst passes
// and the next request is refused with Retry-After; an upstream's max_rps sends the rest to the other upstream;
// /admin/clients shows the key's object; clear_storage forgets the day's count.
func TestBudgetsThroughObjects(t *testing.T) {
	a := evmtest.NewNode(t, "a", 1, 100)
	b := evmtest.NewNode(t, "b", 1, 100)
	keys := `[{"name":"app","key_sha256":"` + clients.Hash(keyApp) + `","rps":5,"burst":10,"per_day":1000}]`
	cfg := `{"chains":{"eth":{"cache":false}},"upstreams":[{"chain":"eth","name":"a","upstream":"` + a.URL + `","max_rps":2,"max_burst":3},{"chain":"eth","name":"b","upstream":"` + b.URL + `"}]}`
	h := newHarness(t, map[string]string{"CLIENT_KEYS": keys, "UPSTREAM_CONFIG": cfg}, upstream{"eth", "a", a.URL}, upstream{"eth", "b", b.URL})
	h.secrets = append(h.secrets, keyApp, clients.Hash(keyApp), keyApp[len(clients.KeyPrefix):])
	call := `{"jsonrpc":"2.0","id":7,"method":"eth_protocolVersion"}` // a method no health check calls
	count := func(n *evmtest.Node) int {
		c := 0
		for _, m := range n.Methods() {
			if m == "eth_protocolVersion" {
				c++
			}
		}
		return c
	}
	// The first leases (their buckets start with half a second's worth), until a has had one: routing may begin
	// with b.
	warm := 0
	for ; warm < 5 && count(a) == 0; warm++ {
		h.doWith(http.MethodPost, "/eth", call, bearer(keyApp))
	}
	h.host.Clock().Advance(3 * time.Second)
	h.host.Wait() // full: the key's 10, a's 3
	a0, b0 := count(a), count(b)
	for i := range 10 { // the key's burst; the clock does not move
		if status, _, body := h.doWith(http.MethodPost, "/eth", call, bearer(keyApp)); status != http.StatusOK {
			t.Fatalf("request %d: %d %s", i, status, body)
		}
	}
	status, hdr, body := h.doWith(http.MethodPost, "/eth", call, bearer(keyApp))
	if ra, _ := strconv.Atoi(hdr.Get("Retry-After")); status != http.StatusTooManyRequests || errorCode(t, body) != -32005 || ra < 1 {
		t.Errorf("past the burst: %d Retry-After %q %s", status, hdr.Get("Retry-After"), body)
	}
	if ga, gb := count(a)-a0, count(b)-b0; ga != 3 || gb != 7 {
		t.Errorf("upstream a (max_rps 2, burst 3) got %d, b %d: want 3 and 7", ga, gb)
	}
	h.host.Wait()
	var ac AdminClients
	h.admin(http.MethodGet, "/admin/clients", &ac)
	if len(ac.Clients) != 1 || ac.Clients[0].Budget == nil || ac.Clients[0].Budget.Isolates != 1 {
		t.Fatalf("/admin/clients: %+v", ac)
	}
	// The day's count reaches the object with the next ask, a second after the grant.
	h.host.Clock().Advance(1500 * time.Millisecond)
	h.host.Wait()
	h.admin(http.MethodGet, "/admin/clients", &ac)
	if got := ac.Clients[0].Budget.DayUsed; got != uint64(10+warm) {
		t.Errorf("day used %d, want %d", got, 10+warm)
	}
	var cleared map[string]any
	h.admin(http.MethodPost, "/admin/clear_storage", &cleared)
	if cleared["cleared_budgets"] != 2.0 {
		t.Errorf("clear_storage: %v, want 2 budgets cleared (the key's, a's)", cleared)
	}
	h.admin(http.MethodGet, "/admin/clients", &ac)
	if got := ac.Clients[0].Budget.DayUsed; got != 0 || strings.Contains(strings.Join(h.host.Logs(), "\n"), "could not be asked") {
		t.Errorf("after clear_storage: day used %d, want 0", got)
	}
	h.checkNoSecrets()
}
