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
	"bytes"
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

// Behind reports whether answer, an upstream's answer to a single call of method with params, shows the upstream
// below head, the head the chain has served: eth_getBlockByNumber (or eth_getHeaderByNumber) at "latest" whose
// block number is lower than head, or at a block number up to head whose result is null (the upstream does not
// have it yet). seen is the height the answer shows the upstream at, 0 when it does not say. Such an answer must
// not reach the client: another upstream has the block. Tags other than "latest" ("safe", "finalized",
// "pending") are lower or not yet a block by nature and are not judged. Only the start of the result is read (a
// block's own "number" comes before its transactions in the encodings of geth and of reth/anvil); when unsure,
// Behind says no.
func Behind(method string, params json.RawMessage, head uint64, answer []byte) (seen uint64, behind bool) {
	if head == 0 || (method != "eth_getBlockByNumber" && method != "eth_getHeaderByNumber") {
		return 0, false
	}
	var list []json.RawMessage
	if json.Unmarshal(params, &list) != nil || len(list) == 0 {
		return 0, false
	}
	var block string
	if json.Unmarshal(list[0], &block) != nil {
		return 0, false
	}
	result, ok := member(answer, `"result"`)
	if !ok {
		return 0, false
	}
	null := bytes.HasPrefix(result, []byte("null"))
	if block == "latest" {
		if null {
			return 0, true
		}
		number, ok := member(result, `"number"`)
		if !ok || len(number) < 2 || number[0] != '"' {
			return 0, false
		}
		end := bytes.IndexByte(number[1:], '"')
		n, ok := ParseQuantity(string(number[1 : 1+max(end, 0)]))
		return n, ok && n < head
	}
	if n, ok := ParseQuantity(block); ok && n <= head && null {
		return n - min(n, 1), true
	}
	return 0, false
}

// member returns the bytes after the first occurrence of key and its colon (whitespace skipped), false when key
// is not there.
func member(b []byte, key string) ([]byte, bool) {
	i := bytes.Index(b, []byte(key))
	if i < 0 {
		return nil, false
	}
	rest := bytes.TrimLeft(b[i+len(key):], " \t\r\n")
	if len(rest) == 0 || rest[0] != ':' {
		return nil, false
	}
	return bytes.TrimLeft(rest[1:], " \t\r\n"), true
}
