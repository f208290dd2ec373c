// Package jsonrpc parses and validates JSON-RPC 2.0 requests without decoding what the balancer only forwards
// (id and params stay raw JSON), and holds the one table of errors the balancer answers itself.
package jsonrpc

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
)

// Error is an error the balancer answers itself: a JSON-RPC error code, the HTTP status it is sent with,
// and a message that never holds a secret or an upstream URL.
type Error struct {
	Code   int
	Status int
	// Message is the text of the error object; Detail, when set, is appended after ": ".
	Message string
	Detail  string
}

// Error implements error.
func (e *Error) Error() string {
	if e.Detail == "" {
		return e.Message
	}
	return e.Message + ": " + e.Detail
}

// With returns a copy of e with the detail set.
func (e *Error) With(detail string) *Error {
	c := *e
	c.Detail = detail
	return &c
}

// The error table. Codes -32700..-32600 are JSON-RPC 2.0's; the balancer's own codes sit in -32060..-32079,
// clear of EIP-1474's -32000..-32005, which clients read as node errors (for example -32005 as rate limiting).
var (
	ErrParse            = &Error{Code: -32700, Status: http.StatusBadRequest, Message: "parse error"}
	ErrInvalidRequest   = &Error{Code: -32600, Status: http.StatusBadRequest, Message: "invalid request"}
	ErrInternal         = &Error{Code: -32603, Status: http.StatusInternalServerError, Message: "internal error"}
	ErrBodyTooLarge     = &Error{Code: -32060, Status: http.StatusRequestEntityTooLarge, Message: "request body too large"}
	ErrUnknownChain     = &Error{Code: -32061, Status: http.StatusNotFound, Message: "unknown chain"}
	ErrNotFound         = &Error{Code: -32062, Status: http.StatusNotFound, Message: "not found"}
	ErrMethodNotAllowed = &Error{Code: -32063, Status: http.StatusMethodNotAllowed, Message: "method not allowed"}
	ErrUnauthorized     = &Error{Code: -32064, Status: http.StatusUnauthorized, Message: "unauthorized"}
	ErrAdminDisabled    = &Error{Code: -32065, Status: http.StatusServiceUnavailable, Message: "admin API disabled: ADMIN_PASSWORD is not set"}
	ErrConfig           = &Error{Code: -32066, Status: http.StatusServiceUnavailable, Message: "invalid configuration"}
	ErrMethodDenied     = &Error{Code: -32067, Status: http.StatusForbidden, Message: "method not allowed by this balancer"}
	ErrAdminSimple      = &Error{Code: -32068, Status: http.StatusUnsupportedMediaType, Message: "admin writes need Content-Type: application/json or X-Evmlb-Admin: 1"}
	ErrBusy             = &Error{Code: -32069, Status: http.StatusServiceUnavailable, Message: "busy: too many large requests in flight, retry shortly"}
	ErrNoUpstream       = &Error{Code: -32070, Status: http.StatusServiceUnavailable, Message: "no upstream could answer"}
	ErrUpstreamFailed   = &Error{Code: -32071, Status: http.StatusBadGateway, Message: "upstream failed"}
	ErrPoison           = &Error{Code: -32072, Status: http.StatusBadGateway, Message: "request not sent to another upstream: the upstream dropped it and then stopped answering, so the request may bring nodes down"}
	ErrChainUndecided   = &Error{Code: -32073, Status: http.StatusServiceUnavailable, Message: "the upstreams disagree on the chain id: the operator must configure chain_id for this chain"}
	ErrLogsTooLarge     = &Error{Code: -32074, Status: http.StatusRequestEntityTooLarge, Message: "eth_getLogs too large: ask a smaller range"}
	// The WebSocket session's (issue 21): answers on a socket, but for ErrTooManySockets, the upgrade's refusal.
	ErrTooManySubs    = &Error{Code: -32075, Status: http.StatusTooManyRequests, Message: "too many subscriptions on this socket"}
	ErrSubTooLarge    = &Error{Code: -32076, Status: http.StatusRequestEntityTooLarge, Message: "subscription too large: the socket's subscriptions must fit its 16 KB attachment"}
	ErrTooManySockets = &Error{Code: -32077, Status: http.StatusServiceUnavailable, Message: "too many WebSockets on this chain, retry later"}
	// ErrSocketRate is EIP-1474's "limit exceeded", the one code of -32000..-32005 the balancer answers itself:
	// clients read it as rate limiting, which is what it says (a socket sending more than EVMLB_WS_RATE).
	ErrSocketRate = &Error{Code: -32005, Status: http.StatusTooManyRequests, Message: "limit exceeded: too many messages on this socket, slow down"}
	// Client keys' (issue 22, CLIENT_KEYS): a key that may not use the chain, and a key over its limits (-32005
	// again, with Retry-After; the Detail says which limit).
	ErrKeyChain = &Error{Code: -32078, Status: http.StatusForbidden, Message: "this key may not use this chain"}
	ErrKeyLimit = &Error{Code: -32005, Status: http.StatusTooManyRequests, Message: "limit exceeded"}
	// ErrBudgetSpent is -32005 too (issue 22; README's one -32005 row, so not in Table): every candidate
	// upstream's request budget (max_rps, max_per_day) is spent, so the balancer holds the request back rather
	// than make a provider answer 429; with Retry-After.
	ErrBudgetSpent = &Error{Code: -32005, Status: http.StatusTooManyRequests, Message: "limit exceeded: every upstream's request budget is spent, retry later"}
)

// Table lists every error the balancer answers itself, in the order of README.md's table of errors, which
// readme_test.go holds to it (code and HTTP status).
var Table = []*Error{
	ErrParse, ErrInvalidRequest, ErrInternal, ErrBodyTooLarge, ErrUnknownChain, ErrNotFound,
	ErrMethodNotAllowed, ErrUnauthorized, ErrAdminDisabled, ErrConfig, ErrMethodDenied, ErrAdminSimple, ErrBusy, ErrNoUpstream,
	ErrUpstreamFailed, ErrPoison, ErrChainUndecided, ErrLogsTooLarge, ErrTooManySubs, ErrSubTooLarge, ErrTooManySockets,
	ErrSocketRate, ErrKeyChain, ErrKeyLimit,
}

var null = json.RawMessage("null")

// IDOrNull is id as an answer writes it: a notification's missing id (nil or empty) is null. A JSON-RPC object the
// balancer writes itself with a client's id goes through it, so that no answer reads `"id":,`.
func IDOrNull(id json.RawMessage) json.RawMessage {
	if len(id) == 0 {
		return null
	}
	return id
}

var contentTypeJSON = []string{"application/json"}

// Body is the JSON of one error response object with the given id (nil means null).
func (e *Error) Body(id json.RawMessage) []byte {
	var b bytes.Buffer
	e.appendTo(&b, id)
	return b.Bytes()
}

// BodyFor answers req: an array of error objects, one per call that has an id, for a batch; a single error object
// otherwise (also when req is nil). A batch of notifications only gets a single error object with a null id.
func (e *Error) BodyFor(req *Request) []byte {
	if req == nil || !req.Batch {
		var id json.RawMessage
		if req != nil && len(req.Calls) == 1 {
			id = req.Calls[0].ID
		}
		return e.Body(id)
	}
	var b bytes.Buffer
	n := 0
	for _, c := range req.Calls {
		if c.Notification() {
			continue
		}
		if n == 0 {
			b.WriteByte('[')
		} else {
			b.WriteByte(',')
		}
		e.appendTo(&b, c.ID)
		n++
	}
	if n == 0 {
		return e.Body(nil)
	}
	b.WriteByte(']')
	return b.Bytes()
}

func (e *Error) appendTo(b *bytes.Buffer, id json.RawMessage) {
	msg, _ := json.Marshal(e.Error()) // a string always marshals
	b.WriteString(`{"jsonrpc":"2.0","id":`)
	b.Write(IDOrNull(id))
	b.WriteString(`,"error":{"code":`)
	b.WriteString(strconv.Itoa(e.Code))
	b.WriteString(`,"message":`)
	b.Write(msg)
	b.WriteString(`}}`)
}

// Write answers e with its HTTP status and the body for req (see BodyFor).
func (e *Error) Write(w http.ResponseWriter, req *Request) {
	WriteJSON(w, e.Status, e.BodyFor(req))
}

// WriteJSON writes body with the status and Content-Type application/json.
func WriteJSON(w http.ResponseWriter, status int, body []byte) {
	w.Header()["Content-Type"] = contentTypeJSON // canonical already: Set would canonicalise it on every answer
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
