package app

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/evmlb/evmlb/internal/adminapi"
	"github.com/evmlb/evmlb/internal/evmtest"
	"github.com/evmlb/evmlb/internal/jsonrpc"
)

// An upstream answering 307 to another server: the redirect is not followed (the other server receives nothing,
// from requests or health checks), the read goes to the next upstream, and the 3xx's body is never served.
func TestRedirectNotFollowed(t *testing.T) {
	trap := evmtest.NewTrap(t)
	bad := evmtest.NewNode(t, "bad", 1, 105)
	good := evmtest.NewNode(t, "good", 1, 100)
	h := newHarness(t, nil, upstream{"eth", "bad", bad.URL}, upstream{"eth", "good", good.URL})
	h.admin(http.MethodPost, "/admin/init_upstreams", nil)
	h.checks(0) // both healthy; bad is higher
	bad.SetRedirect(trap.URL)
	status, got := h.post("eth", rpcBody)
	if status != http.StatusOK || servedBy(t, got) != "good" {
		t.Fatalf("got %d %s", status, got)
	}
	var chains struct{ Chains []adminapi.ChainSummary }
	h.admin(http.MethodGet, "/admin/chains", &chains)
	if row := chains.Chains[0].Table[0]; row.Name != "bad" || string(row.LastError) != "http_redirect" {
		t.Errorf("bad's row %+v, want class http_redirect", row)
	}
	h.checks(5 * time.Second) // health checks of bad meet the redirect too

	// A write is not sent again after a redirect (the upstream got it); every upstream redirecting: no answer.
	good.SetRedirect(trap.URL)
	for _, body := range []string{
		`{"jsonrpc":"2.0","id":2,"method":"eth_sendRawTransaction","params":["0x00"]}`,
		`{"jsonrpc":"2.0","id":3,"method":"eth_getBalance","params":["0x0","latest"]}`,
	} {
		status, got = h.post("eth", body)
		if status/100 == 2 || strings.Contains(got, evmtest.RedirectMarker) || strings.Contains(got, evmtest.TrapMarker) {
			t.Errorf("%s: got %d %s", body, status, got)
		}
		if c := errorCode(t, got); c != jsonrpc.ErrNoUpstream.Code && c != jsonrpc.ErrUpstreamFailed.Code {
			t.Errorf("%s: code %d", body, c)
		}
	}
	if trap.Hits() != 0 {
		t.Errorf("the redirect target received %d requests", trap.Hits())
	}
}
