package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/ethclient"

	"github.com/evmlb/evmlb/e2e/internal/anvil"
	"github.com/evmlb/evmlb/e2e/internal/rpc"
)

// Issue 21's subscription check: go-ethereum's ethclient over a WebSocket (SubscribeNewHead and
// SubscribeFilterLogs on one connection) records every header and log with its arrival time, while the test sends
// a transaction to the logs emitter (anvil.LogsCode) each block and, in a reorg run, replaces the last 1, 2 or 3
// blocks with anvil_reorg (new blocks holding other transactions, so hashes and logs change). The verdict
// (checkWS): every height once and in order on a straight chain; on a reorg the new branch's headers from the fork
// point and, in wsBalancer mode, the old branch's logs with removed=true before the new ones; at the end the chain
// the client holds (the last header per number) is the node's, and its logs (added minus removed) are the node's
// eth_getLogs over the range. A second subscription straight to the node is the reference for the delivery delay.

// wsMode is what a stream must do on a reorg.
type wsMode int

const (
	// wsBalancer is issue 21's rule (geth's): newHeads from the fork point, and each log of the old branch again
	// with removed=true before any log of the new branch at or above its height.
	wsBalancer wsMode = iota
	// wsReference is anvil's own subscription (anvil 1.7.1, seen): newHeads from the fork point as well, but the
	// old branch's logs are never sent again as removed; the check drops them itself when a log of the new branch
	// at or below their height arrives (counted as Unremoved).
	wsReference
)

func (m wsMode) String() string {
	if m == wsReference {
		return "reference"
	}
	return "balancer"
}

// wsHead is a header as a client received it.
type wsHead struct {
	Number       uint64
	Hash, Parent common.Hash
	At           time.Time
}

// wsLog is a log as a client received it.
type wsLog struct {
	Log types.Log
	At  time.Time
}

// wsStream is one client's two subscriptions (newHeads, and logs when asked) on one WebSocket, recorded.
type wsStream struct {
	name   string
	client *ethclient.Client
	done   chan struct{}

	mu    sync.Mutex
	heads []wsHead
	logs  []wsLog
	err   error         // the first subscription error
	news  chan struct{} // a value after each header (capacity 1)
}

// dialWS connects to url (ws://…) with dial (nil: ethclient.DialContext), subscribes to newHeads and, when q is
// not nil, to logs with q, and records until Close.
func dialWS(ctx context.Context, name, url string, q *ethereum.FilterQuery, dial func(context.Context, string) (*ethclient.Client, error)) (*wsStream, error) {
	if dial == nil {
		dial = ethclient.DialContext
	}
	c, err := dial(ctx, url)
	if err != nil {
		return nil, fmt.Errorf("%s: dial %s: %w", name, url, err)
	}
	hch := make(chan *types.Header, 1024)
	hs, err := c.SubscribeNewHead(ctx, hch)
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("%s: SubscribeNewHead: %w", name, err)
	}
	var lch chan types.Log
	var lerr <-chan error
	if q != nil {
		lch = make(chan types.Log, 4096)
		ls, err := c.SubscribeFilterLogs(ctx, *q, lch)
		if err != nil {
			hs.Unsubscribe()
			c.Close()
			return nil, fmt.Errorf("%s: SubscribeFilterLogs: %w", name, err)
		}
		lerr = ls.Err()
	}
	st := &wsStream{name: name, client: c, done: make(chan struct{}), news: make(chan struct{}, 1)}
	go func() {
		defer close(st.done)
		herr := hs.Err()
		for {
			select {
			case h := <-hch:
				st.mu.Lock()
				st.heads = append(st.heads, wsHead{Number: h.Number.Uint64(), Hash: h.Hash(), Parent: h.ParentHash, At: time.Now()})
				st.mu.Unlock()
				select {
				case st.news <- struct{}{}:
				default:
				}
			case l := <-lch:
				st.mu.Lock()
				st.logs = append(st.logs, wsLog{Log: l, At: time.Now()})
				st.mu.Unlock()
			case err, ok := <-herr:
				st.fail(err, ok)
				return
			case err, ok := <-lerr:
				st.fail(err, ok)
				return
			}
		}
	}()
	return st, nil
}

func (st *wsStream) fail(err error, open bool) {
	if !open || err == nil {
		err = errors.New("subscription ended")
	}
	st.mu.Lock()
	if st.err == nil {
		st.err = err
	}
	st.mu.Unlock()
}

// Close ends the subscriptions and the connection, and waits for the recorder.
func (st *wsStream) Close() {
	st.client.Close()
	<-st.done
}

// snapshot returns what was received so far, and the subscription error if any.
func (st *wsStream) snapshot() ([]wsHead, []wsLog, error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	return slices.Clone(st.heads), slices.Clone(st.logs), st.err
}

// last returns the last header received (false when none).
func (st *wsStream) last() (wsHead, bool) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if len(st.heads) == 0 {
		return wsHead{}, false
	}
	return st.heads[len(st.heads)-1], true
}

// wsLogsSettle is how long a stream under test may take, after the node's last header, to deliver the logs it
// still owes: a stream that drops a log costs a run this long.
const wsLogsSettle = 3 * time.Second

// waitLogs waits until st holds every log of want (as sent, not removed), the subscription fails, or the bound
// passes; what is missing then is for checkWS to report.
func (st *wsStream) waitLogs(ctx context.Context, bound time.Duration, want []types.Log) {
	deadline := time.Now().Add(bound)
	for {
		_, got, err := st.snapshot()
		if err != nil || holdsLogs(got, want) || !time.Now().Before(deadline) {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// holdsLogs reports whether every log of want is among got, received as a log of the chain (not removed).
func holdsLogs(got []wsLog, want []types.Log) bool {
	for _, w := range want {
		if !slices.ContainsFunc(got, func(g wsLog) bool { return !g.Log.Removed && sameLog(g.Log, w) }) {
			return false
		}
	}
	return true
}

// waitHead waits until cond holds of the last header received, the subscription fails, or the bound passes.
func (st *wsStream) waitHead(ctx context.Context, bound time.Duration, what string, cond func(wsHead) bool) error {
	timer := time.NewTimer(bound)
	defer timer.Stop()
	for {
		if h, ok := st.last(); ok && cond(h) {
			return nil
		}
		st.mu.Lock()
		err := st.err
		st.mu.Unlock()
		if err != nil {
			return fmt.Errorf("%s: waiting for %s: the subscription failed: %w", st.name, what, err)
		}
		select {
		case <-st.news:
		case <-st.done:
		case <-timer.C:
			h, _ := st.last()
			return fmt.Errorf("%s: no %s within %v (last header %d %s)", st.name, what, bound, h.Number, h.Hash.Hex())
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// wsVerdict is checkWS's result.
type wsVerdict struct {
	Heads, Logs int // headers and logs received
	From, To    uint64
	Reemitted   int // headers received for a height received before (a new branch from the fork point)
	Removed     int // logs received with removed=true
	Unremoved   int // wsReference: logs of a replaced block the stream never sent as removed
	Held        int // logs the client holds at the end (added minus removed)
	Failures    []string
}

func (v *wsVerdict) fail(format string, args ...any) {
	if len(v.Failures) < 30 {
		v.Failures = append(v.Failures, fmt.Sprintf(format, args...))
	}
}

func (v wsVerdict) String() string {
	return fmt.Sprintf("heights %d-%d: %d headers (%d again from a fork point), %d logs (%d removed), %d logs held at the end, %d old-branch logs never removed, %d failures",
		v.From, v.To, v.Heads, v.Reemitted, v.Logs, v.Removed, v.Held, v.Unremoved, len(v.Failures))
}

// wsNode is the node's own view at the end of a run: its canonical hash per height, and its logs.
type wsNode struct {
	hashes map[uint64]common.Hash
	logs   []types.Log
}

// logKey identifies a log: its block's hash and its index in the block.
func logKey(l types.Log) string { return fmt.Sprintf("%s/%d", l.BlockHash.Hex(), l.Index) }

// checkWS judges one stream by mode against the node's chain and logs (node.hashes must cover the received
// heights; node.logs the range From..To with the stream's filter).
func checkWS(mode wsMode, heads []wsHead, logs []wsLog, node wsNode) wsVerdict {
	v := wsVerdict{Heads: len(heads), Logs: len(logs)}
	if len(heads) == 0 {
		v.fail("no header received")
		return v
	}
	canon := map[uint64]common.Hash{} // the client's chain: the last header per number
	seen := map[common.Hash]bool{}
	v.From = heads[0].Number
	for i, h := range heads {
		if seen[h.Hash] {
			v.fail("header %d %s received twice", h.Number, h.Hash.Hex())
		}
		seen[h.Hash] = true
		if i > 0 {
			prev := heads[i-1]
			switch {
			case h.Number == prev.Number+1:
				if h.Parent != prev.Hash {
					v.fail("header %d %s: its parent %s is not the header before it (%d %s): a reorg not sent again from the fork point",
						h.Number, h.Hash.Hex(), h.Parent.Hex(), prev.Number, prev.Hash.Hex())
				}
			case h.Number > prev.Number+1:
				v.fail("gap: header %d after %d (heights %d-%d never received)", h.Number, prev.Number, prev.Number+1, h.Number-1)
			default: // a new branch: it must start at the fork point, on the chain the client holds
				v.Reemitted++
				if p, ok := canon[h.Number-1]; h.Number-1 >= v.From && (!ok || p != h.Parent) {
					v.fail("header %d %s after %d: a new branch whose parent %s is not the header held at %d (%s): not from the fork point",
						h.Number, h.Hash.Hex(), prev.Number, h.Parent.Hex(), h.Number-1, p.Hex())
				}
			}
		}
		canon[h.Number] = h.Hash
	}
	v.To = heads[len(heads)-1].Number
	for n := v.From; n <= v.To; n++ {
		if canon[n] != node.hashes[n] {
			v.fail("height %d: the client holds %s, the node %s", n, canon[n].Hex(), node.hashes[n].Hex())
		}
	}

	held := map[string]types.Log{}
	byNum := map[uint64]map[string]bool{}
	var top uint64
	for _, rl := range logs {
		l := rl.Log
		k := logKey(l)
		if l.Removed {
			v.Removed++
			if _, ok := held[k]; !ok {
				v.fail("log %s of block %d sent as removed but not held (never sent, or removed twice)", k, l.BlockNumber)
				continue
			}
			delete(held, k)
			delete(byNum[l.BlockNumber], k)
			if node.hashes[l.BlockNumber] == l.BlockHash {
				v.fail("log %s of block %d sent as removed, but its block is the node's", k, l.BlockNumber)
			}
			continue
		}
		if _, ok := held[k]; ok {
			v.fail("log %s of block %d received twice", k, l.BlockNumber)
			continue
		}
		// Logs held at this height from another block, or above it: the old branch's, which must have come
		// back as removed first.
		for n := l.BlockNumber; n <= top; n++ {
			for ok := range byNum[n] {
				if held[ok].BlockHash == l.BlockHash {
					continue
				}
				if mode == wsBalancer {
					v.fail("log %s of block %d arrived while log %s of the replaced block %d %s was never sent as removed",
						k, l.BlockNumber, ok, n, held[ok].BlockHash.Hex())
				}
				v.Unremoved++
				delete(held, ok)
				delete(byNum[n], ok)
			}
		}
		held[k] = l
		if byNum[l.BlockNumber] == nil {
			byNum[l.BlockNumber] = map[string]bool{}
		}
		byNum[l.BlockNumber][k] = true
		top = max(top, l.BlockNumber)
	}
	if mode == wsReference { // the stream never removes: drop what the final chain replaced
		for k, l := range held {
			if node.hashes[l.BlockNumber] != l.BlockHash {
				v.Unremoved++
				delete(held, k)
			}
		}
	}
	v.Held = len(held)
	want := map[string]types.Log{}
	for _, l := range node.logs {
		want[logKey(l)] = l
	}
	for k, l := range held {
		w, ok := want[k]
		switch {
		case !ok:
			v.fail("the client holds log %s of block %d, the node's eth_getLogs has no such log", k, l.BlockNumber)
		case !sameLog(l, w):
			v.fail("log %s: the client holds %s, the node %s", k, describeLog(l), describeLog(w))
		}
	}
	for k, w := range want {
		if _, ok := held[k]; !ok {
			v.fail("the node's log %s of block %d never reached the client", k, w.BlockNumber)
		}
	}
	return v
}

func sameLog(a, b types.Log) bool {
	return a.Address == b.Address && slices.Equal(a.Topics, b.Topics) && bytes.Equal(a.Data, b.Data) &&
		a.BlockNumber == b.BlockNumber && a.BlockHash == b.BlockHash && a.TxHash == b.TxHash && a.TxIndex == b.TxIndex && a.Index == b.Index
}

func describeLog(l types.Log) string {
	b, _ := json.Marshal(l)
	return string(b)
}

// nodeView reads the node's canonical hashes for from..to (the hash field of eth_getBlockByNumber, as the node
// wrote it) and its logs over the range with q's addresses and topics.
func nodeView(ctx context.Context, node *anvil.Node, from, to uint64, q ethereum.FilterQuery) (wsNode, error) {
	w := wsNode{hashes: map[uint64]common.Hash{}}
	for n := from; n <= to; n++ {
		raw, err := node.Call(ctx, "eth_getBlockByNumber", rpc.Hex(n), false)
		if err != nil {
			return w, err
		}
		var b struct {
			Hash common.Hash `json:"hash"`
		}
		if err := json.Unmarshal(raw, &b); err != nil {
			return w, fmt.Errorf("block %d: %w", n, err)
		}
		w.hashes[n] = b.Hash
	}
	c, err := ethclient.DialContext(ctx, node.URL)
	if err != nil {
		return w, err
	}
	defer c.Close()
	q.FromBlock, q.ToBlock = new(big.Int).SetUint64(from), new(big.Int).SetUint64(to)
	w.logs, err = c.FilterLogs(ctx, q)
	return w, err
}

// wsDelays returns the delay of each header of st against the arrival of the same hash at ref (headers ref never
// received are left out), sorted.
func wsDelays(st, ref []wsHead) []time.Duration {
	at := map[common.Hash]time.Time{}
	for _, h := range ref {
		if _, ok := at[h.Hash]; !ok {
			at[h.Hash] = h.At
		}
	}
	var d []time.Duration
	for _, h := range st {
		if t, ok := at[h.Hash]; ok {
			d = append(d, h.At.Sub(t))
		}
	}
	slices.Sort(d)
	return d
}

// wsPct is the p-th percentile (0 < p ≤ 100) of sorted durations, 0 when there are none.
func wsPct(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	i := int(float64(len(d))*p/100+0.5) - 1
	return d[min(max(i, 0), len(d)-1)]
}

// wsRun is one run of the check: a node mining at its own pace (interval mining), the stream under test and the
// node's own subscription.
type wsRun struct {
	node    *anvil.Node
	url     string                                                   // the stream under test: ws://…
	dial    func(context.Context, string) (*ethclient.Client, error) // how a stream is dialled (nil: ethclient.DialContext)
	mode    wsMode
	d       time.Duration
	reorgs  bool   // anvil_reorg of depth 1, 2, 3 in turn, one every fourth block
	midway  func() // called once, halfway through (nil: nothing)
	logf    func(string, ...any)
	settle  time.Duration // how long the stream may take to show the node's last header at the end
	streams int           // streams under test on url (each checked); 0 means 1
}

// wsResult is what a run saw.
type wsResult struct {
	Verdicts []wsVerdict // one per stream under test
	Ref      wsVerdict   // the node's own subscription, judged in wsReference mode
	Delays   []time.Duration
	Reorgs   map[int]int // anvil_reorg calls by depth
	Sent     int         // transactions sent
}

// wsEmitter is the address of the logs emitter in the subscription runs.
const wsEmitter = "0x00000000000000000000000000000000000e2e21"

// wsQuery is the logs subscription of every run: the emitter's logs.
func wsQuery() ethereum.FilterQuery {
	return ethereum.FilterQuery{Addresses: []common.Address{common.HexToAddress(wsEmitter)}}
}

// wsURL turns a node's http:// URL into its ws:// one (anvil serves both on one port).
func wsURL(httpURL string) string { return "ws" + strings.TrimPrefix(httpURL, "http") }

// emitTx is a transaction to the emitter that emits k logs.
func emitTx(k int) map[string]string {
	return map[string]string{"from": anvil.DevAddress, "to": wsEmitter, "data": fmt.Sprintf("0x%064x", k), "gas": "0x100000"}
}

// run drives the node and judges the streams. The node must be mining by itself (anvil --block-time); the emitter
// is installed here. At the end interval mining stops and each stream must show the node's last header within
// settle.
func (r wsRun) run(ctx context.Context) (*wsResult, error) {
	if r.settle == 0 {
		r.settle = 15 * time.Second
	}
	if r.streams == 0 {
		r.streams = 1
	}
	if _, err := r.node.Call(ctx, "anvil_setCode", wsEmitter, anvil.LogsCode); err != nil {
		return nil, err
	}
	q := wsQuery()
	ref, err := dialWS(ctx, "node", wsURL(r.node.URL), &q, nil)
	if err != nil {
		return nil, err
	}
	defer ref.Close()
	var sts []*wsStream
	defer func() {
		for _, st := range sts {
			st.Close()
		}
	}()
	for i := range r.streams {
		st, err := dialWS(ctx, fmt.Sprintf("stream %d", i), r.url, &q, r.dial)
		if err != nil {
			return nil, err
		}
		sts = append(sts, st)
	}
	// No transaction before every stream has a header: the logs compared are those of the blocks after it.
	for _, st := range sts {
		if err := st.waitHead(ctx, 20*time.Second, "first header", func(wsHead) bool { return true }); err != nil {
			return nil, err
		}
	}
	res := &wsResult{Reorgs: map[int]int{}}
	end := time.Now().Add(r.d)
	half := time.Now().Add(r.d / 2)
	var lastSent uint64
	depth := 1
	for blocks := 0; time.Now().Before(end); {
		// One transaction per block of the node: wait for the node's next header.
		h0, _ := ref.last()
		if err := ref.waitHead(ctx, 10*time.Second, "the node's next header", func(h wsHead) bool { return h.Hash != h0.Hash }); err != nil {
			return nil, err
		}
		h, _ := ref.last()
		if h.Number == lastSent {
			continue
		}
		lastSent = h.Number
		blocks++
		if r.midway != nil && time.Now().After(half) {
			r.midway()
			r.midway = nil
		}
		if r.reorgs && blocks%4 == 0 && h.Number > uint64(depth)+1 {
			// The new branch holds other transactions: 4+depth logs in its first block, so hashes and logs change.
			txs := []any{[]any{emitTx(4 + depth), 0}}
			if _, err := r.node.Call(ctx, "anvil_reorg", depth, txs); err != nil {
				return nil, fmt.Errorf("anvil_reorg %d at %d: %w", depth, h.Number, err)
			}
			r.logf("anvil_reorg depth %d at head %d", depth, h.Number)
			res.Reorgs[depth]++
			depth = depth%3 + 1
			continue
		}
		if _, err := r.node.Call(ctx, "eth_sendTransaction", emitTx(1+int(h.Number%3))); err != nil {
			return nil, fmt.Errorf("eth_sendTransaction: %w", err)
		}
		res.Sent++
	}
	// The end: no more blocks, and each stream must reach the node's head.
	if _, err := r.node.Call(ctx, "evm_setIntervalMining", 0); err != nil {
		return nil, fmt.Errorf("evm_setIntervalMining 0: %w", err)
	}
	head, err := r.node.BlockNumber(ctx)
	if err != nil {
		return nil, err
	}
	raw, err := r.node.Call(ctx, "eth_getBlockByNumber", rpc.Hex(head), false)
	if err != nil {
		return nil, err
	}
	var hb struct {
		Hash common.Hash `json:"hash"`
	}
	if err := json.Unmarshal(raw, &hb); err != nil {
		return nil, err
	}
	lastWhat := fmt.Sprintf("the node's last header %d %s", head, hb.Hash.Hex())
	if err := ref.waitHead(ctx, r.settle, lastWhat, func(h wsHead) bool { return h.Hash == hb.Hash }); err != nil {
		return nil, err
	}
	missed := map[*wsStream]error{} // a stream that never shows the node's head fails the check (judged all the same)
	for _, st := range sts {
		if err := st.waitHead(ctx, r.settle, lastWhat, func(h wsHead) bool { return h.Hash == hb.Hash }); err != nil {
			if ctx.Err() != nil {
				return nil, err
			}
			missed[st] = err
		}
	}
	refHeads, _, refErr := ref.snapshot()
	if refErr != nil {
		return nil, fmt.Errorf("the node's own subscription: %w", refErr)
	}
	from := refHeads[0].Number
	for _, st := range sts {
		hs, _, _ := st.snapshot()
		from = min(from, hs[0].Number)
	}
	view, err := nodeView(ctx, r.node, from, head, q)
	if err != nil {
		return nil, fmt.Errorf("reading the node's chain: %w", err)
	}
	// A block's logs come after its header (another subscription, another message): the last block's logs may
	// still be on their way when its header is seen. Each stream gets a moment to hold all the node's logs.
	ref.waitLogs(ctx, r.settle, view.logs)
	for _, st := range sts {
		if missed[st] == nil {
			st.waitLogs(ctx, wsLogsSettle, view.logs)
		}
	}
	refHeads, refLogs, refErr := ref.snapshot()
	if refErr != nil {
		return nil, fmt.Errorf("the node's own subscription: %w", refErr)
	}
	res.Ref = checkWS(wsReference, refHeads, refLogs, view)
	for _, st := range sts {
		hs, ls, serr := st.snapshot()
		v := checkWS(r.mode, hs, ls, view)
		if err := missed[st]; err != nil { // first: the failures it causes come after
			v.Failures = append([]string{err.Error()}, v.Failures...)
		}
		if serr != nil {
			v.Failures = append([]string{fmt.Sprintf("%s: the subscription failed: %v", st.name, serr)}, v.Failures...)
		}
		res.Verdicts = append(res.Verdicts, v)
		res.Delays = append(res.Delays, wsDelays(hs, refHeads)...)
	}
	slices.Sort(res.Delays)
	return res, nil
}

// delayText is the delays' p50, p99 and max, for MEASURE lines.
func delayText(d []time.Duration) string {
	if len(d) == 0 {
		return "no delays"
	}
	return fmt.Sprintf("delivery delay against the node's own subscription over %d headers: p50 %v, p99 %v, max %v",
		len(d), wsPct(d, 50).Round(time.Millisecond), wsPct(d, 99).Round(time.Millisecond), d[len(d)-1].Round(time.Millisecond))
}
