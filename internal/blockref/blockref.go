// Package blockref finds the block a JSON-RPC request needs, so that it is never sent to an upstream known to be
// below it. It reads only the parameter that names the block; params stay raw JSON everywhere else.
//
// Params are read as jsonrpc.Parse reads a body: strictly, keys matched exactly. Parse refuses an object with two
// keys equal under case folding, so a request can no longer name a block twice ("fromBlock" and "FromBlock"); a
// lone "FromBlock" or "BlockNumber" is not the member the API names and is ignored, as a node that reads keys
// exactly ignores it. A node that reads them case-insensitively (geth) takes it for the member; the reference is
// then too low or "latest", and the worst that comes of it is a "header not found" from a lagging upstream, which
// is retried on the next one: a block reference is a routing hint, never a policy.
package blockref

import (
	"encoding/json"
	"strconv"
	"strings"

	"github.com/evmlb/evmlb/internal/jsonrpc"
)

// Kind says what a request's block reference is.
type Kind int

const (
	None     Kind = iota // the request names no block (or one by hash only): any upstream may answer
	Number               // a block number: Ref.Number
	Latest               // "latest", "pending", "safe", "finalized" or an omitted block: the head
	Earliest             // "earliest": block 0
)

// Ref is the block a request needs.
type Ref struct {
	Kind   Kind
	Number uint64 // with Kind Number: the highest block named (for ranges, the end)
}

// position says where the block parameter of a method is, and whether it is a filter object.
type position struct {
	index  int
	filter bool // an eth_getLogs-style filter with fromBlock/toBlock
	// optional: an omitted parameter means "latest"
	optional bool
}

// methods maps each method that names a block to its block parameter.
var methods = map[string]position{
	"eth_getBlockByNumber":                    {0, false, false},
	"eth_getBlockTransactionCountByNumber":    {0, false, false},
	"eth_getUncleCountByBlockNumber":          {0, false, false},
	"eth_getUncleByBlockNumberAndIndex":       {0, false, false},
	"eth_getTransactionByBlockNumberAndIndex": {0, false, false},
	"eth_getBlockReceipts":                    {0, false, false},
	"eth_getHeaderByNumber":                   {0, false, false},
	"debug_traceBlockByNumber":                {0, false, false},
	"trace_block":                             {0, false, false},
	"trace_replayBlockTransactions":           {0, false, false},
	"eth_getBalance":                          {1, false, true},
	"eth_getCode":                             {1, false, true},
	"eth_getTransactionCount":                 {1, false, true},
	"eth_call":                                {1, false, true},
	"eth_estimateGas":                         {1, false, true},
	"eth_createAccessList":                    {1, false, true},
	"eth_feeHistory":                          {1, false, false},
	"debug_traceCall":                         {1, false, true},
	"trace_call":                              {2, false, true},
	"eth_getStorageAt":                        {2, false, true},
	"eth_getProof":                            {2, false, true},
	"eth_getLogs":                             {0, true, false},
	"eth_newFilter":                           {0, true, false},
}

// Of returns the block that method with params needs. Unknown methods, malformed params and block hashes give
// Kind None: the reference is a routing hint, never a reason to reject a request.
func Of(method string, params json.RawMessage) Ref {
	pos, ok := methods[method]
	if !ok {
		return Ref{}
	}
	var list []json.RawMessage
	if len(params) > 0 {
		if list, ok = jsonrpc.Array(params); !ok {
			return Ref{}
		}
	}
	if pos.index >= len(list) {
		if pos.optional {
			return Ref{Kind: Latest}
		}
		return Ref{}
	}
	p := list[pos.index]
	if pos.filter {
		return filter(p)
	}
	return param(p)
}

// param reads a block parameter: a quantity, a tag, or an EIP-1898 object {blockNumber} / {blockHash}.
func param(p json.RawMessage) Ref {
	if s, ok := jsonrpc.String(p); ok {
		return tag(s)
	}
	if f, ok := jsonrpc.Fields(p, "blockNumber"); ok && f[0] != nil {
		if s, ok := jsonrpc.String(f[0]); ok {
			return tag(s)
		}
	}
	return Ref{}
}

// filter reads the range of a log filter: the needed block is toBlock (default latest), or fromBlock when it is
// higher. A filter by blockHash names no number, and neither does one with a member of the wrong type.
func filter(p json.RawMessage) Ref {
	f, ok := jsonrpc.Fields(p, "fromBlock", "toBlock", "blockHash")
	if !ok {
		return Ref{}
	}
	from, hasFrom, ok1 := optString(f[0])
	toTag, hasTo, ok2 := optString(f[1])
	_, hasHash, ok3 := optString(f[2])
	if !ok1 || !ok2 || !ok3 || hasHash {
		return Ref{}
	}
	to := Ref{Kind: Latest}
	if hasTo {
		to = tag(toTag)
	}
	if hasFrom {
		if from := tag(from); from.Kind == Latest || (from.Kind == Number && to.Kind == Number && from.Number > to.Number) {
			return from
		}
	}
	return to
}

// optString reads an optional string member: absent or null is not there; ok is false for another type.
func optString(v json.RawMessage) (s string, there, ok bool) {
	if v == nil || string(v) == "null" {
		return "", false, true
	}
	s, ok = jsonrpc.String(v)
	return s, ok, ok
}

func tag(s string) Ref {
	switch s {
	case "latest", "pending", "safe", "finalized":
		return Ref{Kind: Latest}
	case "earliest":
		return Ref{Kind: Earliest}
	}
	if n, ok := ParseQuantity(s); ok {
		return Ref{Kind: Number, Number: n}
	}
	return Ref{}
}

// ParseQuantity parses a JSON-RPC quantity ("0x1b4"). Anything else, including a 32-byte hash, is not one.
func ParseQuantity(s string) (uint64, bool) {
	if !strings.HasPrefix(s, "0x") && !strings.HasPrefix(s, "0X") || len(s) < 3 || len(s) > 18 {
		return 0, false
	}
	n, err := strconv.ParseUint(s[2:], 16, 64)
	return n, err == nil
}
