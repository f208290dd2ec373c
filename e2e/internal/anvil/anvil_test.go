package anvil

import (
	"context"
	"net/http"
	"os"
	"testing"

	"github.com/evmlb/evmlb/e2e/internal/rpc"
)

func startOrSkip(t *testing.T, chainID uint64) *Node {
	t.Helper()
	if _, err := Binary(); err != nil {
		if os.Getenv("EVMLB_E2E_REQUIRED") == "1" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	return StartT(t, chainID)
}

func TestStartMineStop(t *testing.T) {
	ctx := context.Background()
	n := startOrSkip(t, 4242)
	id, err := n.Quantity(ctx, "eth_chainId")
	if err != nil || id != 4242 {
		t.Fatalf("eth_chainId = %d, %v; want 4242", id, err)
	}
	head, err := n.BlockNumber(ctx)
	if err != nil || head != 0 {
		t.Fatalf("fresh head = %d, %v; want 0", head, err)
	}
	if head, err = n.Mine(ctx, 7); err != nil || head != 7 {
		t.Fatalf("after mining 7: head = %d, %v", head, err)
	}
	if head, err = n.MineTo(ctx, 12); err != nil || head != 12 {
		t.Fatalf("MineTo(12) = %d, %v", head, err)
	}
	if head, err = n.MineTo(ctx, 3); err != nil || head != 12 {
		t.Fatalf("MineTo below head = %d, %v; want 12 unchanged", head, err)
	}
	bal, err := n.Call(ctx, "eth_getBalance", DevAddress, "latest")
	if err != nil || string(bal) == `"0x0"` {
		t.Fatalf("dev account balance = %s, %v; want funded", bal, err)
	}

	n.Stop()
	if _, err := n.BlockNumber(ctx); err == nil {
		t.Fatal("node still answers after Stop")
	}
	n.Stop() // idempotent
}

// TestNeedsJSONContentType documents the anvil behaviour the balancer must
// cope with: without Content-Type: application/json anvil rejects the request.
func TestNeedsJSONContentType(t *testing.T) {
	n := startOrSkip(t, 0)
	resp, err := rpc.Do(context.Background(), nil, http.MethodPost, n.URL,
		rpc.Request(1, "eth_chainId"), map[string]string{"Content-Type": "text/plain"})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Status == http.StatusOK {
		if m, err := rpc.Decode(resp.Body); err == nil && m.Error == nil {
			t.Fatalf("anvil accepted a text/plain request: %s", resp.Body)
		}
	}
}

func TestTwoNodesDistinctPorts(t *testing.T) {
	a := startOrSkip(t, 1)
	b := startOrSkip(t, 2)
	if a.URL == b.URL {
		t.Fatalf("both nodes on %s", a.URL)
	}
}
