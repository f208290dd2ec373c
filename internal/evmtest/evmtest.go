// Package evmtest runs fake EVM JSON-RPC nodes on 127.0.0.1 for tests: they answer eth_chainId and
// eth_blockNumber (and eth_syncing), eth_getBlockByNumber and eth_getBlockTransactionCountByNumber for the blocks
// up to their height (null above it), echo every other call with the node's name, and can be switched to a
// fault, for all calls or for some methods only (SetMissingData). The faults of issue 8 lie about the chain:
// SwitchNetwork (another chain id, head ahead), SetHeadOffset (claim a head it does not have) and Restart (a new
// chain at block 0).
package evmtest

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// Fault is how a node misbehaves.
type Fault int

// Faults.
const (
	None      Fault = iota
	Status500       // HTTP 500 with a JSON body
	Status429       // HTTP 429
	NonJSON         // HTTP 200 with an HTML body
	Hang            // no answer until the request is canceled
	// MissingData answers every call but the health checks' (eth_chainId, eth_blockNumber, eth_syncing and the
	// probe eth_getBlockTransactionCountByNumber) with
	// JSON-RPC error -32000 "header not found", element by element in a batch.
	MissingData
	// Redirect answers every request with HTTP 307 to the location set with SetRedirect, and a JSON-RPC body
	// holding RedirectMarker (which must never reach a client).
	Redirect
)

// RedirectMarker is in the body of a Redirect answer.
const RedirectMarker = "redirect-body-must-not-be-served"

// missingDataError is the error member of a MissingData answer, as geth writes it.
const missingDataError = `{"code":-32000,"message":"header not found"}`

// Node is a fake EVM node.
type Node struct {
	Name string
	// URL is the node's endpoint; it carries a secret path and query to check that none leaks.
	URL     string
	srv     *httptest.Server
	chainID atomic.Uint64
	height  atomic.Uint64 // the node's head: blocks 0 to height exist
	offset  atomic.Int64  // eth_blockNumber answers height+offset
	fault   atomic.Int32
	target  atomic.Pointer[string] // the Location of Redirect answers
	sync    atomic.Bool
	notes   atomic.Bool // notifications are answered (with a null id), as some providers do
	raw     atomic.Pointer[func(body []byte) []byte]
	calls   atomic.Int64
	stop    chan struct{} // closed when the test ends: hanging requests return
	// finality is how far below the claimed head the "finalized" tag answers (SetFinality); negative: the node
	// lacks the tag (answers an error).
	finality atomic.Int64
	// fork is the node's branch (SetFork): 0, the default, gives blocks no hash; another value makes every block
	// answered (the "finalized" tag's, eth_getBlockByNumber's) carry a hash made of the branch and the number.
	fork atomic.Uint64

	mu      sync.Mutex
	methods []string
	missing map[string]bool // methods answered as with MissingData whatever the fault
	unsupp  map[string]bool // methods answered -32601 method not found
	drop    map[string]bool // methods whose requests get their connection dropped (SetDrop)
	dropEnd bool            // the node stops after such a drop (SetDrop)
	stopped atomic.Bool     // the node stopped (SetDrop): connections are refused
	linked  bool            // SetLinked
	reorgs  [][2]uint64     // Reorg: from which height which branch, in order
}

// Secret is in every node's URL path and query.
const Secret = "s3cr3t-api-key"

// NewNode starts a node answering chain id chainID at height; it stops when the test ends.
func NewNode(t testing.TB, name string, chainID, height uint64) *Node {
	n := &Node{Name: name, stop: make(chan struct{})}
	n.height.Store(height)
	n.chainID.Store(chainID)
	n.srv = httptest.NewServer(http.HandlerFunc(n.serve))
	t.Cleanup(n.srv.Close)
	t.Cleanup(func() { close(n.stop) }) // runs before Close
	n.URL = n.srv.URL + "/v3/" + Secret + "?key=" + Secret
	return n
}

// RefusingURL is an endpoint where nothing listens (a port just closed), with a secret in it.
func RefusingURL(t testing.TB) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://user:" + Secret + "@" + addr + "/" + Secret
}

// SetHeight sets the node's head: the height eth_blockNumber answers (plus the offset) and the highest block.
func (n *Node) SetHeight(h uint64) { n.height.Store(h) }

// Height is the node's head (without the offset).
func (n *Node) Height() uint64 { return n.height.Load() }

// SetChainID sets the chain id eth_chainId answers.
func (n *Node) SetChainID(id uint64) { n.chainID.Store(id) }

// SetHeadOffset makes eth_blockNumber claim the head plus delta. Positive: a node that lies about its height
// (+1,000,000); its blocks stay those up to the head. Negative: a stale node, whose blocks stop there too (reads
// at "latest" see it). 0: the truth.
func (n *Node) SetHeadOffset(delta int64) { n.offset.Store(delta) }

// SetFinality makes the node's "finalized" block its claimed head minus depth (0, the default: the head itself);
// a negative depth makes it lack the tag (eth_getBlockByNumber("finalized") answers an error, as a node before
// the merge does). The health checks' finalized call, like their other calls, is not listed in Methods.
func (n *Node) SetFinality(depth int64) { n.finality.Store(depth) }

// SetFork puts the node on branch fork: its blocks (the "finalized" tag's and eth_getBlockByNumber's answers)
// carry the hash blockHash(fork, number); moving to another branch replaces every block, finalized or not (a
// reorg past finality). 0, the default: blocks have no hash.
func (n *Node) SetFork(fork uint64) { n.fork.Store(fork) }

// blockHash is block num's hash on branch fork: 0x, the branch in 16 hex digits, the number in 48.
func blockHash(fork, num uint64) string { return fmt.Sprintf("0x%016x%048x", fork, num) }

// SetLinked makes the node a chain for a subscription follower: eth_getBlockByNumber answers headers linked by
// parentHash (hash and parentHash of each block's branch, see Reorg), and eth_getLogs one log per block of its
// range, at LogAddress with the topic LogTopic. The branch is 1 until SetFork or Reorg says otherwise.
func (n *Node) SetLinked(on bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.linked = on
	if on && n.fork.Load() == 0 {
		n.fork.Store(1)
	}
}

// Reorg puts the blocks from height from up on branch fork (those below keep theirs): a reorg at from.
func (n *Node) Reorg(fork, from uint64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	kept := n.reorgs[:0]
	for _, r := range n.reorgs {
		if r[0] < from {
			kept = append(kept, r)
		}
	}
	n.reorgs = append(kept, [2]uint64{from, fork})
}

// BlockHash is block num's hash on the node's chain now.
func (n *Node) BlockHash(num uint64) string { return blockHash(n.forkAt(num), num) }

// forkAt is the branch of block num.
func (n *Node) forkAt(num uint64) uint64 {
	n.mu.Lock()
	defer n.mu.Unlock()
	f := n.fork.Load()
	for _, r := range n.reorgs {
		if num >= r[0] {
			f = r[1]
		}
	}
	return f
}

// The log a linked node has in each block (SetLinked).
const (
	LogAddress = "0x00000000000000000000000000000000000000aa"
	LogTopic   = "0x00000000000000000000000000000000000000000000000000000000000000bb"
)

// logsOf is eth_getLogs over fromBlock..toBlock of a linked node: one log per block.
func (n *Node) logsOf(params json.RawMessage) string {
	var ps []struct {
		From string `json:"fromBlock"`
		To   string `json:"toBlock"`
	}
	if json.Unmarshal(params, &ps) != nil || len(ps) == 0 {
		return "[]"
	}
	from, err1 := strconv.ParseUint(strings.TrimPrefix(ps[0].From, "0x"), 16, 64)
	to, err2 := strconv.ParseUint(strings.TrimPrefix(ps[0].To, "0x"), 16, 64)
	if err1 != nil || err2 != nil {
		return "[]"
	}
	to = min(to, n.height.Load())
	var b strings.Builder
	b.WriteString("[")
	for num := from; num <= to; num++ {
		if num > from {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `{"address":%q,"topics":[%q],"data":"0x","blockNumber":"0x%x","blockHash":%q,"transactionHash":"0x%064x","transactionIndex":"0x0","logIndex":"0x0","removed":false}`,
			LogAddress, LogTopic, num, n.BlockHash(num), num)
	}
	b.WriteString("]")
	return b.String()
}

// hashField is `,"hash":"0x…"` for block num on the node's branch, or "" without one; a linked node's blocks
// also carry their parentHash.
func (n *Node) hashField(num uint64) string {
	n.mu.Lock()
	linked := n.linked
	n.mu.Unlock()
	if linked {
		parent := "0x" + strings.Repeat("0", 64)
		if num > 0 {
			parent = n.BlockHash(num - 1)
		}
		return `,"hash":"` + n.BlockHash(num) + `","parentHash":"` + parent + `"`
	}
	if f := n.fork.Load(); f != 0 {
		return `,"hash":"` + blockHash(f, num) + `"`
	}
	return ""
}

// finalizedCall reports whether c is the health checks' eth_getBlockByNumber("finalized", …).
func finalizedCall(c call) bool {
	var ps []json.RawMessage
	var tag string
	return c.Method == "eth_getBlockByNumber" && json.Unmarshal(c.Params, &ps) == nil && len(ps) > 0 &&
		json.Unmarshal(ps[0], &tag) == nil && tag == "finalized"
}

// SwitchNetwork makes the node serve another network: chain id chainID, its head ahead blocks above the current
// one (its blocks exist: it is a real chain, just not this one).
func (n *Node) SwitchNetwork(chainID, ahead uint64) {
	n.chainID.Store(chainID)
	n.height.Add(ahead)
}

// Restart makes the node a new chain at block 0 (a devnet restarted, a node reset), with the same chain id.
func (n *Node) Restart() {
	n.height.Store(0)
	n.offset.Store(0)
}

// claimed is the head eth_blockNumber answers.
func (n *Node) claimed() uint64 { return uint64(max(0, int64(n.height.Load())+n.offset.Load())) }

// block reads the block parameter of a call (params[0]): its number, or the head for a tag; ok false when
// the block does not exist.
func (n *Node) block(params json.RawMessage) (uint64, bool) {
	head := min(n.height.Load(), n.claimed())
	var ps []json.RawMessage
	var tag string
	if json.Unmarshal(params, &ps) != nil || len(ps) == 0 || json.Unmarshal(ps[0], &tag) != nil {
		return head, true
	}
	switch tag {
	case "latest", "pending", "safe", "finalized":
		return head, true
	case "earliest":
		return 0, true
	}
	num, err := strconv.ParseUint(strings.TrimPrefix(tag, "0x"), 16, 64)
	return num, err == nil && num <= head
}

// SetSyncing makes eth_syncing answer a sync-progress object (true) or false.
func (n *Node) SetSyncing(on bool) { n.sync.Store(on) }

func (n *Node) syncing() string {
	if n.sync.Load() {
		return fmt.Sprintf(`{"startingBlock":"0x0","currentBlock":"0x%x","highestBlock":"0x%x"}`, n.height.Load(), n.height.Load()+100)
	}
	return "false"
}

// SetFault switches the node's behaviour.
func (n *Node) SetFault(f Fault) { n.fault.Store(int32(f)) }

// SetRedirect makes the node answer every request with HTTP 307 Temporary Redirect to location (the Redirect
// fault).
func (n *Node) SetRedirect(location string) {
	n.target.Store(&location)
	n.SetFault(Redirect)
}

// SetMissingData makes the node answer the listed methods (in batches too, element by element) with "header not
// found", as the MissingData fault does for all; the other methods answer as usual. No methods: none.
func (n *Node) SetMissingData(methods ...string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.missing = map[string]bool{}
	for _, m := range methods {
		n.missing[m] = true
	}
}

// SetUnsupported makes the node answer the listed methods, health checks' included, with -32601 "method not
// found". No methods: none.
func (n *Node) SetUnsupported(methods ...string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.unsupp = map[string]bool{}
	for _, m := range methods {
		n.unsupp[m] = true
	}
}

// SetDrop makes the node drop the connection of a request holding one of methods after reading it, with no answer
// (a reset), as a node whose process the request crashed. With stop, the node then stops for good: its listener
// closes and later connections are refused. Without, it keeps answering everything else (a transient drop). No
// methods: none.
func (n *Node) SetDrop(stop bool, methods ...string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.drop, n.dropEnd = map[string]bool{}, stop
	for _, m := range methods {
		n.drop[m] = true
	}
}

// Stopped reports whether the node stopped (SetDrop with stop).
func (n *Node) Stopped() bool { return n.stopped.Load() }

// dropConn resets the request's connection and, when the node is set to, stops the node.
func (n *Node) dropConn(w http.ResponseWriter) {
	n.mu.Lock()
	stop := n.dropEnd
	n.mu.Unlock()
	var c net.Conn
	if hj, ok := w.(http.Hijacker); ok {
		c, _, _ = hj.Hijack()
	}
	// Down first, then the reset: a probe made on the reset finds the node gone.
	if stop && n.stopped.CompareAndSwap(false, true) {
		_ = n.srv.Listener.Close()
		n.srv.CloseClientConnections() // kept-alive connections too: nothing reaches the node any more
	}
	if c != nil {
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetLinger(0) // RST rather than FIN
		}
		_ = c.Close()
	}
}

// SetAnswerNotifications makes the node answer notifications as it answers calls, with "id":null (some providers
// do; geth and anvil do not, the default).
func (n *Node) SetAnswerNotifications(on bool) { n.notes.Store(on) }

// SetRawAnswer makes the node answer HTTP 200 with answer(request body) to every request holding a call other than
// the health checks' (see MissingData), whatever that body holds; nil ends it. For hostile answers: wrong ids,
// batches of the wrong shape, invalid UTF-8, deep nesting.
func (n *Node) SetRawAnswer(answer func(body []byte) []byte) {
	if answer == nil {
		n.raw.Store(nil)
		return
	}
	n.raw.Store(&answer)
}

// Calls is the number of requests the node received.
func (n *Node) Calls() int64 { return n.calls.Load() }

// Methods lists the methods of the non-health calls received, in order.
func (n *Node) Methods() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]string(nil), n.methods...)
}

// healthCheck are the methods of the health checks, which MissingData and SetRawAnswer leave answered.
var healthCheck = map[string]bool{"eth_chainId": true, "eth_blockNumber": true, "eth_syncing": true, "eth_getBlockTransactionCountByNumber": true}

type call struct {
	ID     json.RawMessage `json:"id"`
	Method string          `json:"method"`
	Params json.RawMessage `json:"params"`
}

func (n *Node) serve(w http.ResponseWriter, r *http.Request) {
	n.calls.Add(1)
	switch Fault(n.fault.Load()) {
	case Status500:
		http.Error(w, `{"error":"internal"}`, http.StatusInternalServerError)
		return
	case Status429:
		http.Error(w, "too many requests", http.StatusTooManyRequests)
		return
	case NonJSON:
		w.Header().Set("Content-Type", "text/html")
		_, _ = io.WriteString(w, "<html>bad gateway</html>")
		return
	case Redirect:
		loc := ""
		if p := n.target.Load(); p != nil {
			loc = *p
		}
		w.Header().Set("Location", loc)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusTemporaryRedirect)
		_, _ = io.WriteString(w, `{"jsonrpc":"2.0","id":1,"result":"`+RedirectMarker+`"}`)
		return
	case Hang:
		_, _ = io.Copy(io.Discard, r.Body) // the server notices a closed connection only once the body is read
		select {
		case <-r.Context().Done():
		case <-n.stop:
		}
		return
	}
	if r.Header.Get("Content-Type") != "application/json" {
		http.Error(w, "content type must be application/json", http.StatusUnsupportedMediaType)
		return
	}
	body, _ := io.ReadAll(r.Body)
	var batch []call
	var single call
	isBatch := json.Unmarshal(body, &batch) == nil
	if !isBatch {
		if json.Unmarshal(body, &single) != nil {
			http.Error(w, "bad json", http.StatusBadRequest)
			return
		}
		batch = []call{single}
	}
	n.mu.Lock()
	drop := false
	for _, c := range batch {
		if n.drop[c.Method] {
			drop = true
			n.methods = append(n.methods, c.Method)
		}
	}
	n.mu.Unlock()
	if drop {
		n.dropConn(w)
		return
	}
	if raw := n.raw.Load(); raw != nil && slices.ContainsFunc(batch, func(c call) bool { return !healthCheck[c.Method] && !finalizedCall(c) }) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write((*raw)(body))
		return
	}
	allMissing := Fault(n.fault.Load()) == MissingData
	answers := make([]string, len(batch))
	for i, c := range batch {
		id := string(c.ID)
		if id == "" {
			id = "null"
		}
		n.mu.Lock()
		unsupported := n.unsupp[c.Method]
		n.mu.Unlock()
		if unsupported {
			answers[i] = fmt.Sprintf(`{"jsonrpc":"2.0","id":%s,"error":{"code":-32601,"message":"the method %s does not exist/is not available"}}`, id, c.Method)
			continue
		}
		if finalizedCall(c) { // the health checks' finality
			if d := n.finality.Load(); d < 0 {
				answers[i] = fmt.Sprintf(`{"jsonrpc":"2.0","id":%s,"error":{"code":-32602,"message":"invalid block tag finalized"}}`, id)
			} else {
				num := uint64(max(0, int64(n.claimed())-d))
				answers[i] = fmt.Sprintf(`{"jsonrpc":"2.0","id":%s,"result":{"node":%q,"number":"0x%x"%s}}`, id, n.Name, num, n.hashField(num))
			}
			continue
		}
		var result string
		switch c.Method {
		case "eth_chainId":
			result = fmt.Sprintf(`"0x%x"`, n.chainID.Load())
		case "eth_blockNumber":
			result = fmt.Sprintf(`"0x%x"`, n.claimed())
		case "eth_syncing":
			result = n.syncing()
		case "eth_getBlockTransactionCountByNumber": // the health checks' probe
			result = "null"
			if _, ok := n.block(c.Params); ok {
				result = `"0x0"`
			}
		default:
			n.mu.Lock()
			n.methods = append(n.methods, c.Method)
			missing := allMissing || n.missing[c.Method]
			n.mu.Unlock()
			if missing {
				answers[i] = fmt.Sprintf(`{"jsonrpc":"2.0","id":%s,"error":%s}`, id, missingDataError)
				continue
			}
			result = fmt.Sprintf(`{"node":%q,"method":%q}`, n.Name, c.Method)
			n.mu.Lock()
			linked := n.linked
			n.mu.Unlock()
			if c.Method == "eth_getLogs" && linked {
				result = n.logsOf(c.Params)
			}
			if c.Method == "eth_getBlockByNumber" {
				result = "null"
				if num, ok := n.block(c.Params); ok {
					result = fmt.Sprintf(`{"node":%q,"method":%q,"number":"0x%x"%s}`, n.Name, c.Method, num, n.hashField(num))
				}
			}
		}
		// Unusual spacing, so that a re-encoding balancer would be caught.
		answers[i] = fmt.Sprintf(`{"jsonrpc":"2.0", "id":%s ,"result":%s}`, id, result)
	}
	// A notification (no id) gets no answer (unless SetAnswerNotifications); a request of notifications only gets
	// 204 and no body, as geth and anvil answer it.
	var kept []string
	for i, a := range answers {
		if batch[i].ID != nil || n.notes.Load() {
			kept = append(kept, a)
		}
	}
	if len(kept) == 0 {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	if !isBatch {
		_, _ = io.WriteString(w, kept[0])
		return
	}
	_, _ = io.WriteString(w, "[")
	for i, a := range kept {
		if i > 0 {
			_, _ = io.WriteString(w, ",\n")
		}
		_, _ = io.WriteString(w, a)
	}
	_, _ = io.WriteString(w, "]")
}

// Trap is a server that must receive nothing (where a redirect points): it counts what reaches it, and answers
// a valid JSON-RPC result holding TrapMarker, so that a balancer that followed the redirect would serve it.
type Trap struct {
	URL  string
	hits atomic.Int64
}

// TrapMarker is in every answer of a Trap.
const TrapMarker = "served-by-the-redirect-target"

// NewTrap starts a Trap; it stops when the test ends.
func NewTrap(t testing.TB) *Trap {
	tr := &Trap{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tr.hits.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"jsonrpc":"2.0","id":1,"result":"`+TrapMarker+`"}`)
	}))
	t.Cleanup(srv.Close)
	tr.URL = srv.URL + "/elsewhere"
	return tr
}

// Hits is the number of requests the trap received.
func (tr *Trap) Hits() int64 { return tr.hits.Load() }
