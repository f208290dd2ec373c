package e2e

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/big"
	"math/rand/v2"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/ethclient"
	gethrpc "github.com/ethereum/go-ethereum/rpc"

	"github.com/evmlb/evmlb/e2e/internal/anvil"
	"github.com/evmlb/evmlb/e2e/internal/rpc"
	"github.com/evmlb/evmlb/e2e/internal/target"
)

// Issue 19's reorg check: go-ethereum clients read through the balancer while the node mines and reorganizes
// (anvil_reorg, depths 1 to 5), and every answer is held against what the node itself answered.

// EnvReorgDuration sets how long the reorg scenario's clients read (a Go duration; default 25 s).
const EnvReorgDuration = "EVMLB_REORG_DURATION"

// reorgReaders is how many ethclient clients read at once.
const reorgReaders = 4

// reorgRecipient receives the driver's transfers: its balance changes with every block the driver mines, and a
// reorg takes the transfers of the blocks it replaces away.
var reorgRecipient = common.HexToAddress("0x00000000000000000000000000000000000e2e19")

// reorgContract is where the scenario sets reorgCode (anvil_setCode).
var reorgContract = common.HexToAddress("0x00000000000000000000000000000000000c0de1")

// reorgCode returns 64 bytes: reorgRecipient's balance, then the parent block's hash. An eth_call to it at a
// block reads that block's state and its parent: a reorg below or at the block changes the answer.
//
//	PUSH20 recipient BALANCE PUSH1 0 MSTORE          balance → memory[0:32]
//	PUSH1 1 NUMBER SUB BLOCKHASH PUSH1 0x20 MSTORE   blockhash(number-1) → memory[32:64]
//	PUSH1 0x40 PUSH1 0 RETURN
var reorgCode = "0x73" + hex.EncodeToString(reorgRecipient.Bytes()) + "31600052" + "6001430340602052" + "60406000f3"

// reorgEvent is one anvil_reorg: the blocks head-depth+1 … head were replaced (the head's number stays).
type reorgEvent struct {
	head, depth uint64
	done        time.Time // when anvil_reorg had answered
}

// observation is one answer of the node to a request, and when the request was sent.
type observation struct {
	at     time.Time
	answer string
}

// sentTx is a transfer the driver sent and the block that first held it.
type sentTx struct {
	hash  common.Hash
	block uint64
}

// reorgStats are the loop's counts.
type reorgStats struct {
	Reads       int64          // reads through the balancer
	Checked     int64          // answers checked against the node's
	Reorgs      int            // anvil_reorg calls
	ByDepth     map[uint64]int // reorgs by depth
	Mined       int            // blocks mined by the driver's transfers
	AfterReorg  int64          // reads of a replaced height (or a receipt or hash of one) after the balancer's head had passed its reorg
	Wrong       int64          // answers the node never gave for that request
	Reorged     int64          // answers the node gave only before a reorg the balancer's head had passed
	BalancerErr int64          // transport errors from the balancer (the node answered)
	ByKind      map[string]int64
	Failures    []string // the first few wrong and reorged answers, described
}

func (st *reorgStats) String() string {
	depths := make([]string, 0, len(st.ByDepth))
	for d := uint64(1); d <= 5; d++ {
		depths = append(depths, fmt.Sprintf("%d:%d", d, st.ByDepth[d]))
	}
	kinds := make([]string, 0, len(st.ByKind))
	for k, n := range st.ByKind {
		kinds = append(kinds, fmt.Sprintf("%s %d", k, n))
	}
	sort.Strings(kinds)
	return fmt.Sprintf("%d reads, %d checked, %d reorgs (by depth %s), %d blocks mined, %d reads at latest or of a replaced height after the head passed its reorg, %d wrong, %d reorged, %d balancer errors; reads: %s",
		st.Reads, st.Checked, st.Reorgs, strings.Join(depths, " "), st.Mined, st.AfterReorg, st.Wrong, st.Reorged, st.BalancerErr, strings.Join(kinds, ", "))
}

// reorgLoop is the world of one run of the check: a node and what is read through, and what was seen.
type reorgLoop struct {
	node *anvil.Node
	nc   *ethclient.Client // the node, directly
	lb   *ethclient.Client // the balancer (or whatever stands in for it)

	// changing is held by the driver while anvil mines or reorganizes, and by each reader while it reads (the
	// node, the balancer, the node): anvil's changes are not atomic (a reorg takes the head back, then mines the
	// new blocks one by one; a mined block's state is there before the block), a node's are; a read that saw one
	// half done would be an answer no node gives. The balancer's own health checks are not held.
	changing sync.RWMutex

	mu      sync.Mutex
	reorgs  []reorgEvent
	txs     []sentTx
	hashes  map[common.Hash]uint64 // block hashes seen (reorged out or not) and their numbers
	hashArr []common.Hash
	hist    map[string][]observation
	stats   reorgStats

	reads, checked, afterReorg, wrong, reorged, lbErr atomic.Int64
}

// reorgOp is one read, the same for the node and the balancer.
type reorgOp struct {
	kind   string
	key    string                                                // the request: method and its parameters
	block  uint64                                                // the block it reads (by number, or its hash's, or its receipt's); 0 at latest
	latest bool                                                  // read at latest
	do     func(ctx context.Context, c *ethclient.Client) string // the answer, as compared
	at     func(n uint64) reorgOp                                // for a read at latest: the same read at block n
	onAns  func(l *reorgLoop, answer string)                     // learns from the node's answer (block hashes)
}

// answerOf describes a read's outcome: null answers and errors are answers too.
func answerOf(v string, err error) string {
	switch {
	case errors.Is(err, ethereum.NotFound):
		return "null"
	case err != nil:
		return "error: " + err.Error()
	}
	return v
}

// runReorgLoop drives node for d: a transfer mined about every interval, and every third step an anvil_reorg of
// depth 1, 2, … 5, 1, …; meanwhile reorgReaders clients read through lb (blocks by number, recent and finalized,
// and at latest; blocks by hash, reorged out ones among them; receipts; eth_getBalance and eth_call at numbers and
// at latest), each read sent to the node before and after. It returns the counts; the run's failures are in
// Failures (and the Wrong and Reorged counts).
func runReorgLoop(ctx context.Context, node *anvil.Node, lbURL string, lbHTTP *http.Client, d, interval time.Duration) (*reorgStats, error) {
	nc, err := ethclient.DialContext(ctx, node.URL)
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	opts := []gethrpc.ClientOption{}
	if lbHTTP != nil {
		opts = append(opts, gethrpc.WithHTTPClient(lbHTTP))
	}
	rc, err := gethrpc.DialOptions(ctx, lbURL, opts...)
	if err != nil {
		return nil, err
	}
	lb := ethclient.NewClient(rc)
	defer lb.Close()
	if _, err := node.Call(ctx, "anvil_setCode", reorgContract.Hex(), reorgCode); err != nil {
		return nil, err
	}
	l := &reorgLoop{node: node, nc: nc, lb: lb, hashes: map[common.Hash]uint64{}, hist: map[string][]observation{}}
	l.stats.ByDepth = map[uint64]int{}
	l.stats.ByKind = map[string]int64{}
	if err := l.send(ctx); err != nil { // a receipt to read from the start
		return nil, err
	}

	runCtx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var wg sync.WaitGroup
	var driverErr error
	wg.Go(func() { driverErr = l.drive(runCtx, interval) })
	kinds := make(chan string, 1<<16)
	for i := range reorgReaders {
		wg.Go(func() {
			rnd := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), uint64(i)))
			for runCtx.Err() == nil {
				kind, err := l.readOnce(runCtx, rnd)
				if err != nil && runCtx.Err() == nil {
					l.lbErr.Add(1)
				}
				if kind != "" {
					select {
					case kinds <- kind:
					default:
					}
				}
			}
		})
	}
	wg.Wait()
	close(kinds)
	for k := range kinds {
		l.stats.ByKind[k]++
	}
	if driverErr != nil && ctx.Err() == nil && !errors.Is(driverErr, context.DeadlineExceeded) && !errors.Is(driverErr, context.Canceled) {
		return nil, fmt.Errorf("driving the node: %w", driverErr)
	}
	st := l.stats
	st.Reads, st.Checked, st.AfterReorg = l.reads.Load(), l.checked.Load(), l.afterReorg.Load()
	st.Wrong, st.Reorged, st.BalancerErr = l.wrong.Load(), l.reorged.Load(), l.lbErr.Load()
	return &st, nil
}

// send sends one transfer to reorgRecipient from the dev account (anvil mines it at once) and keeps its hash and
// block.
func (l *reorgLoop) send(ctx context.Context) error {
	l.changing.Lock()
	defer l.changing.Unlock()
	raw, err := l.node.Call(ctx, "eth_sendTransaction", map[string]string{
		"from": anvil.DevAddress, "to": reorgRecipient.Hex(), "value": rpc.Hex(1_000_000 + uint64(rand.IntN(1000))),
	})
	if err != nil {
		return fmt.Errorf("eth_sendTransaction: %w", err)
	}
	var h common.Hash
	if err := json.Unmarshal(raw, &h); err != nil {
		return err
	}
	// anvil answers with the hash before it has mined the block: poll for the receipt, bounded.
	rcpt, err := l.nc.TransactionReceipt(ctx, h)
	for deadline := time.Now().Add(10 * time.Second); errors.Is(err, ethereum.NotFound) && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
		rcpt, err = l.nc.TransactionReceipt(ctx, h)
	}
	if err != nil {
		return fmt.Errorf("receipt of %s: %w", h, err)
	}
	l.mu.Lock()
	l.txs = append(l.txs, sentTx{hash: h, block: rcpt.BlockNumber.Uint64()})
	l.stats.Mined++
	l.mu.Unlock()
	return nil
}

// drive mines a transfer every interval and, every third step, reorganizes the last depth blocks (1 to 5 in
// turn). Before a reorg it learns the hashes it will replace, so readers ask for them by hash after.
func (l *reorgLoop) drive(ctx context.Context, interval time.Duration) error {
	depth := uint64(1)
	for step := 1; ; step++ {
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(interval): // pacing the chain's events, nothing awaited
		}
		if step%3 != 0 {
			if err := l.send(ctx); err != nil {
				return err
			}
			continue
		}
		head, err := l.node.BlockNumber(ctx)
		if err != nil {
			return err
		}
		for n := head - depth + 1; n <= head; n++ {
			if h, err := l.nc.HeaderByNumber(ctx, new(big.Int).SetUint64(n)); err == nil {
				l.learnHash(h.Hash(), n)
			}
		}
		l.changing.Lock()
		_, err = l.node.Call(ctx, "anvil_reorg", depth, []any{})
		l.changing.Unlock()
		if err != nil {
			return fmt.Errorf("anvil_reorg %d at %d: %w", depth, head, err)
		}
		l.mu.Lock()
		l.reorgs = append(l.reorgs, reorgEvent{head: head, depth: depth, done: time.Now()})
		l.stats.Reorgs++
		l.stats.ByDepth[depth]++
		l.mu.Unlock()
		depth = depth%5 + 1
	}
}

func (l *reorgLoop) learnHash(h common.Hash, n uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.hashes[h]; !ok {
		l.hashes[h] = n
		l.hashArr = append(l.hashArr, h)
	}
}

// passed returns the last reorg the balancer's head (lbHead, read before the read began) had moved past: the
// answers the node gave before it are no longer answers the balancer may give for the heights it replaced.
func (l *reorgLoop) passed(lbHead uint64) (reorgEvent, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := len(l.reorgs) - 1; i >= 0; i-- {
		if lbHead > l.reorgs[i].head {
			return l.reorgs[i], true
		}
	}
	return reorgEvent{}, false
}

func (l *reorgLoop) observe(key string, at time.Time, answer string) {
	l.mu.Lock()
	l.hist[key] = append(l.hist[key], observation{at, answer})
	l.mu.Unlock()
}

// seen reports whether the node answered key with answer in a request sent at or after since.
func (l *reorgLoop) seen(key, answer string, since time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, o := range l.hist[key] {
		if o.answer == answer && !o.at.Before(since) {
			return true
		}
	}
	return false
}

func (l *reorgLoop) fail(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.stats.Failures) < 20 {
		l.stats.Failures = append(l.stats.Failures, fmt.Sprintf(format, args...))
	}
}

// readOnce makes one read through the balancer, between two of the node, and checks it. It returns the read's
// kind, and an error when the balancer could not be reached.
func (l *reorgLoop) readOnce(ctx context.Context, rnd *rand.Rand) (string, error) {
	lbHead, err := l.lb.BlockNumber(ctx)
	if err != nil {
		return "", err
	}
	op, ok := l.pick(rnd, lbHead)
	if !ok {
		return "", nil
	}
	l.changing.RLock()
	defer l.changing.RUnlock()
	r, hasReorg := l.passed(lbHead)
	t0 := time.Now()
	before := op.do(ctx, l.nc)
	got := op.do(ctx, l.lb)
	t1 := time.Now()
	after := op.do(ctx, l.nc)
	if ctx.Err() != nil {
		return "", nil // the run ended mid-read: nothing to check
	}
	l.observe(op.key, t0, before)
	l.observe(op.key, t1, after)
	if op.onAns != nil {
		op.onAns(l, before)
		op.onAns(l, after)
	}
	l.reads.Add(1)
	since := time.Time{}
	if hasReorg {
		since = r.done
		if op.latest || (op.block > r.head-r.depth && op.block <= r.head) {
			l.afterReorg.Add(1)
		}
	}
	if !l.seen(op.key, got, since) && op.latest {
		// A read at latest answered from a head between the two node reads, or from a served head below the
		// node's (the balancer's learns the node's a health check later; a Worker runtime's snapshot may be older
		// than the one that answered eth_blockNumber): the same read at each of those numbers, asked now, is what
		// latest answered then.
		nodeHead, err := l.nc.BlockNumber(ctx)
		if err == nil {
			for n := max(lbHead, 7) - 6; n <= nodeHead; n++ {
				at := op.at(n)
				l.observe(op.key, time.Now(), at.do(ctx, l.nc))
			}
		}
	}
	switch {
	case l.seen(op.key, got, since):
		l.checked.Add(1)
	case l.seen(op.key, got, time.Time{}):
		l.reorged.Add(1)
		l.fail("%s: the balancer's head %d had passed the reorg of %d blocks at %d; it answered %s, which the node answered only before that reorg (node now: %s)",
			op.key, lbHead, r.depth, r.head, trunc(got), trunc(after))
	default:
		l.wrong.Add(1)
		l.fail("%s: the balancer answered %s, which the node never did (node before: %s, after: %s)", op.key, trunc(got), trunc(before), trunc(after))
	}
	return op.kind, nil
}

func trunc(s string) string { return rpc.Trunc([]byte(s), 240) }

// pick chooses a read: blocks by number (recent, finalized, latest), by hash, a receipt, a balance or a call at a
// recent or finalized number or at latest.
func (l *reorgLoop) pick(rnd *rand.Rand, head uint64) (reorgOp, bool) {
	recent := func() uint64 { return head - min(head-1, uint64(rnd.IntN(7))) }
	old := func() uint64 {
		if head <= 70 {
			return 1 + uint64(rnd.IntN(int(head)))
		}
		return 1 + uint64(rnd.IntN(int(head-66))) // finalized: anvil's finalized block is 64 below the head
	}
	switch k := rnd.IntN(12); k {
	case 0, 1:
		return blockOp("block-recent", recent()), true
	case 2:
		return blockOp("block-finalized", old()), true
	case 3:
		return headerLatestOp(), true
	case 4:
		l.mu.Lock()
		if len(l.hashArr) == 0 {
			l.mu.Unlock()
			return blockOp("block-recent", recent()), true
		}
		h := l.hashArr[rnd.IntN(len(l.hashArr))]
		if rnd.IntN(2) == 0 { // the last ones, reorged out ones among them, more often
			h = l.hashArr[len(l.hashArr)-1-rnd.IntN(min(len(l.hashArr), 10))]
		}
		n := l.hashes[h]
		l.mu.Unlock()
		return hashOp(h, n), true
	case 5:
		l.mu.Lock()
		t := l.txs[len(l.txs)-1-rnd.IntN(min(len(l.txs), 8))]
		if rnd.IntN(4) == 0 {
			t = l.txs[rnd.IntN(len(l.txs))]
		}
		l.mu.Unlock()
		return receiptOp(t), true
	case 6:
		return balanceOp(recent(), false), true
	case 7:
		return balanceOp(old(), false), true
	case 8:
		return balanceOp(0, true), true
	case 9:
		return callOp(recent(), false), true
	case 10:
		return callOp(old(), false), true
	default:
		return callOp(0, true), true
	}
}

func blockOp(kind string, n uint64) reorgOp {
	return reorgOp{
		kind: kind, key: fmt.Sprintf("eth_getBlockByNumber(%d)", n), block: n,
		do: func(ctx context.Context, c *ethclient.Client) string {
			b, err := c.BlockByNumber(ctx, new(big.Int).SetUint64(n))
			if err != nil {
				return answerOf("", err)
			}
			txs := make([]string, len(b.Transactions()))
			for i, tx := range b.Transactions() {
				txs[i] = tx.Hash().Hex()
			}
			return fmt.Sprintf("block %d %s txs %v", b.NumberU64(), b.Hash().Hex(), txs)
		},
		onAns: learnBlock,
	}
}

// learnBlock keeps the hash of a block the node answered.
func learnBlock(l *reorgLoop, answer string) {
	var n uint64
	var h string
	if _, err := fmt.Sscanf(answer, "block %d %s", &n, &h); err == nil {
		l.learnHash(common.HexToHash(h), n)
	}
}

func headerOp(n uint64) reorgOp {
	return reorgOp{
		kind: "header", key: fmt.Sprintf("header(%d)", n), block: n,
		do: func(ctx context.Context, c *ethclient.Client) string {
			h, err := c.HeaderByNumber(ctx, new(big.Int).SetUint64(n))
			if err != nil {
				return answerOf("", err)
			}
			return fmt.Sprintf("block %d %s", h.Number.Uint64(), h.Hash().Hex())
		},
	}
}

func headerLatestOp() reorgOp {
	return reorgOp{
		kind: "block-latest", key: "eth_getBlockByNumber(latest)", latest: true,
		do: func(ctx context.Context, c *ethclient.Client) string {
			h, err := c.HeaderByNumber(ctx, nil)
			if err != nil {
				return answerOf("", err)
			}
			return fmt.Sprintf("block %d %s", h.Number.Uint64(), h.Hash().Hex())
		},
		at:    headerOp,
		onAns: learnBlock,
	}
}

func hashOp(h common.Hash, n uint64) reorgOp {
	return reorgOp{
		kind: "block-by-hash", key: "eth_getBlockByHash(" + h.Hex() + ")", block: n,
		do: func(ctx context.Context, c *ethclient.Client) string {
			hd, err := c.HeaderByHash(ctx, h)
			if err != nil {
				return answerOf("", err)
			}
			return fmt.Sprintf("block %d %s", hd.Number.Uint64(), hd.Hash().Hex())
		},
	}
}

func receiptOp(t sentTx) reorgOp {
	return reorgOp{
		kind: "receipt", key: "eth_getTransactionReceipt(" + t.hash.Hex() + ")", block: t.block,
		do: func(ctx context.Context, c *ethclient.Client) string {
			r, err := c.TransactionReceipt(ctx, t.hash)
			if err != nil {
				return answerOf("", err)
			}
			b, _ := json.Marshal(r)
			return string(b)
		},
	}
}

func blockArg(n uint64, latest bool) *big.Int {
	if latest {
		return nil
	}
	return new(big.Int).SetUint64(n)
}

func balanceOp(n uint64, latest bool) reorgOp {
	op := reorgOp{
		kind: "balance", key: fmt.Sprintf("eth_getBalance(%d)", n), block: n, latest: latest,
		do: func(ctx context.Context, c *ethclient.Client) string {
			v, err := c.BalanceAt(ctx, reorgRecipient, blockArg(n, latest))
			if err != nil {
				return answerOf("", err)
			}
			return v.String()
		},
		at: func(n uint64) reorgOp { return balanceOp(n, false) },
	}
	if latest {
		op.kind, op.key = "balance-latest", "eth_getBalance(latest)"
	}
	return op
}

func callOp(n uint64, latest bool) reorgOp {
	op := reorgOp{
		kind: "call", key: fmt.Sprintf("eth_call(%d)", n), block: n, latest: latest,
		do: func(ctx context.Context, c *ethclient.Client) string {
			v, err := c.CallContract(ctx, ethereum.CallMsg{To: &reorgContract}, blockArg(n, latest))
			if err != nil {
				return answerOf("", err)
			}
			return "0x" + hex.EncodeToString(v)
		},
		at: func(n uint64) reorgOp { return callOp(n, false) },
	}
	if latest {
		op.kind, op.key = "call-latest", "eth_call(latest)"
	}
	return op
}

// Issue 19, the reorg check in a host: two upstreams in front of one anvil that mines a transfer about every
// 0.5 s and reorganizes (anvil_reorg, depths 1 to 5 in turn) every third step, while go-ethereum clients read
// through the balancer for EVMLB_REORG_DURATION. Every answer must be one the node gave to the same request
// during the loop, and none one it gave only before a reorg that the balancer's head (its eth_blockNumber, read
// before the request) had moved past.
func scReorg(s *S) {
	n := s.Node(31337, 100) // finalized (anvil: 64 below the head) from the start
	_, ua := s.Upstream(n, "ethereum", "a")
	_, ub := s.Upstream(n, "ethereum", "b")
	b := s.Start([]target.Upstream{ua, ub}, nil)
	d := s.envDuration(EnvReorgDuration, 25*time.Second)
	cc := &cacheCount{next: s.client.Transport, m: map[string]int{}}
	st, err := runReorgLoop(s.Ctx, n, b.Inst.URL+"/ethereum", &http.Client{Timeout: s.client.Timeout, Transport: cc}, d, 500*time.Millisecond)
	if err != nil {
		s.Fatalf("%v\n--- log ---\n%s", err, tail(b.Inst.Logs(), 4000))
	}
	s.Logf("MEASURE %s reorg: %s; x-evmlb-cache %s", s.Host.Name(), st, fmtCounts(cc.counts()))
	if r := b.Do(http.MethodGet, "/admin/metrics", nil, map[string]string{"Authorization": basic("admin", s.Password)}); r.Status == http.StatusOK {
		for _, line := range strings.Split(string(r.Body), "\n") {
			if strings.HasPrefix(line, "evmlb_cache_requests_total") {
				s.Logf("MEASURE %s reorg: %s", s.Host.Name(), line)
			}
		}
	}
	for _, f := range st.Failures {
		s.Error(f)
	}
	s.must(st.Wrong == 0 && st.Reorged == 0, "%d answers the node never gave, %d answers from blocks the node had replaced (%s)", st.Wrong, st.Reorged, st)
	s.must(st.BalancerErr == 0, "%d requests to the balancer failed", st.BalancerErr)
	// The check has teeth only if reorgs of every depth came and replaced heights were read after them.
	s.must(st.Reorgs >= 5 && st.AfterReorg > 0 && st.Checked > 100, "too little happened to check: %s", st)
	// With the cache (the answers carry x-evmlb-cache), the check ran with hits among the answers: finalized
	// blocks, balances and calls are read again and again.
	if c := cc.counts(); len(c) > 1 || c["(none)"] == 0 {
		s.must(c["hit"] > 0, "x-evmlb-cache %s: no hit among the answers checked", fmtCounts(c))
	}
	s.Note("answers the node never gave", "0")
	s.Note("answers from a replaced block after the head passed its reorg", "0")
}

// cacheCount is a transport that counts the x-evmlb-cache values of the answers that pass through it.
type cacheCount struct {
	next http.RoundTripper
	mu   sync.Mutex
	m    map[string]int
}

func (c *cacheCount) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := c.next.RoundTrip(req)
	if err == nil {
		v := resp.Header.Get(cacheHeader)
		if v == "" {
			v = "(none)"
		}
		c.mu.Lock()
		c.m[v]++
		c.mu.Unlock()
	}
	return resp, err
}

func (c *cacheCount) counts() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.m)
}
