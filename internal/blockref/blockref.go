// Package blockref finds the block a JSON-RPC request needs, so that it is never sent to an upstream known to be
// below it. It reads only the parameter that names the block; params stay raw JSON everywhere else.
package blockref

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
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
	if len(params) > 0 && json.Unmarshal(params, &list) != nil {
		return Ref{}
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
	var s string
	if json.Unmarshal(p, &s) == nil {
		return tag(s)
	}
	var obj struct {
		BlockNumber *string `json:"blockNumber"`
	}
	if json.Unmarshal(p, &obj) == nil && obj.BlockNumber != nil {
		return tag(*obj.BlockNumber)
	}
	return Ref{}
}

// filter reads the range of a log filter: the needed block is toBlock (default latest), or fromBlock when it is
// higher. A filter by blockHash names no number.
func filter(p json.RawMessage) Ref {
	var f struct {
		FromBlock *string `json:"fromBlock"`
		ToBlock   *string `json:"toBlock"`
		BlockHash *string `json:"blockHash"`
	}
	if json.Unmarshal(p, &f) != nil || f.BlockHash != nil {
		return Ref{}
	}
	to := Ref{Kind: Latest}
	if f.ToBlock != nil {
		to = tag(*f.ToBlock)
	}
	if f.FromBlock != nil {
		if from := tag(*f.FromBlock); from.Kind == Latest || (from.Kind == Number && to.Kind == Number && from.Number > to.Number) {
			return from
		}
	}
	return to
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
