package metrics

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// TestClientRequests: a client's counts add up across isolates, make a Chain non-empty, and are written with
// their chain, client and outcome.
func TestClientRequests(t *testing.T) {
	var a, b, sum Chain
	if !a.Empty() {
		t.Fatal("empty")
	}
	a.ClientRequest("app1", ClientOK)
	a.ClientRequest("app1", ClientOK)
	b.ClientRequest("app1", ClientLimited)
	b.ClientRequest(ClientUnknown, ClientUnauthorized)
	if a.Empty() || b.Empty() {
		t.Fatal("a client's count is not empty")
	}
	sum.Add(&a, time.Time{}, nil)
	sum.Add(&b, time.Unix(600, 0), func(string) bool { return false })
	if sum.Clients["app1"][ClientOK] != 2 || sum.Clients["app1"][ClientLimited] != 1 || sum.Clients[ClientUnknown][ClientUnauthorized] != 1 {
		t.Errorf("sum %v", sum.Clients)
	}
	if len(sum.Minutes) != 0 {
		t.Errorf("client counts are not client traffic of the history: %v", sum.Minutes)
	}
	var out bytes.Buffer
	if err := Write(&out, []ChainView{{Name: "eth", Metrics: &sum}}, BreakerStates); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`evmlb_client_requests_total{chain="eth",client="app1",outcome="ok"} 2`,
		`evmlb_client_requests_total{chain="eth",client="app1",outcome="limited"} 1`,
		`evmlb_client_requests_total{chain="eth",client="unknown",outcome="unauthorized"} 1`,
	} {
		if !strings.Contains(out.String(), want+"\n") {
			t.Errorf("no %s in\n%s", want, out.String())
		}
	}
}
