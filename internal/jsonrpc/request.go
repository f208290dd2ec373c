package jsonrpc

import (
	"encoding/json"
	"fmt"
)

// Call is one JSON-RPC call. ID and Params are the request's raw JSON, never re-encoded: sub-slices of the body.
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

// Parse validates body as a JSON-RPC 2.0 request: one call object, or a non-empty array of them holding at most
// maxBatch calls. It reads the body once, strictly (see scanner): it returns ErrParse for bytes that are not JSON
// in UTF-8, for an escape of a lone UTF-16 surrogate and for nesting deeper than MaxDepth; ErrInvalidRequest (with
// a detail naming the batch element) for JSON that is not a valid request, which includes an object anywhere with
// two keys equal under case folding, and a call with a key that is a JSON-RPC member only under case folding
// ("METHOD"). A batch with an invalid element is rejected whole.
//
// ID and Params of the calls are sub-slices of body (capped, so an append cannot write into it): the body must
// not change while they are used. Method is unescaped.
func Parse(body []byte, maxBatch int) (*Request, *Error) {
	s := scanner{b: body, elem: -1, keys: make([]keyRec, 0, 16)} // room for the open keys of a usual request
	s.ws()
	if s.i >= len(body) {
		s.syntax()
		return nil, s.fail
	}
	switch body[s.i] {
	case '{':
		c, ok := s.call(1)
		if !ok || !s.end() {
			return nil, s.fail
		}
		req := &Request{Calls: []Call{c}}
		if s.bad != "" {
			return req, ErrInvalidRequest.With(s.bad)
		}
		return req, nil
	case '[':
		return s.batch(maxBatch)
	default:
		if !s.value(0) || !s.end() {
			return nil, s.fail
		}
		return nil, ErrInvalidRequest.With("not an object or array")
	}
}

// batch reads a batch; s.i is on its '['.
func (s *scanner) batch(maxBatch int) (*Request, *Error) {
	s.i++
	req := &Request{Batch: true}
	n := 0
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == ']' {
		s.i++
	} else {
		for {
			s.ws()
			if s.i >= len(s.b) {
				s.syntax()
				return nil, s.fail
			}
			s.elem = n
			if s.b[s.i] == '{' {
				c, ok := s.call(2)
				if !ok {
					return nil, s.fail
				}
				if n < maxBatch { // past it, the batch is refused: keep reading, but not collecting
					req.Calls = append(req.Calls, c)
				}
			} else {
				if !s.value(1) {
					return nil, s.fail
				}
				s.invalid("not an object")
			}
			n++
			s.ws()
			if s.i < len(s.b) && s.b[s.i] == ',' {
				s.i++
				continue
			}
			if !s.expect(']') {
				return nil, s.fail
			}
			break
		}
	}
	if !s.end() {
		return nil, s.fail
	}
	switch {
	case n == 0:
		return nil, ErrInvalidRequest.With("empty batch")
	case n > maxBatch:
		return nil, ErrInvalidRequest.With(fmt.Sprintf("batch of %d calls, at most %d allowed", n, maxBatch))
	case s.bad != "":
		return nil, ErrInvalidRequest.With(s.bad)
	}
	return req, nil
}

// call reads a call object at depth; s.i is on its '{'. ok is false when the body is not JSON. When the call is
// invalid, the reason is noted in s.bad and the call returned keeps its id when it is valid and unambiguous, so
// that the error can name it.
func (s *scanner) call(depth int) (c Call, ok bool) {
	var m members
	if !s.object(depth, &m) {
		return Call{}, false
	}
	c, reason := m.call(s.b)
	if reason != "" {
		s.invalid(reason)
	}
	if m.folds[mID] > 1 { // "id" twice, or beside "ID": which one a node reads is anyone's guess
		c.ID = nil
	}
	return c, true
}

// call checks the members of a call object and returns the call; the string is a reason when it is invalid.
func (m *members) call(b []byte) (Call, string) {
	jsonrpc, id, method, params := m.raw(b, mJSONRPC), m.raw(b, mID), m.raw(b, mMethod), m.raw(b, mParams)
	for _, v := range [...][]byte{jsonrpc, method} {
		if v != nil && v[0] != '"' && v[0] != 'n' {
			return Call{}, "wrong member type"
		}
	}
	var c Call
	if id != nil {
		switch id[0] {
		case 'n', '"', '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
			c.ID = id
		default:
			return Call{}, "id must be a string, a number or null"
		}
	}
	switch {
	case jsonrpc == nil || jsonrpc[0] != '"' || string(jsonrpc) != `"2.0"` && unquote(jsonrpc[1:len(jsonrpc)-1]) != "2.0":
		return c, `jsonrpc must be "2.0"`
	case method == nil || method[0] != '"' || len(method) == 2:
		return c, "method must be a non-empty string"
	}
	c.Method = unquote(method[1 : len(method)-1])
	if params != nil && params[0] != '[' && params[0] != '{' {
		return c, "params must be an array or an object"
	}
	c.Params = params
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
