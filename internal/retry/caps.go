package retry

import (
	"encoding/json"
	"strings"
)

// Capabilities (issue 20): an upstream's JSON-RPC error can prove that it cannot serve a method at all, or the state
// at an old block, so that the balancer stops asking it for a while. Routing reads the answer with RPCError (the
// class decides whether the next upstream is tried); learning reads it again, more strictly, with Lack: some texts
// that send a request to the next upstream say nothing of the node ("transaction type not supported" is about the
// transaction; "header not found" at a block the node has not reached yet is lag).

// Lack is what an error answer proves an upstream lacks.
type Lack string

// The lacks.
const (
	NoLack      Lack = ""       // nothing learned: an answer, a refusal of this request, or a text not in LackTexts
	LacksMethod Lack = "method" // it does not offer the method (for a while: a node can be reconfigured)
	LacksState  Lack = "state"  // it has no state at the block asked (pruned): nor at any lower block
	// LacksBlock: it does not have the block asked. Below its own head by more than the lag allowed, this is pruned
	// history (balance counts it as LacksState); near or above its head it is lag, and nothing is learned.
	LacksBlock Lack = "block"
)

// LackText is one row of LackTexts: a lower-case fragment of an error message, what it proves, and whose words it
// is (README's table of them lists the same rows).
type LackText struct {
	Fragment string
	Lack     Lack
	// Method: the fragment is "%m", to be read with the request's method in place of %m (lower-cased).
	Method bool
	Who    string
}

// LackTexts are the texts by which nodes and providers say they lack something, in the order they are tried: state
// texts first, as some say "not supported" of a pruned state ("This request is not supported because your node is
// running with state pruning").
var LackTexts = []LackText{
	{"missing trie node", LacksState, false, "go-ethereum, bsc, other geth forks (hash-based state)"},
	{"historical state", LacksState, false, "go-ethereum path-based state: \"historical state <root> is not available\""},
	{"required historical state unavailable", LacksState, false, "go-ethereum (eth_call, tracing)"},
	{"state is not available", LacksState, false, "go-ethereum, reth"},
	{"state not available", LacksState, false, "erigon, reth, providers"},
	{"running with state pruning", LacksState, false, "openethereum/parity: \"… not supported because your node is running with state pruning\""},
	{"has been pruned", LacksState, false, "nethermind, erigon prune modes"},
	{"state pruned", LacksState, false, "providers"},
	{"header not found", LacksBlock, false, "go-ethereum, bsc"},
	{"unknown block", LacksBlock, false, "go-ethereum, erigon, nethermind"},
	{"block not found", LacksBlock, false, "nethermind, besu, providers"},
	{"method not found", LacksMethod, false, "JSON-RPC 2.0's text for -32601: openethereum, nethermind, Conflux, …"},
	{"the method %m does not exist/is not available", LacksMethod, true, "go-ethereum and forks (code -32601; some forks -32000)"},
	{"method_not_found", LacksMethod, false, "thirdweb and other gateways: \"METHOD_NOT_FOUND: The method being requested is not available on this server\""},
	{"method not supported", LacksMethod, false, "providers (trace and debug families on plans without them)"},
	{"unsupported method", LacksMethod, false, "providers: \"Unsupported method: trace_block\""},
	{"method %m is not supported", LacksMethod, true, "providers"},
	{"%m is not supported", LacksMethod, true, "providers: \"trace_block is not supported on this network\""},
	{"%m is not available", LacksMethod, true, "providers: \"debug_traceCall is not available on the free tier\""},
	{"%m method is not available", LacksMethod, true, "providers"},
}

// LackIn reads what the error (code, message) of an answer to method proves its upstream lacks. A revert proves
// nothing; -32601 proves the method missing whatever its text; otherwise the first row of LackTexts found in the
// message, or NoLack. A text that does not name a method or a state ("transaction type not supported",
// "not supported" alone) proves nothing: a request's own fault must never mark an upstream.
func LackIn(method string, code int64, message string) Lack {
	m := strings.ToLower(message)
	if strings.Contains(m, "revert") {
		return NoLack
	}
	for _, r := range LackTexts {
		if r.Lack == LacksMethod {
			break // state and block rows go first, then -32601, then the method rows
		}
		if strings.Contains(m, r.Fragment) {
			return r.Lack
		}
	}
	if code == -32601 {
		return LacksMethod
	}
	lm := strings.ToLower(method)
	for _, r := range LackTexts {
		if r.Lack != LacksMethod {
			continue
		}
		f := r.Fragment
		if r.Method {
			if lm == "" {
				continue
			}
			f = strings.ReplaceAll(f, "%m", lm)
		}
		if strings.Contains(m, f) {
			return r.Lack
		}
	}
	return NoLack
}

// LackOf is LackIn of the error member of an answer (ErrorMember's value; nil or malformed: NoLack).
func LackOf(method string, errMember []byte) Lack {
	if len(errMember) == 0 || errMember[0] != '{' {
		return NoLack
	}
	// The members matched exactly, as classify matches them.
	var e map[string]json.RawMessage
	var code int64
	var message string
	if json.Unmarshal(errMember, &e) != nil || e["code"] == nil || e["message"] == nil ||
		json.Unmarshal(e["code"], &code) != nil || json.Unmarshal(e["message"], &message) != nil {
		return NoLack
	}
	return LackIn(method, code, message)
}
