package faultproxy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/evmlb/evmlb/e2e/internal/rpc"
)

// Words are the words in which a provider refuses an eth_getLogs too large (SetLogsLimit): each the provider's
// text and JSON-RPC code, as internal/logsplit's Refusals table quotes them, with the proxy's numbers.
type Words string

// The providers' words. Each says which kinds of refusal it has: too many blocks (range) and too many logs
// (results); a hint is a range the text suggests.
const (
	// AlchemyWords: range -32600 "Under the Free tier plan, … up to a N block range … [0xa, 0xb]" and results
	// -32602 "Log response size exceeded … a cap of NK logs … [0xa, 0xb]", both with a hint.
	AlchemyWords Words = "alchemy"
	// InfuraWords: results -32005 "query returned more than N results. Try with this block range [0xa, 0xb].".
	InfuraWords Words = "infura"
	// RethWords: range -32602 "query exceeds max block range N"; results -32602 "query exceeds max results N,
	// retry with the range a-b" (decimal).
	RethWords Words = "reth"
	// GethWords: range -32000 "exceed maximum block range: N" (geth-based public nodes).
	GethWords Words = "geth"
	// DRPCWords: range -32000 "ranges over N blocks are not supported on freetier".
	DRPCWords Words = "drpc"
	// ErigonWords: results -32000 "too many logs, limit is N, please narrow your filter" (no hint).
	ErigonWords Words = "erigon"
)

// LogsLimit is a provider's caps on one eth_getLogs (SetLogsLimit): Range blocks and Results logs at most (0:
// none), refused in RangeWords and ResultsWords.
type LogsLimit struct {
	Range, Results           uint64
	RangeWords, ResultsWords Words
}

// SetLogsLimit makes the proxy a provider that caps eth_getLogs (issue 20): a single eth_getLogs whose fromBlock and
// toBlock are block numbers is refused, without asking the node, when its range is over l.Range blocks; else it
// goes to the node, and an answer holding more than l.Results logs is replaced by the results refusal (its hint:
// the widest range from fromBlock holding at most l.Results logs). Other requests (tags, blockHash, batches) pass.
// The zero LogsLimit turns it off. It combines with the faults that pass requests on.
func (p *Proxy) SetLogsLimit(l LogsLimit) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.logs = l
}

// LogsRefused is how many eth_getLogs SetLogsLimit's caps refused, by kind ("range", "results").
func (p *Proxy) LogsRefused() (byRange, byResults int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.logsRefused[0], p.logsRefused[1]
}

// logsRange reads a single eth_getLogs call's range of block numbers.
func logsRange(e element) (from, to uint64, ok bool) {
	if e.Method != "eth_getLogs" || len(e.Params) != 1 {
		return 0, 0, false
	}
	var f struct {
		FromBlock json.RawMessage `json:"fromBlock"`
		ToBlock   json.RawMessage `json:"toBlock"`
		BlockHash json.RawMessage `json:"blockHash"`
	}
	if json.Unmarshal(e.Params[0], &f) != nil || f.BlockHash != nil {
		return 0, 0, false
	}
	from, err1 := rpc.Quantity(f.FromBlock)
	to, err2 := rpc.Quantity(f.ToBlock)
	return from, to, err1 == nil && err2 == nil && from <= to
}

// serveLogsLimit answers e under l when it is an eth_getLogs over block numbers (true), else leaves it (false).
func (p *Proxy) serveLogsLimit(w http.ResponseWriter, r *http.Request, target string, e element, l LogsLimit) bool {
	from, to, ok := logsRange(e)
	if !ok {
		return false
	}
	if l.Range > 0 && to-from+1 > l.Range {
		p.countLogsRefused(0)
		code, msg := rangeWords(l, from)
		writeJSON(w, []json.RawMessage{errorAnswer(e.ID, code, msg)}, false)
		return true
	}
	req, err := http.NewRequestWithContext(r.Context(), http.MethodPost, target, bytes.NewReader(e.raw))
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return true
	}
	req.Header.Set("Content-Type", "application/json")
	p.mu.Lock()
	p.forwarded[e.Method]++
	p.mu.Unlock()
	resp, err := p.client.Do(req)
	if err != nil {
		http.Error(w, "node unreachable", http.StatusBadGateway)
		return true
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, rpc.MaxBody))
	if err != nil {
		return true
	}
	var logs []struct {
		BlockNumber json.RawMessage `json:"blockNumber"`
	}
	if m, err := rpc.Decode(body); l.Results > 0 && err == nil && m.Error == nil && json.Unmarshal(m.Result, &logs) == nil &&
		uint64(len(logs)) > l.Results {
		// The hint: from fromBlock to the block before the one holding the (Results+1)-th log.
		end := from
		if b, err := rpc.Quantity(logs[l.Results].BlockNumber); err == nil && b > from {
			end = b - 1
		}
		p.countLogsRefused(1)
		code, msg := resultsWords(l, from, end)
		writeJSON(w, []json.RawMessage{errorAnswer(e.ID, code, msg)}, false)
		return true
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(resp.StatusCode)
	_, _ = w.Write(body)
	return true
}

func (p *Proxy) countLogsRefused(kind int) {
	p.mu.Lock()
	p.logsRefused[kind]++
	p.mu.Unlock()
}

// kilo writes n as Alchemy does: "2K" for thousands, else the digits.
func kilo(n uint64) string {
	if n >= 1000 && n%1000 == 0 {
		return strconv.FormatUint(n/1000, 10) + "K"
	}
	return strconv.FormatUint(n, 10)
}

// rangeWords is the refusal of a range from `from` over l.Range blocks.
func rangeWords(l LogsLimit, from uint64) (int, string) {
	switch l.RangeWords {
	case AlchemyWords:
		return -32600, fmt.Sprintf("Under the Free tier plan, you can make eth_getLogs requests with up to a %d block range. "+
			"Based on your parameters, this block range should work: [%s, %s]. Upgrade to PAYG for expanded block range.",
			l.Range, rpc.Hex(from), rpc.Hex(from+l.Range-1))
	case RethWords:
		return -32602, fmt.Sprintf("query exceeds max block range %d", l.Range)
	case DRPCWords:
		return -32000, fmt.Sprintf("ranges over %d blocks are not supported on freetier", l.Range)
	default: // GethWords
		return -32000, fmt.Sprintf("exceed maximum block range: %d", l.Range)
	}
}

// resultsWords is the refusal of an answer over l.Results logs; [from, end] holds at most l.Results.
func resultsWords(l LogsLimit, from, end uint64) (int, string) {
	switch l.ResultsWords {
	case AlchemyWords:
		blocks := l.Range
		if blocks == 0 {
			blocks = 2000
		}
		return -32602, fmt.Sprintf("Log response size exceeded. You can make eth_getLogs requests with up to a %s block range "+
			"and no limit on the response size, or you can request any block range with a cap of %s logs in the response. "+
			"Based on your parameters and the response size limit, this block range should work: [%s, %s]",
			kilo(blocks), kilo(l.Results), rpc.Hex(from), rpc.Hex(end))
	case RethWords:
		return -32602, fmt.Sprintf("query exceeds max results %d, retry with the range %d-%d", l.Results, from, end)
	case ErigonWords:
		return -32000, fmt.Sprintf("too many logs, limit is %d, please narrow your filter", l.Results)
	default: // InfuraWords
		return -32005, fmt.Sprintf("query returned more than %d results. Try with this block range [%s, %s].", l.Results, rpc.Hex(from), rpc.Hex(end))
	}
}
