package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"math/big"
	"reflect"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/ethclient"

	"github.com/evmlb/evmlb/e2e/internal/anvil"
	"github.com/evmlb/evmlb/e2e/internal/target"
)

// Issue 21's smoke: go-ethereum's ethclient over the balancer's WebSocket (ws://…/ethereum) against an anvil
// mining a block a second behind two upstreams: a plain call answered on the socket (eth_chainId), then
// SubscribeNewHead receives wsSmokeHeads consecutive heads, each with the node's hash at its number; in the wazero
// host the objects' runtime is evicted after the second head, the socket open; then SubscribeFilterLogs on a
// contract's address gets the logs of 3 transactions, each once, equal to the node's eth_getLogs.
const wsSmokeHeads = 5

func scWSSmoke(s *S) {
	n := anvil.StartTWith(s.T, anvil.Options{ChainID: 31337, Args: []string{"--block-time", "1"}})
	s.name(strings.TrimPrefix(n.URL, "http://"), "<node 31337>")
	_, u1 := s.Upstream(n, "ethereum", "one")
	_, u2 := s.Upstream(n, "ethereum", "two")
	b := s.Start([]target.Upstream{u1, u2}, nil)
	ctx, cancel := context.WithTimeout(s.Ctx, 60*time.Second)
	defer cancel()
	c, err := s.ethclient(ctx, "ws://"+strings.TrimPrefix(b.Inst.URL, "http://")+"/ethereum")
	if err != nil {
		s.Fatalf("dial ws: %v\n--- %s log ---\n%s", err, b.Inst.Host, b.Inst.Logs())
	}
	defer c.Close()
	id, err := c.ChainID(ctx)
	if err != nil || id.Uint64() != 31337 {
		s.Fatalf("eth_chainId on the socket: %v %v", id, err)
	}
	// The node's own subscription, for the delay: when each height arrived there.
	direct, err := ethclient.DialContext(ctx, "ws://"+strings.TrimPrefix(n.URL, "http://"))
	if err != nil {
		s.Fatalf("dial the node's ws: %v", err)
	}
	defer direct.Close()
	nodeHeads := make(chan *types.Header, 64)
	nodeSub, err := direct.SubscribeNewHead(ctx, nodeHeads)
	if err != nil {
		s.Fatalf("the node's newHeads: %v", err)
	}
	defer nodeSub.Unsubscribe()
	var mu sync.Mutex
	atNode := map[uint64]time.Time{}
	go func() {
		for h := range nodeHeads {
			mu.Lock()
			atNode[h.Number.Uint64()] = time.Now()
			mu.Unlock()
		}
	}()
	heads := make(chan *types.Header, 64)
	sub, err := c.SubscribeNewHead(ctx, heads)
	if err != nil {
		s.Fatalf("eth_subscribe newHeads: %v\n--- %s log ---\n%s", err, b.Inst.Host, b.Inst.Logs())
	}
	defer sub.Unsubscribe()
	start := time.Now()
	var got []*types.Header
	var delays []time.Duration
	evicted := false
	for len(got) < wsSmokeHeads {
		select {
		case h := <-heads:
			got = append(got, h)
			if len(got) == 2 && s.Host.Name() == "wazero" {
				// The objects' runtime evicted between two heads, sockets open (evmlb serve's SIGUSR1): the
				// follower goes on from storage and the attachment, no gap, no repeat.
				if err := syscall.Kill(b.Inst.Pid(), syscall.SIGUSR1); err != nil {
					s.Fatalf("SIGUSR1: %v", err)
				}
				evicted = true
			}
			mu.Lock()
			if at, ok := atNode[h.Number.Uint64()]; ok {
				delays = append(delays, time.Since(at))
			}
			mu.Unlock()
		case err := <-sub.Err():
			s.Fatalf("subscription ended: %v", err)
		case <-ctx.Done():
			s.Fatalf("%d heads in %v, want %d\n--- %s log ---\n%s", len(got), time.Since(start), wsSmokeHeads, b.Inst.Host, b.Inst.Logs())
		}
	}
	for i, h := range got {
		if i > 0 && h.Number.Uint64() != got[i-1].Number.Uint64()+1 {
			s.Errorf("head %d after %d: a gap or a repeat", h.Number, got[i-1].Number)
		}
		var node struct{ Hash string }
		if err := callInto(ctx, n, &node, "eth_getBlockByNumber", "0x"+h.Number.Text(16), false); err != nil {
			s.Fatalf("node block %d: %v", h.Number, err)
		}
		if !strings.EqualFold(node.Hash, h.Hash().Hex()) {
			s.Errorf("head %d: hash %s (computed from the header sent), the node's %s", h.Number, h.Hash().Hex(), node.Hash)
		}
	}
	wsSmokeLogs(s, ctx, n, c)
	// The eviction waits for the objects runtime to be idle, as Cloudflare hibernates only an idle object: no alarm
	// of the follower is cut between its store and its sends (the heads above are consecutive across it).
	if evicted && !strings.Contains(b.Inst.Logs(), wsEvictedLine+"1 WebSockets stay open;") {
		s.Errorf("no eviction with the socket open in the host's log:\n%s", b.Inst.Logs())
	}
	if evicted && !strings.Contains(b.Inst.Logs(), "; with no call in flight)") {
		s.Errorf("the eviction cut calls in flight:\n%s", b.Inst.Logs())
	}
	if strings.Contains(b.Inst.Logs(), "Go runtime exited") {
		s.Errorf("a call was cut by the eviction:\n%s", b.Inst.Logs())
	}
	slices.Sort(delays)
	s.Logf("MEASURE ws-smoke: %d heads from %d in %v; delay after the node's own newHeads, sorted: %v", len(got), got[0].Number, time.Since(start), delays)
	s.Note("heads", "consecutive, each with the node's hash")
}

// callInto calls method on the node and decodes its result into out.
func callInto(ctx context.Context, n *anvil.Node, out any, method string, params ...any) error {
	raw, err := n.Call(ctx, method, params...)
	if err != nil {
		return err
	}
	return json.Unmarshal(raw, out)
}

// wsSmokeLogs: SubscribeFilterLogs on the emitter's address while transactions to it (2 logs each) are mined:
// wsSmokeLogTxs transactions' logs arrive, each once, in order, equal to the node's eth_getLogs over their blocks.
func wsSmokeLogs(s *S, ctx context.Context, n *anvil.Node, c *ethclient.Client) {
	emitter := common.HexToAddress(logsEmitter)
	_, err := n.Call(ctx, "anvil_setCode", logsEmitter, anvil.LogsCode)
	s.must(err == nil, "anvil_setCode: %v", err)
	logs := make(chan types.Log, 256)
	sub, err := c.SubscribeFilterLogs(ctx, ethereum.FilterQuery{Addresses: []common.Address{emitter}}, logs)
	if err != nil {
		s.Fatalf("eth_subscribe logs: %v", err)
	}
	defer sub.Unsubscribe()
	const txs, perTx = 3, 2
	for range txs {
		_, err := n.Call(ctx, "eth_sendTransaction", map[string]string{"from": anvil.DevAddress, "to": logsEmitter,
			"data": fmt.Sprintf("0x%064x", perTx), "gas": "0x100000"})
		s.must(err == nil, "eth_sendTransaction: %v", err)
	}
	var got []types.Log
	for len(got) < txs*perTx {
		select {
		case l := <-logs:
			got = append(got, l)
		case err := <-sub.Err():
			s.Fatalf("logs subscription ended: %v", err)
		case <-ctx.Done():
			s.Fatalf("%d logs, want %d", len(got), txs*perTx)
		}
	}
	direct, err := ethclient.DialContext(ctx, n.URL)
	s.must(err == nil, "dial anvil: %v", err)
	defer direct.Close()
	want, err := direct.FilterLogs(ctx, ethereum.FilterQuery{Addresses: []common.Address{emitter},
		FromBlock: new(big.Int).SetUint64(got[0].BlockNumber), ToBlock: new(big.Int).SetUint64(got[len(got)-1].BlockNumber)})
	s.must(err == nil, "FilterLogs direct: %v", err)
	if !reflect.DeepEqual(got, want) {
		s.Errorf("logs over the socket differ from the node's eth_getLogs:\n got %+v\nwant %+v", got, want)
	}
	s.Note("logs", fmt.Sprintf("%d logs, equal to the node's", len(got)))
}
