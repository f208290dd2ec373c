// Package retry is the balancer's one table of failure classes: for every way an attempt at an upstream can end,
// whether the request goes to the next upstream, and whether a write may be sent again.
//
// The rule for writes (eth_sendRawTransaction, eth_sendTransaction, …): they are retried only when the failure
// proves the request never reached the upstream (the connection was never made). Anything else may have reached
// it, and a second send could duplicate a transaction or leak a replay.
package retry

import (
	"encoding/json"
	"strings"
)

// Class names how one attempt ended. The zero value is OK.
type Class string

// The classes. Each has a row in Table.
const (
	OK      Class = ""        // an answer, including JSON-RPC errors that are the user's (reverts, bad params)
	Refused Class = "refused" // the connection was never made (refused, DNS): the request never left
	Network Class = "network" // the connection broke after it was made, or an unknown transport error
	// Poison: the connection broke after the request left, on a trace (Traces), and
	// the same upstream then failed a probe at once: the request likely brought the node down, so no other
	// upstream is given it (internal/proxy decides, with Probe).
	Poison       Class = "poison"
	Timeout      Class = "timeout"       // the attempt timeout passed with no answer
	HTTP5xx      Class = "http_5xx"      // the upstream answered HTTP 5xx
	HTTP429      Class = "http_429"      // the upstream is rate limiting us
	HTTPRedirect Class = "http_redirect" // a 3xx redirect: never followed, never served
	HTTPOther    Class = "http_status"   // another non-2xx status (401/403: bad key, 404: wrong path, …)
	NonJSON      Class = "non_json"      // a 2xx answer whose body is not JSON-RPC
	BadAnswer    Class = "bad_answer"    // JSON-RPC that does not answer the calls sent: wrong ids, wrong batch shape
	MissingData  Class = "missing_data"  // the node lacks the state or block asked for ("header not found", …)
	Overloaded   Class = "overloaded"    // JSON-RPC "limit exceeded", "rate limit", "too many requests", …
	Unsupported  Class = "unsupported"   // the node does not offer the method (-32601 and kin)
	WrongChain   Class = "wrong_chain"   // the upstream serves another chain id
	TooLarge     Class = "too_large"     // the answer is over EVMLB_MAX_RESPONSE_BYTES
	Behind       Class = "behind"        // a head-sensitive answer more than max_lag_blocks below the known head
	WrongHash    Class = "wrong_hash"    // a broadcast transaction's hash answered is not the raw bytes' keccak-256
	Canceled     Class = "canceled"      // the caller went away, or a hedge won: nothing to say of the upstream
	NoAttempt    Class = "no_attempt"    // no upstream was there to try
	OverBudget   Class = "over_budget"   // the upstream's request budget (max_rps, max_per_day) is spent: not sent
	// Health checks read the answer itself; these two are theirs, never a request's.
	HealthRPCError  Class = "rpc_error"  // a health check's answer is a JSON-RPC error
	HealthBadResult Class = "bad_result" // a health check's result is not a hex quantity
)

// Row is one line of the table.
type Row struct {
	Class Class
	// NextUpstream: a read that ends so is tried on the next upstream.
	NextUpstream bool
	// WriteSafe: a write that ends so may be sent to the next upstream (it never reached this one).
	WriteSafe bool
	// Penalise: the attempt counts as the upstream's failure (circuit breaker, error rate). Missing data and
	// unsupported methods do not: the node is healthy, it just cannot answer this one.
	Penalise bool
	// Answer: the upstream answered with JSON-RPC, so when no other upstream does better its answer is passed
	// on unchanged (a "header not found" from the last upstream tried is more useful than a balancer error).
	Answer bool
	// Doc says when the class applies: README.md's "when" cell of the class.
	Doc string
}

// Table is every class with its policy, in the order README.md's class table lists them; Doc is that table's
// "when" cell, and readme_test.go holds the README's table to this one.
var Table = []Row{
	{OK, false, false, false, true, "a result, or a JSON-RPC error that is the caller's (revert, invalid params, nonce too low, …)"},
	// Even a write goes to the next upstream: it never reached this one.
	{Refused, true, true, true, false, "connection refused, host not found: the request never left"},
	{Network, true, false, true, false, "the connection broke after it was made, or another transport error"},
	// Not sent on: the request likely crashed this upstream and would crash the next (issue 18).
	{Poison, false, false, true, false, "the connection broke after a trace (`debug_*`, `trace_*`) was sent, and the upstream then failed an `eth_chainId` probe at once: the request likely brought it down (answered 502, -32072)"},
	{Timeout, true, false, true, false, "no answer within the attempt timeout"},
	{HTTP5xx, true, false, true, false, "HTTP 500–599"},
	{HTTP429, true, false, true, false, "HTTP 429 (the upstream then cools down)"},
	// A redirect is not followed: it could send the request, and its keys, elsewhere.
	{HTTPRedirect, true, false, true, false, "HTTP 300–399: a redirect is never followed, and its body never served"},
	{HTTPOther, true, false, true, false, "another non-2xx status (401/403 bad key, 404 wrong path)"},
	{NonJSON, true, false, true, false, "a 2xx body that is not JSON-RPC 2.0: not JSON in UTF-8, nested deeper than 10,000, a response without `\"jsonrpc\":\"2.0\"` or an `id`, or with both or neither of `result` and `error`"},
	// Never passed on: the client would get another call's answer, or none for its own.
	{BadAnswer, true, false, true, false, "JSON-RPC that does not answer the calls sent: an `id` that is not the call's, an array for one call, an object for a batch, a batch answer with an element missing, extra or twice"},
	{MissingData, true, false, false, true, "\"header not found\", \"missing trie node\", \"unknown block\", …"},
	{Overloaded, true, false, true, true, "JSON-RPC -32005, \"limit exceeded\", \"rate limit\", …"},
	{Unsupported, true, false, false, true, "JSON-RPC -32601 method not found on this node"},
	{WrongChain, true, false, true, false, "the upstream's `eth_chainId` differs from the chain's (it is then quarantined)"},
	// The upstream's failure (issue 17): its answer would have been the head as it was minutes ago.
	{Behind, true, false, true, true, "an `eth_blockNumber`, or a block at `latest`, more than `max_lag_blocks` below the head the isolate knows"},
	// The upstream's fault (issue 20): it answered another transaction's hash than the one sent.
	{WrongHash, false, false, true, false, "an `eth_sendRawTransaction` broadcast (`broadcast_writes`) answered with a hash that is not the keccak-256 of the raw transaction sent: never passed on"},
	// Not the upstream's failure: else one client's huge eth_getLogs could open every breaker.
	{TooLarge, true, false, false, false, "the answer is over `EVMLB_MAX_RESPONSE_BYTES`"},
	{Canceled, false, false, false, false, "the client went away, or a hedged attempt won"},
	{NoAttempt, false, false, false, false, "no upstream could be tried (answered 503, -32070)"},
	// Not sent, so even a write goes on; never held against the upstream: the balancer held it back (issue 22).
	{OverBudget, true, true, false, false, "the upstream's request budget (`max_rps`, `max_per_day`) is spent: the request is not sent to it (answered 429, -32005, when every candidate's is)"},
	{HealthRPCError, true, false, true, false, "health checks only: the answer to `eth_chainId` or `eth_blockNumber` is a JSON-RPC error"},
	{HealthBadResult, true, false, true, false, "health checks only: the result is not a hex quantity"},
}

var byClass = func() map[Class]Row {
	m := make(map[Class]Row, len(Table))
	for _, r := range Table {
		m[r.Class] = r
	}
	return m
}()

// Lookup returns the row of c; an unknown class is treated as Network (retry reads, never writes).
func Lookup(c Class) Row {
	if r, ok := byClass[c]; ok {
		return r
	}
	return byClass[Network]
}

// Retryable reports whether an attempt of method that ended with c goes to the next upstream.
func Retryable(method string, c Class) bool {
	r := Lookup(c)
	if !r.NextUpstream {
		return false
	}
	return !IsWrite(method) || r.WriteSafe
}

// writes are the methods that change state on the network when they reach a node.
var writes = map[string]bool{
	"eth_sendRawTransaction":            true,
	"eth_sendTransaction":               true,
	"eth_sendRawTransactionConditional": true,
	"eth_sendBundle":                    true,
	"eth_sendPrivateTransaction":        true,
	"eth_sendRawTransactionSync":        true,
	"eth_submitWork":                    true,
	"eth_submitHashrate":                true,
}

// IsWrite reports whether method may change state when it reaches a node, so it must never be sent twice.
func IsWrite(method string) bool { return writes[method] }

// Traces reports whether method is a trace (the debug_ and trace_ families, compared without regard to case): a
// call that makes the node run code at a cost the caller chooses (a JavaScript tracer, a replay of a block). A
// dropped connection on a trace may be the trace's doing (Poison); README.md says why eth_call is not counted so.
func Traces(method string) bool {
	for _, p := range []string{"debug_", "trace_"} {
		if len(method) > len(p) && strings.EqualFold(method[:len(p)], p) {
			return true
		}
	}
	return false
}

// HTTPStatus classifies an HTTP status of an answer (2xx is OK, to be looked at further with Body).
func HTTPStatus(status int) Class {
	switch {
	case status >= 200 && status < 300:
		return OK
	case status == 429:
		return HTTP429
	case status >= 300 && status < 400:
		return HTTPRedirect
	case status >= 500:
		return HTTP5xx
	default:
		return HTTPOther
	}
}

// Element classifies one JSON-RPC response object of an answer Answer validated already (a batch element), in one
// pass over it (scanAnswer); only an error member is decoded.
func Element(raw []byte) Class {
	m, _, isArray, ok := scanAnswer(raw)
	if !ok || isArray {
		return NonJSON
	}
	return classify(m)
}

// classify is the class of one response m: NonJSON when it is not a JSON-RPC 2.0 response (not an object; a member
// twice; no "jsonrpc":"2.0"; no id, or one that is not a string, number or null; both or neither of result and
// error, an error null counting as none; an error that is not an object with an integer code and a string
// message), else its error's class, else OK.
func classify(m members) Class {
	if !m.obj || m.twice || m.id == nil || !jsonrpc2(m.jsonrpc) {
		return NonJSON
	}
	switch m.id[0] {
	case '"', 'n', '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
	default:
		return NonJSON
	}
	hasErr := m.err != nil && string(m.err) != "null"
	if hasErr == (m.result != nil) {
		return NonJSON
	}
	if !hasErr {
		return OK
	}
	// The members matched exactly, as everywhere in the answer ("Code" is not code).
	var e map[string]json.RawMessage
	var code int64
	var message string
	if m.err[0] != '{' || json.Unmarshal(m.err, &e) != nil || e["code"] == nil || e["message"] == nil ||
		json.Unmarshal(e["code"], &code) != nil || e["message"][0] != '"' || json.Unmarshal(e["message"], &message) != nil {
		return NonJSON
	}
	return RPCError(code, message)
}

// jsonrpc2 reports whether the value of a "jsonrpc" member is the string "2.0".
func jsonrpc2(v []byte) bool {
	if string(v) == `"2.0"` {
		return true
	}
	var s string
	return len(v) > 0 && v[0] == '"' && json.Unmarshal(v, &s) == nil && s == "2.0"
}

// missingData are lower-case fragments of error messages by which nodes say they lack a block or state.
var missingData = []string{
	"header not found", "missing trie node", "unknown block", "block not found", "historical state",
	"state is not available", "pruned", "not available on this node", "cannot query unfinalized data",
	"requested block number is greater than", "after last accepted block", "block range extends beyond current head",
	"receipts not found", "required historical state unavailable",
}

// overloaded are lower-case fragments by which nodes and providers say "not now".
var overloaded = []string{
	"limit exceeded", "rate limit", "too many requests", "request limit", "capacity", "try again later",
	"over rate", "exceeded the quota", "daily request count exceeded", "server is busy", "timeout", "timed out",
	// Providers' own words for their plans' limits, not every one under -32005.
	"request rate", "quota", "throttl", "compute units", "too many connections",
}

// RPCError classifies a JSON-RPC error code and message. Errors that are the caller's own (reverts -32000
// "execution reverted", -32602 invalid params, nonce and gas errors, …) are OK: they are answers.
func RPCError(code int64, message string) Class {
	m := strings.ToLower(message)
	switch {
	case strings.Contains(m, "execution reverted") || strings.Contains(m, "revert"):
		return OK
	case code == -32601 || strings.Contains(m, "method not found") || strings.Contains(m, "not supported") ||
		strings.Contains(m, "does not exist/is not available") || strings.Contains(m, "unsupported method"):
		return Unsupported
	case code == -32005:
		return Overloaded
	}
	for _, f := range missingData {
		if strings.Contains(m, f) {
			return MissingData
		}
	}
	for _, f := range overloaded {
		if strings.Contains(m, f) {
			return Overloaded
		}
	}
	return OK
}

// Transport classifies an error from making the request (no HTTP answer). timedOut says the attempt's deadline
// passed. The message is matched, never returned: it can hold the upstream URL.
func Transport(err error, timedOut bool) Class {
	if timedOut {
		return Timeout
	}
	if err == nil {
		return OK
	}
	m := strings.ToLower(err.Error())
	for _, f := range []string{"connection refused", "no such host", "econnrefused", "dial tcp", "connect: ", "dns"} {
		if strings.Contains(m, f) && !strings.Contains(m, "reset") {
			return Refused
		}
	}
	if strings.Contains(m, "deadline exceeded") || strings.Contains(m, "timeout") {
		return Timeout
	}
	return Network
}

// Expect is what an answer must answer: the calls sent, as a batch or as one call, by their raw ids (nil for a
// notification).
type Expect struct {
	Batch bool
	IDs   []json.RawMessage
}

// Answer validates a 2xx answer to the calls want describes and classifies it for routing, in one pass over it
// (scanAnswer). NonJSON: not JSON-RPC 2.0 (see classify), a response of it included. BadAnswer: JSON-RPC that does
// not answer these calls: for one call, an array, or an id that is not the call's (SameID; a notification's
// answer, which some nodes send, must have the id null; an error with the id null answers any call, see AnswerOf);
// for a batch, an object, or not exactly one element per
// call that has an id, matched by id, with nothing extra and nothing twice (elements with the id null are allowed
// beside them, one per notification of the batch). Otherwise the class of the single response; for a batch, the
// class of its first element that sends the request to another upstream, or OK.
func Answer(body []byte, want Expect) Class {
	c, _ := AnswerOf(body, want)
	return c
}

// AnswerOf is Answer, and whether the answer is an error with the id null to one call that has another id: JSON-RPC
// 2.0 gives an error that id when the node could not read the call's (anvil, for an id such as 1.5), so it is an
// answer, which the caller writes with the call's own id (ErrorMember) rather than pass on a null id.
func AnswerOf(body []byte, want Expect) (c Class, nullIDError bool) {
	top, elems, isArray, ok := scanAnswer(body)
	if !ok {
		return NonJSON, false
	}
	if !want.Batch {
		if isArray {
			return BadAnswer, false
		}
		c := classify(top)
		if c == NonJSON {
			return NonJSON, false
		}
		var id json.RawMessage
		if len(want.IDs) == 1 {
			id = want.IDs[0]
		}
		switch {
		case id == nil && string(top.id) != "null":
			return BadAnswer, false
		case id != nil && !SameID(id, top.id):
			if string(top.id) == "null" && top.err != nil && string(top.err) != "null" {
				return c, true
			}
			return BadAnswer, false
		}
		return c, false
	}
	if !isArray {
		if top.obj {
			return BadAnswer, false
		}
		return NonJSON, false
	}
	class := OK
	for _, m := range elems {
		c := classify(m)
		if c == NonJSON {
			return NonJSON, false
		}
		if class == OK && Lookup(c).NextUpstream {
			class = c
		}
	}
	if !matches(want.IDs, elems) {
		return BadAnswer, false
	}
	return class, false
}

// ErrorMember is the value of the error member of the single response body (validated already), nil when it has
// none.
func ErrorMember(body []byte) []byte {
	top, _, isArray, ok := scanAnswer(body)
	if !ok || isArray || string(top.err) == "null" {
		return nil
	}
	return top.err
}

// matches reports whether the ids of a batch answer's elements are those of the calls, each once, as Answer says.
func matches(ids []json.RawMessage, elems []members) bool {
	if len(elems) > len(ids) {
		return false
	}
	if len(elems) == 1 && len(ids) == 1 { // the common batch of one: no map
		return ids[0] != nil && SameID(ids[0], elems[0].id) || ids[0] == nil && string(elems[0].id) == "null"
	}
	want := make(map[string]int, len(ids))
	calls, notes := 0, 0
	for _, id := range ids {
		if id == nil {
			notes++
			continue
		}
		k, ok := idKey(id)
		if !ok {
			return false
		}
		want[k]++
		calls++
	}
	for _, m := range elems {
		k, ok := idKey(m.id)
		switch {
		case !ok:
			return false
		case want[k] > 0:
			want[k]--
			calls--
		case k == "null" && notes > 0:
			notes--
		default:
			return false // an id not asked, or asked once and answered twice
		}
	}
	return calls == 0
}
