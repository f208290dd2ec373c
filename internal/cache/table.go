// Package cache decides which JSON-RPC answers the balancer may keep and serve again, and keeps them: the one
// table of what may be cached (Table), the decision for one call given the chain's state (Decide, then
// Decision.Storable once the answer is in), the keys (absolute GET URLs, so that both tiers take them), the
// isolate's memory tier (Memory, an LRU bounded in bytes) and the flight group that sends concurrent identical
// reads once (Flights).
//
// The rule it keeps: no answer is served from the cache that the chain could still change. A block at or below
// the chain's finalized block cannot change; a block looked up by hash can, until the block holding it is
// finalized; a fee estimate is kept only while the served head stays where it was (a read at "latest" is only
// shared in flight); everything else is sent upstream each time. The key holds the chain's cache epoch, which a purge or finality going back moves.
//
// Pure Go, no I/O: internal/proxy uses it with the platform's clock and edge cache.
package cache

// Class is how a method's answers may be cached: the kind of its rule in Table.
type Class uint8

// The classes of Table's rules.
const (
	// ByNumber: the method reads a block named in its params. At a number at or below the chain's finalized
	// block the answer is Finalized; at "latest" it is Realtime when the rule's Latest says so; at any other tag
	// ("pending", "safe", "finalized"), at a block hash, or at an unfinalized number it is not cached.
	ByNumber Class = iota + 1
	// ByHashAnswer: the method looks a block or transaction up by hash; the answer's own block number (Answer)
	// says whether it is finalized, and only then is it stored (ByHash).
	ByHashAnswer
	// Head: the method reads the chain's state now and names no block (Realtime).
	Head
	// Shared: the answer is the head itself (eth_blockNumber): identical calls in flight share one attempt, but
	// it is never kept. A kept head is a stale one for as long as it is kept, and an isolate learns of a new head
	// mainly by asking for it (RATIONALE.md).
	Shared
)

// Rule is one method's row of Table.
type Rule struct {
	Method string
	Class  Class
	// Param is the index of the block parameter (ByNumber); Optional: an omitted one means "latest".
	Param    int
	Optional bool
	// Filter: the parameter is an eth_getLogs filter object: cached as Finalized only when both fromBlock and
	// toBlock are numbers at or below the finalized block; a filter by blockHash is looked up by hash.
	Filter bool
	// Latest: a read at "latest" is Realtime (eth_feeHistory, a fee estimate). Every other read at "latest" is
	// never kept, only shared in flight: another isolate's head may already be past a reorg its entry predates
	// (RATIONALE.md).
	Latest bool
	// HashParam: a 32-byte hash in the block parameter's place is a lookup by hash (eth_getBlockReceipts).
	HashParam bool
	// Answer is where the answer shows its block (ByHashAnswer, and a lookup by hash of a ByNumber rule):
	// the result's member ("number" for a block, "blockNumber" for a transaction or receipt), or, with
	// AnswerList, the first element's member (a list of receipts or logs; an empty list is never stored).
	Answer     string
	AnswerList bool
}

// Table is every method whose answers may be cached, in the order README.md's table lists them. Every other
// method's answers never are: writes, filters, subscriptions, traces by hash, anything unknown.
var Table = []Rule{
	{Method: "eth_blockNumber", Class: Shared},
	{Method: "eth_gasPrice", Class: Head},
	{Method: "eth_maxPriorityFeePerGas", Class: Head},
	{Method: "eth_blobBaseFee", Class: Head},
	{Method: "eth_feeHistory", Class: ByNumber, Param: 1, Latest: true},
	{Method: "eth_getBlockByNumber", Class: ByNumber, Param: 0},
	{Method: "eth_getBlockReceipts", Class: ByNumber, Param: 0, HashParam: true, Answer: "blockNumber", AnswerList: true},
	{Method: "eth_getBlockTransactionCountByNumber", Class: ByNumber, Param: 0},
	{Method: "eth_getTransactionByBlockNumberAndIndex", Class: ByNumber, Param: 0},
	{Method: "eth_getUncleCountByBlockNumber", Class: ByNumber, Param: 0},
	{Method: "eth_getUncleByBlockNumberAndIndex", Class: ByNumber, Param: 0},
	{Method: "eth_getBalance", Class: ByNumber, Param: 1, Optional: true},
	{Method: "eth_getCode", Class: ByNumber, Param: 1, Optional: true},
	{Method: "eth_getTransactionCount", Class: ByNumber, Param: 1, Optional: true},
	{Method: "eth_getStorageAt", Class: ByNumber, Param: 2, Optional: true},
	{Method: "eth_call", Class: ByNumber, Param: 1, Optional: true},
	{Method: "eth_getProof", Class: ByNumber, Param: 2},
	{Method: "eth_getLogs", Class: ByNumber, Filter: true, Answer: "blockNumber", AnswerList: true},
	{Method: "trace_block", Class: ByNumber, Param: 0},
	{Method: "debug_traceBlockByNumber", Class: ByNumber, Param: 0},
	{Method: "eth_getBlockByHash", Class: ByHashAnswer, Answer: "number"},
	{Method: "eth_getTransactionByHash", Class: ByHashAnswer, Answer: "blockNumber"},
	{Method: "eth_getTransactionReceipt", Class: ByHashAnswer, Answer: "blockNumber"},
	{Method: "eth_getTransactionByBlockHashAndIndex", Class: ByHashAnswer, Answer: "blockNumber"},
}

// rules is Table by method.
var rules = func() map[string]*Rule {
	m := make(map[string]*Rule, len(Table))
	for i := range Table {
		m[Table[i].Method] = &Table[i]
	}
	return m
}()

// Lookup is method's rule, nil when its answers are never cached.
func Lookup(method string) *Rule { return rules[method] }

// Coalesces reports whether concurrent identical calls of method may share one upstream attempt: the methods of
// Table, which only read (whatever the decision for a call: "pending" and unfinalized reads share too). Writes,
// filters and everything not in Table never do.
func Coalesces(method string) bool { return rules[method] != nil }

// BlockDoc is README.md's "block" cell of r: where its block reference is.
func (r *Rule) BlockDoc() string {
	switch {
	case r.Class == Head || r.Class == Shared:
		return "none (the head)"
	case r.Class == ByHashAnswer:
		return "the answer's `" + r.Answer + "`"
	case r.Filter:
		return "the filter's `fromBlock` and `toBlock`; by `blockHash`: the first log's `blockNumber`"
	}
	s := "param " + string(rune('1'+r.Param))
	if r.Optional {
		s += " (omitted: `latest`)"
	}
	if r.HashParam {
		s += "; by hash: the first receipt's `" + r.Answer + "`"
	}
	return s
}

// KindDoc is README.md's "cached" cell of r: the kinds its answers may be cached as.
func (r *Rule) KindDoc() string {
	switch r.Class {
	case Head:
		return "realtime"
	case Shared:
		return "never (identical calls in flight shared)"
	case ByHashAnswer:
		return "by hash"
	}
	s := "finalized"
	if r.Latest {
		s += "; realtime at `latest`"
	}
	if r.HashParam || r.Filter {
		s += "; by hash"
	}
	return s
}
