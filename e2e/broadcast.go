package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/evmlb/evmlb/e2e/internal/anvil"
	"github.com/evmlb/evmlb/e2e/internal/faultproxy"
	"github.com/evmlb/evmlb/e2e/internal/rpc"
	"github.com/evmlb/evmlb/e2e/internal/target"
)

// Issue 20: an eth_sendRawTransaction goes to every upstream in rotation at once. With three upstreams over one
// node, one down (its proxy refuses connections) and one that accepts the transaction (its proxy hands it to the
// node) and then answers a network error (resets the connection, faultproxy.AcceptReset), the client gets the
// transaction's hash at once, the node mines it (a receipt within two blocks), and the two live upstreams each
// received it exactly once (the proxies' counts); the one down, never. The time to the answer and the receipt's
// distance from the head are logged (-v); the distance is also noted.
func scBroadcastTx(s *S) {
	n := s.Node(31337, 1)
	pDown, uDown := s.Upstream(n, "ethereum", "down")
	pDrop, uDrop := s.Upstream(n, "ethereum", "drop")
	pLive, uLive := s.Upstream(n, "ethereum", "live")
	b := s.Start([]target.Upstream{uDown, uDrop, uLive}, nil)
	s.must(pDrop.SetFault(faultproxy.AcceptReset, "eth_sendRawTransaction") == nil, "SetFault")
	s.must(pDown.SetFault(faultproxy.Refuse) == nil, "SetFault")
	raw, hash := signedTransfer(s, n)
	head, err := n.BlockNumber(s.Ctx)
	s.must(err == nil, "BlockNumber")
	// A read first, so that the time measured is the broadcast's, not the isolate's first snapshot fetch.
	s.must(b.Post("ethereum", rpc.Request(0, "eth_chainId")).Status == http.StatusOK, "eth_chainId")
	for _, p := range []*faultproxy.Proxy{pDown, pDrop, pLive} {
		p.ResetCounts()
	}
	start := time.Now()
	r := b.Post("ethereum", rpc.Request(1, "eth_sendRawTransaction", raw))
	took := time.Since(start)
	s.Record("eth_sendRawTransaction", r, NormRPCNoResult)
	var a struct{ Result string }
	if r.Status != http.StatusOK || json.Unmarshal(r.Body, &a) != nil || a.Result != hash {
		s.Errorf("eth_sendRawTransaction: %d %s, want the hash %s", r.Status, r.Body, hash)
	}
	var mined uint64
	for mined == 0 && s.Ctx.Err() == nil { // anvil mines each transaction as it comes (automine)
		rc, err := n.Call(s.Ctx, "eth_getTransactionReceipt", hash)
		var rec struct{ BlockNumber hexutil.Uint64 }
		if err == nil && string(rc) != "null" && json.Unmarshal(rc, &rec) == nil {
			mined = uint64(rec.BlockNumber)
			break
		}
		select {
		case <-s.Ctx.Done():
		case <-time.After(50 * time.Millisecond):
		}
	}
	if mined == 0 || mined > head+2 {
		s.Errorf("receipt in block %d, want one within two blocks of %d", mined, head)
	}
	if took > atOnce {
		s.Errorf("the hash was answered in %v, want at once (under %v)", took, atOnce)
	}
	sends := fmt.Sprintf("down=%d drop=%d live=%d", pDown.Count("eth_sendRawTransaction"), pDrop.Count("eth_sendRawTransaction"), pLive.Count("eth_sendRawTransaction"))
	if sends != "down=0 drop=1 live=1" {
		s.Errorf("eth_sendRawTransaction reached the proxies %s, want down=0 drop=1 live=1", sends)
	}
	if f := pDrop.Forwarded("eth_sendRawTransaction"); f != 1 {
		s.Errorf("the dropping upstream handed the transaction to its node %d times, want 1 (accepted, then reset)", f)
	}
	s.Note("sends", sends)
	if mined > head {
		s.Note("receipt", fmt.Sprintf("head+%d", mined-head))
	}
	s.Logf("MEASURE broadcast-tx: hash answered in %v; receipt in block %d, head+%d (head was %d); sends %s; lookups by hash: drop=%d live=%d",
		took, mined, mined-head, head, sends, pDrop.Count("eth_getTransactionByHash"), pLive.Count("eth_getTransactionByHash"))
}

// atOnce bounds the time to a broadcast's answer: no upstream's failure or slowness is waited for, so the answer
// takes one local round trip to the fastest upstream (milliseconds); the bound leaves room for a loaded machine.
const atOnce = 2 * time.Second

// signedTransfer is a legacy transfer from anvil's first dev account at its next nonce on n, signed (EIP-155), as
// 0x-hex, and its hash.
func signedTransfer(s *S, n *anvil.Node) (raw, hash string) {
	raw, hash, err := signTransfer(s.Ctx, n)
	s.must(err == nil, "signing a transfer: %v", err)
	return raw, hash
}

// signTransfer is signedTransfer's work.
func signTransfer(ctx context.Context, n *anvil.Node) (raw, hash string, err error) {
	key, err := crypto.HexToECDSA(anvil.DevKey)
	if err != nil {
		return "", "", err
	}
	nonce, err := n.Quantity(ctx, "eth_getTransactionCount", anvil.DevAddress, "pending")
	if err != nil {
		return "", "", err
	}
	to := common.HexToAddress("0x00000000000000000000000000000000000e2e20")
	tx, err := types.SignTx(types.NewTx(&types.LegacyTx{Nonce: nonce, GasPrice: big.NewInt(20_000_000_000), Gas: 21000,
		To: &to, Value: big.NewInt(20)}), types.NewEIP155Signer(big.NewInt(31337)), key)
	if err != nil {
		return "", "", err
	}
	b, err := tx.MarshalBinary()
	if err != nil {
		return "", "", err
	}
	return hexutil.Encode(b), strings.ToLower(tx.Hash().Hex()), nil
}
