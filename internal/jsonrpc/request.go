package jsonrpc

import (
	"bytes"
	"encoding/json"
	"fmt"
	"unicode/utf8"
)

// Call is one JSON-RPC call. ID and Params are the request's raw JSON, never re-encoded.
type Call struct {
	// ID is nil when the call has no id member (a notification); otherwise null, a number or a string.
	ID     json.RawMessage
	Method string
	Params json.RawMessage
}

// Notification reports whether the call has no id.
func (c Call) Notification() bool { return c.ID == nil }

// Request is a parsed single call or batch.
type Request struct {
	Batch bool
	Calls []Call
}

// Methods lists the calls' method names in order.
func (r *Request) Methods() []string {
	m := make([]string, len(r.Calls))
	for i, c := range r.Calls {
		m[i] = c.Method
	}
	return m
}

// wireCall is a call as it arrives. Params and ID stay raw; a present "id":null decodes to the bytes null.
type wireCall struct {
	JSONRPC *string         `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Method  *string         `json:"method"`
	Params  json.RawMessage `json:"params"`
}

// Parse validates body as a JSON-RPC 2.0 request: one call object, or a non-empty array of them holding at most
// maxBatch calls. It returns ErrParse for bytes that are not JSON and ErrInvalidRequest (with a detail naming the
// batch element) for JSON that is not a valid request. A batch with an invalid element is rejected whole.
func Parse(body []byte, maxBatch int) (*Request, *Error) {
	body = bytes.TrimSpace(body)
	if !json.Valid(body) {
		return nil, ErrParse
	}
	if !utf8.Valid(body) { // JSON text is UTF-8 (RFC 8259); Go's decoder would quietly replace the bad bytes
		return nil, ErrParse.With("not UTF-8")
	}
	switch body[0] {
	case '{':
		c, err := parseCall(body)
		if err != "" {
			return &Request{Calls: []Call{c}}, ErrInvalidRequest.With(err)
		}
		return &Request{Calls: []Call{c}}, nil
	case '[':
		var elems []json.RawMessage
		if json.Unmarshal(body, &elems) != nil {
			return nil, ErrParse // unreachable for valid JSON starting with '['
		}
		if len(elems) == 0 {
			return nil, ErrInvalidRequest.With("empty batch")
		}
		if len(elems) > maxBatch {
			return nil, ErrInvalidRequest.With(fmt.Sprintf("batch of %d calls, at most %d allowed", len(elems), maxBatch))
		}
		req := &Request{Batch: true, Calls: make([]Call, len(elems))}
		for i, e := range elems {
			c, err := parseCall(e)
			if err != "" {
				return nil, ErrInvalidRequest.With(fmt.Sprintf("batch element %d: %s", i, err))
			}
			req.Calls[i] = c
		}
		return req, nil
	default:
		return nil, ErrInvalidRequest.With("not an object or array")
	}
}

// parseCall decodes one call; the string is a reason when the call is invalid. The returned call keeps the id
// when it is valid, so that the error can name it.
func parseCall(b json.RawMessage) (Call, string) {
	b = bytes.TrimSpace(b)
	if len(b) == 0 || b[0] != '{' {
		return Call{}, "not an object"
	}
	var w wireCall
	if err := json.Unmarshal(b, &w); err != nil {
		return Call{}, "wrong member type"
	}
	var c Call
	if w.ID != nil {
		switch w.ID[0] {
		case 'n', '"', '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
			c.ID = w.ID
		default:
			return Call{}, "id must be a string, a number or null"
		}
	}
	switch {
	case w.JSONRPC == nil || *w.JSONRPC != "2.0":
		return c, `jsonrpc must be "2.0"`
	case w.Method == nil || *w.Method == "":
		return c, "method must be a non-empty string"
	}
	c.Method = *w.Method
	if w.Params != nil && w.Params[0] != '[' && w.Params[0] != '{' {
		return c, "params must be an array or an object"
	}
	c.Params = w.Params
	return c, ""
}

// Methods extracts the method names of a request already validated by Parse, decoding nothing else.
// It returns nil when body is not a request.
func Methods(body []byte) []string {
	req, err := Parse(body, int(^uint(0)>>1))
	if err != nil {
		return nil
	}
	return req.Methods()
}
