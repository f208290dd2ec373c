package e2e

import (
	"context"
	"errors"
	"math/big"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/ethclient"

	"github.com/evmlb/evmlb/e2e/internal/anvil"
	"github.com/evmlb/evmlb/e2e/internal/faultproxy"
	"github.com/evmlb/evmlb/e2e/internal/target"
)

// TestEthclient drives the balancer with go-ethereum's ethclient, a client
// nobody here wrote: reads agree with the node, and a signed transaction sent
// through the balancer is mined and reached each upstream exactly once (it is broadcast).
func TestEthclient(t *testing.T) {
	for _, h := range []target.Host{wazeroHost, workerdHost} {
		t.Run(h.Name(), func(t *testing.T) {
			needHost(t, h)
			testEthclient(t, h)
		})
	}
}

func testEthclient(t *testing.T, h target.Host) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	n := anvil.StartT(t, 31337)
	if _, err := n.Mine(ctx, 3); err != nil {
		t.Fatal(err)
	}
	var proxies []*faultproxy.Proxy
	var ups []target.Upstream
	for _, name := range []string{"one", "two"} {
		p := faultproxy.StartT(t, n.URL, faultproxy.Options{Path: "/v2/KEY"})
		proxies = append(proxies, p)
		ups = append(ups, target.Upstream{Chain: "ethereum", Name: name, URL: p.URL()})
	}
	inst := target.Start(t, h, target.Config{Upstreams: ups, AdminPassword: "pw", Env: DefaultEnv})

	lb, err := ethclient.DialContext(ctx, inst.URL+"/ethereum")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(lb.Close)
	node, err := ethclient.DialContext(ctx, n.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(node.Close)
	fail := func(what string, err error) {
		t.Helper()
		t.Fatalf("%s through the balancer: %v\n--- %s log ---\n%s", what, err, h.Name(), inst.Logs())
	}

	chainID, err := lb.ChainID(ctx)
	if err != nil {
		fail("ChainID", err)
	}
	if chainID.Uint64() != 31337 {
		t.Fatalf("ChainID = %v, want 31337", chainID)
	}
	head, err := lb.BlockNumber(ctx)
	if err != nil {
		fail("BlockNumber", err)
	}
	if head != 3 {
		t.Fatalf("BlockNumber = %d, want 3", head)
	}
	hdr, err := lb.HeaderByNumber(ctx, big.NewInt(2))
	if err != nil {
		fail("HeaderByNumber", err)
	}
	want, err := node.HeaderByNumber(ctx, big.NewInt(2))
	if err != nil {
		t.Fatal(err)
	}
	if hdr.Hash() != want.Hash() {
		t.Fatalf("header 2 hash %s, the node's %s", hdr.Hash(), want.Hash())
	}
	from := common.HexToAddress(anvil.DevAddress)
	bal, err := lb.BalanceAt(ctx, from, nil)
	if err != nil {
		fail("BalanceAt", err)
	}
	wantBal, _ := node.BalanceAt(ctx, from, nil)
	if bal.Cmp(wantBal) != 0 {
		t.Fatalf("balance %v, the node's %v", bal, wantBal)
	}

	// A signed EIP-1559 transfer from anvil's first dev account.
	key, err := crypto.HexToECDSA(anvil.DevKey)
	if err != nil {
		t.Fatal(err)
	}
	nonce, err := lb.PendingNonceAt(ctx, from)
	if err != nil {
		fail("PendingNonceAt", err)
	}
	tip, err := lb.SuggestGasTipCap(ctx)
	if err != nil {
		fail("SuggestGasTipCap", err)
	}
	latest, err := lb.HeaderByNumber(ctx, nil)
	if err != nil {
		fail("HeaderByNumber(latest)", err)
	}
	to := common.HexToAddress("0x00000000000000000000000000000000000e2e01")
	value := big.NewInt(1_000_000_007)
	tx, err := types.SignNewTx(key, types.LatestSignerForChainID(chainID), &types.DynamicFeeTx{
		ChainID:   chainID,
		Nonce:     nonce,
		GasTipCap: tip,
		GasFeeCap: new(big.Int).Add(tip, new(big.Int).Mul(latest.BaseFee, big.NewInt(2))),
		Gas:       21000,
		To:        &to,
		Value:     value,
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range proxies {
		p.ResetCounts()
	}
	if err := lb.SendTransaction(ctx, tx); err != nil {
		fail("SendTransaction", err)
	}
	var receipt *types.Receipt
	for receipt == nil {
		receipt, err = lb.TransactionReceipt(ctx, tx.Hash())
		if err != nil && !errors.Is(err, ethereum.NotFound) {
			fail("TransactionReceipt", err)
		}
		if receipt == nil {
			select {
			case <-ctx.Done():
				t.Fatalf("no receipt for %s: %v", tx.Hash(), ctx.Err())
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	if receipt.Status != types.ReceiptStatusSuccessful {
		t.Fatalf("receipt status %d", receipt.Status)
	}
	for i, p := range proxies { // broadcast (broadcast_writes): each upstream, exactly once
		if sent := p.Count("eth_sendRawTransaction"); sent != 1 {
			t.Fatalf("eth_sendRawTransaction reached upstream %d %d times, want exactly once", i, sent)
		}
	}
	got, err := lb.BalanceAt(ctx, to, receipt.BlockNumber)
	if err != nil {
		fail("BalanceAt(recipient)", err)
	}
	if got.Cmp(value) != 0 {
		t.Fatalf("recipient balance %v, want %v", got, value)
	}
}
