// Package healthcheck is the health check's pure part: the calls a check sends an upstream and how it reads the
// answers. The Upstream objects (durable) send them on alarms and take the result into the routing table;
// `evmlb validate --probe` (host/internal/cli) sends the same calls once and reads them the same way, so that what
// it prints is what the balancer's checks will find.
package healthcheck

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/evmlb/evmlb/internal/blockref"
	"github.com/evmlb/evmlb/internal/retry"
)

// Ids of the calls in a batch check.
const (
	idChainID = "1"
	idBlock   = "2"
	idSyncing = "3"
	idProbe   = "4"
	idFinal   = "5"
	idRecheck = "6"
)

// Call is the body of a single call of method without parameters (eth_chainId, eth_blockNumber, eth_syncing).
func Call(method string) []byte {
	return []byte(`{"jsonrpc":"2.0","id":1,"method":"` + method + `","params":[]}`)
}

// BlockCall is the body of eth_getBlockTransactionCountByNumber for block n: a small answer that says whether the
// upstream has the block.
func BlockCall(n uint64) []byte {
	return []byte(`{"jsonrpc":"2.0","id":1,"method":"eth_getBlockTransactionCountByNumber","params":["0x` + strconv.FormatUint(n, 16) + `"]}`)
}

// FinalizedCall is the body of eth_getBlockByNumber("finalized", false): the upstream's finalized block, of which
// a check reads only the number (ReadFinalized).
func FinalizedCall() []byte {
	return []byte(`{"jsonrpc":"2.0","id":1,"method":"eth_getBlockByNumber","params":["finalized",false]}`)
}

// Final is an upstream's finalized block as a check read it: its number and hash (Hash "" when the answer had
// none; Number 0: no finalized block).
type Final struct {
	Number uint64
	Hash   string
}

// Known reports whether f can be asked again: a number and a hash.
func (f Final) Known() bool { return f.Number != 0 && f.Hash != "" }

// RecheckCall is the body of eth_getBlockByNumber at f's number (hex), false: the block a check compares with the
// finalized block an earlier check found (ReadRecheck).
func RecheckCall(f Final) []byte {
	return []byte(`{"jsonrpc":"2.0","id":1,"method":"eth_getBlockByNumber","params":["0x` + strconv.FormatUint(f.Number, 16) + `",false]}`)
}

// Batch is a check's calls in one batch: eth_chainId, eth_blockNumber, eth_syncing, eth_getBlockByNumber at the
// "finalized" tag, when prev is not 0 eth_getBlockTransactionCountByNumber at prev (the head the previous check
// found), and when final is known (the finalized block an earlier check found, with its hash)
// eth_getBlockByNumber at final's number, whose hash says whether the chain replaced that block (ReadRecheck).
func Batch(prev uint64, final Final) []byte {
	body := `[{"jsonrpc":"2.0","id":` + idChainID + `,"method":"eth_chainId","params":[]},` +
		`{"jsonrpc":"2.0","id":` + idBlock + `,"method":"eth_blockNumber","params":[]},` +
		`{"jsonrpc":"2.0","id":` + idSyncing + `,"method":"eth_syncing","params":[]},` +
		`{"jsonrpc":"2.0","id":` + idFinal + `,"method":"eth_getBlockByNumber","params":["finalized",false]}`
	if prev != 0 {
		body += `,{"jsonrpc":"2.0","id":` + idProbe + `,"method":"eth_getBlockTransactionCountByNumber","params":["0x` + strconv.FormatUint(prev, 16) + `"]}`
	}
	if final.Known() {
		body += `,{"jsonrpc":"2.0","id":` + idRecheck + `,"method":"eth_getBlockByNumber","params":["0x` + strconv.FormatUint(final.Number, 16) + `",false]}`
	}
	return []byte(body + "]")
}

// Result is what one check found.
type Result struct {
	Class   retry.Class // retry.OK when eth_chainId and eth_blockNumber both answered quantities
	Status  int         // the HTTP status of a failed check's answer when that status is the failure (0: none)
	ChainID string      // eth_chainId's quantity, as answered
	Height  uint64
	Syncing bool
	Probe   Block // what the upstream said of the block at the previous head
	// Finalized is the number of the upstream's "finalized" block (ReadFinalized); 0: none. FinalizedHash is
	// its hash ("" when none, or the answer had none).
	Finalized     uint64
	FinalizedHash string
	// Replaced is the number of the finalized block an earlier check found (the final passed to Batch) when the
	// upstream now answers another hash at that number, or null (it no longer has a block there): the chain
	// replaced a block this upstream had called final (ReadRecheck). 0: not replaced, or not asked.
	Replaced uint64
}

// Block is what an upstream said when asked for a block.
type Block int

const (
	BlockUnknown Block = iota // not asked, or an answer that proves nothing
	BlockThere                // the block's transaction count: it has it
	BlockMissing              // null, or an error saying the block is not there
)

// ReadBatch reads the answer to Batch(prev, final), a 2xx JSON body. ok is false when it is not a batch's answer (not an
// array, or lacking an answer to eth_chainId or eth_blockNumber): the upstream does not seem to take batches and
// is asked call by call. An answer to eth_syncing that is missing or fails means not syncing (many providers do
// not offer it).
func ReadBatch(body []byte, prev uint64, final Final) (r Result, ok bool) {
	var elems []json.RawMessage
	if json.Unmarshal(body, &elems) != nil {
		return Result{}, false
	}
	byID := map[string]json.RawMessage{}
	for _, e := range elems {
		var m struct {
			ID json.RawMessage `json:"id"`
		}
		if json.Unmarshal(e, &m) == nil {
			byID[string(bytes.TrimSpace(m.ID))] = e
		}
	}
	if byID[idChainID] == nil || byID[idBlock] == nil {
		return Result{}, false
	}
	var err error
	if r.ChainID, _, err = ReadQuantity(byID[idChainID]); err != nil {
		return Result{Class: ClassOf(err)}, true
	}
	if _, r.Height, err = ReadQuantity(byID[idBlock]); err != nil {
		return Result{Class: ClassOf(err), ChainID: r.ChainID}, true
	}
	r.Syncing = Syncing(byID[idSyncing])
	f := ReadFinalBlock(byID[idFinal])
	r.Finalized, r.FinalizedHash = f.Number, f.Hash
	if final.Known() && ReadRecheck(byID[idRecheck], final) {
		r.Replaced = final.Number
	}
	if prev != 0 {
		r.Probe = ReadBlock(byID[idProbe])
	}
	return r, true
}

// Failure is why an answer did not give what a check asked for.
type Failure struct {
	Class retry.Class // retry.HealthRPCError or retry.HealthBadResult
	Text  string      // for a person: "JSON-RPC error -32601 the method does not exist", "not a quantity", …
}

func (f *Failure) Error() string { return f.Text }

// ClassOf is err's class: a *Failure's, else retry.HealthBadResult.
func ClassOf(err error) retry.Class {
	if f, ok := err.(*Failure); ok {
		return f.Class
	}
	return retry.HealthBadResult
}

// Read reads a single JSON-RPC answer: its result, or a *Failure saying why there is none.
func Read(answer []byte) (json.RawMessage, error) {
	var a struct {
		Result json.RawMessage `json:"result"`
		Error  json.RawMessage `json:"error"`
	}
	if json.Unmarshal(answer, &a) != nil {
		return nil, &Failure{retry.HealthBadResult, "not a JSON-RPC answer"}
	}
	if len(a.Error) > 0 && string(a.Error) != "null" {
		var e struct {
			Code    int64  `json:"code"`
			Message string `json:"message"`
		}
		_ = json.Unmarshal(a.Error, &e)
		if len(e.Message) > 80 {
			e.Message = e.Message[:80]
		}
		return nil, &Failure{retry.HealthRPCError, fmt.Sprintf("JSON-RPC error %d %s", e.Code, e.Message)}
	}
	if a.Result == nil {
		return nil, &Failure{retry.HealthBadResult, "no result"}
	}
	return a.Result, nil
}

// ReadQuantity reads an answer whose result must be a hex quantity: the quantity as answered and its value.
func ReadQuantity(answer []byte) (string, uint64, error) {
	res, err := Read(answer)
	if err != nil {
		return "", 0, err
	}
	var q string
	n, ok := uint64(0), false
	if json.Unmarshal(res, &q) == nil {
		n, ok = blockref.ParseQuantity(q)
	}
	if !ok {
		return "", 0, &Failure{retry.HealthBadResult, "not a quantity"}
	}
	return q, n, nil
}

// Syncing reads an answer to eth_syncing: true for a sync-progress object (with currentBlock or highestBlock);
// false, an error, anything else or no answer (nil) mean not syncing.
func Syncing(answer []byte) bool {
	var a struct {
		Result map[string]json.RawMessage `json:"result"`
	}
	if answer == nil || json.Unmarshal(answer, &a) != nil || a.Result == nil {
		return false
	}
	_, cur := a.Result["currentBlock"]
	_, high := a.Result["highestBlock"]
	return cur || high
}

// ReadFinalized reads an answer to eth_getBlockByNumber("finalized", false): its block's number. An error (a node
// without the tag), a null result, no answer (nil), or a block without a number mean none: 0. It never fails a
// check: finality is the cache's business, not routing's.
func ReadFinalized(answer []byte) uint64 { return ReadFinalBlock(answer).Number }

// ReadFinalBlock reads an answer to eth_getBlockByNumber("finalized", false) as ReadFinalized does, with the
// block's hash ("" when it has none that looks like one: it is then never asked again).
func ReadFinalBlock(answer []byte) Final {
	if answer == nil {
		return Final{}
	}
	var a struct {
		Result *struct {
			Number string `json:"number"`
			Hash   string `json:"hash"`
		} `json:"result"`
	}
	if json.Unmarshal(answer, &a) != nil || a.Result == nil {
		return Final{}
	}
	n, _ := blockref.ParseQuantity(a.Result.Number)
	if n == 0 {
		return Final{}
	}
	f := Final{Number: n}
	if isHash(a.Result.Hash) {
		f.Hash = a.Result.Hash
	}
	return f
}

// isHash reports whether h looks like a block hash: 0x and 64 hex digits.
func isHash(h string) bool {
	if len(h) != 66 || h[0] != '0' || (h[1] != 'x' && h[1] != 'X') {
		return false
	}
	for _, c := range []byte(h[2:]) {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// ReadRecheck reads an answer to eth_getBlockByNumber at known's number (RecheckCall, or Batch's element): true
// when the chain replaced the block an earlier check found final there: a block with another hash, or null (the
// node no longer has a block at that height). An error (a node that refuses the call, a provider's hiccup), no
// answer (nil), or anything that is not a block with a hash proves nothing: false.
func ReadRecheck(answer []byte, known Final) bool {
	if answer == nil || !known.Known() {
		return false
	}
	var a struct {
		Result json.RawMessage `json:"result"`
		Error  json.RawMessage `json:"error"`
	}
	if json.Unmarshal(answer, &a) != nil || len(a.Error) > 0 && string(bytes.TrimSpace(a.Error)) != "null" || len(a.Result) == 0 {
		return false
	}
	if string(bytes.TrimSpace(a.Result)) == "null" {
		return true
	}
	var b struct {
		Hash string `json:"hash"`
	}
	if json.Unmarshal(a.Result, &b) != nil || !isHash(b.Hash) {
		return false
	}
	return !strings.EqualFold(b.Hash, known.Hash)
}

// ReadBlock reads an answer to eth_getBlockTransactionCountByNumber: a quantity says the block is there; a null
// result (geth) or an error saying so ("header not found", anvil's "BlockOutOfRangeError: block height is 0 but
// requested was 100") that it is missing. Any other answer, or none (nil), proves nothing.
func ReadBlock(answer []byte) Block {
	if answer == nil {
		return BlockUnknown
	}
	if _, _, err := ReadQuantity(answer); err == nil {
		return BlockThere
	}
	var a struct {
		Result json.RawMessage `json:"result"`
		Error  *struct {
			Code    int64  `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	switch {
	case json.Unmarshal(answer, &a) != nil:
		return BlockUnknown
	case a.Error != nil:
		m := strings.ToLower(a.Error.Message)
		if retry.RPCError(a.Error.Code, a.Error.Message) == retry.MissingData || strings.Contains(m, "out of range") || strings.Contains(m, "outofrange") {
			return BlockMissing
		}
		return BlockUnknown
	case len(a.Result) == 0 || string(bytes.TrimSpace(a.Result)) == "null":
		return BlockMissing
	}
	return BlockUnknown
}
