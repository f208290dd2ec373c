// Package rpc is the small JSON-RPC 2.0 client of the end-to-end tests. It
// keeps answers as raw bytes so a test can compare them byte for byte.
package rpc

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// MaxBody bounds how much of any answer is read.
const MaxBody = 16 << 20

// Response is one HTTP exchange as seen by the client.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// Post sends body to url with Content-Type application/json and reads the whole
// answer. A nil client means http.DefaultClient.
func Post(ctx context.Context, client *http.Client, url string, body []byte) (*Response, error) {
	return Do(ctx, client, http.MethodPost, url, body, map[string]string{"Content-Type": "application/json"})
}

// Do sends one request with the given headers and reads the whole answer.
func Do(ctx context.Context, client *http.Client, method, url string, body []byte, header map[string]string) (*Response, error) {
	if client == nil {
		client = http.DefaultClient
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return nil, err
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, MaxBody))
	if err != nil {
		return nil, fmt.Errorf("reading answer of %s %s: %w", method, url, err)
	}
	return &Response{Status: resp.StatusCode, Header: resp.Header, Body: b}, nil
}

// Request builds the bytes of one JSON-RPC request. id is encoded as JSON
// (pass json.RawMessage to choose its exact bytes); nil params become [].
func Request(id any, method string, params ...any) []byte {
	if params == nil {
		params = []any{}
	}
	b, err := json.Marshal(struct {
		JSONRPC string `json:"jsonrpc"`
		ID      any    `json:"id"`
		Method  string `json:"method"`
		Params  []any  `json:"params"`
	}{"2.0", id, method, params})
	if err != nil {
		panic(err) // only for values that cannot be JSON; a bug in the test
	}
	return b
}

// Message is one decoded JSON-RPC response, id and result kept raw.
type Message struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Result  json.RawMessage `json:"result,omitempty"`
	Error   *Error          `json:"error,omitempty"`
}

// Error is a JSON-RPC error object.
type Error struct {
	Code    int             `json:"code"`
	Message string          `json:"message"`
	Data    json.RawMessage `json:"data,omitempty"`
}

func (e *Error) Error() string { return fmt.Sprintf("json-rpc error %d: %s", e.Code, e.Message) }

// Decode parses one JSON-RPC response object.
func Decode(b []byte) (*Message, error) {
	var m Message
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("not a JSON-RPC response: %w (body %q)", err, Trunc(b, 300))
	}
	return &m, nil
}

// DecodeBatch parses a JSON array of JSON-RPC responses.
func DecodeBatch(b []byte) ([]Message, error) {
	var ms []Message
	if err := json.Unmarshal(b, &ms); err != nil {
		return nil, fmt.Errorf("not a JSON-RPC batch response: %w (body %q)", err, Trunc(b, 300))
	}
	return ms, nil
}

// Call sends one request and returns its raw result, or the JSON-RPC error as
// an *Error, or a transport error. Any HTTP status other than 200 is an error.
func Call(ctx context.Context, client *http.Client, url, method string, params ...any) (json.RawMessage, error) {
	resp, err := Post(ctx, client, url, Request(1, method, params...))
	if err != nil {
		return nil, err
	}
	if resp.Status != http.StatusOK {
		return nil, fmt.Errorf("%s: HTTP %d: %s", method, resp.Status, Trunc(resp.Body, 300))
	}
	m, err := Decode(resp.Body)
	if err != nil {
		return nil, err
	}
	if m.Error != nil {
		return nil, m.Error
	}
	return m.Result, nil
}

// Quantity decodes a JSON hex quantity such as "0x1a".
func Quantity(raw json.RawMessage) (uint64, error) {
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return 0, fmt.Errorf("quantity %s: %w", raw, err)
	}
	hex, ok := strings.CutPrefix(s, "0x")
	if !ok {
		return 0, fmt.Errorf("quantity %q lacks 0x", s)
	}
	return strconv.ParseUint(hex, 16, 64)
}

// Hex encodes n as a JSON-RPC quantity string.
func Hex(n uint64) string { return "0x" + strconv.FormatUint(n, 16) }

// Trunc returns b as a string of at most n bytes, marked when cut.
func Trunc(b []byte, n int) string {
	if len(b) <= n {
		return string(b)
	}
	return string(b[:n]) + "…"
}
