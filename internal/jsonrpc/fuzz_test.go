package jsonrpc

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

// refRead is a reference reading of a JSON text, independent of the scanner: encoding/json's tokenizer, keys
// matched exactly (case-sensitively) and an exact duplicate key anywhere refused, as a strict node reads. Objects
// become map[string]any, numbers json.Number (as written), the rest []any, string, bool and nil.
func refRead(b []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	v, err := refValue(dec)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("more than one value")
	}
	return v, nil
}

func refValue(dec *json.Decoder) (any, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	d, ok := tok.(json.Delim)
	if !ok {
		return tok, nil
	}
	switch d {
	case '{':
		m := map[string]any{}
		for dec.More() {
			k, err := dec.Token()
			if err != nil {
				return nil, err
			}
			key := k.(string)
			if _, dup := m[key]; dup {
				return nil, errors.New("duplicate key " + key)
			}
			if m[key], err = refValue(dec); err != nil {
				return nil, err
			}
		}
		return m, closing(dec)
	case '[':
		l := []any{}
		for dec.More() {
			v, err := refValue(dec)
			if err != nil {
				return nil, err
			}
			l = append(l, v)
		}
		return l, closing(dec)
	default:
		return nil, errors.New("unexpected delimiter")
	}
}

func closing(dec *json.Decoder) error {
	_, err := dec.Token()
	return err
}

// refCall is what the strict reference reads of one call.
type refCall struct {
	batchElem       bool
	id, params      any
	hasID, hasParam bool
	method          string
}

// refCalls reads a request with refRead: the calls, and whether it is a batch. ok is false when the reference
// sees no valid request.
func refCalls(body []byte) (calls []refCall, batch, ok bool) {
	v, err := refRead(body)
	if err != nil {
		return nil, false, false
	}
	objs := []any{v}
	if l, isList := v.([]any); isList {
		objs, batch = l, true
	}
	for _, o := range objs {
		m, isObj := o.(map[string]any)
		if !isObj || m["jsonrpc"] != "2.0" {
			return nil, false, false
		}
		method, isStr := m["method"].(string)
		if !isStr || method == "" {
			return nil, false, false
		}
		c := refCall{batchElem: batch, method: method}
		c.id, c.hasID = m["id"]
		c.params, c.hasParam = m["params"]
		calls = append(calls, c)
	}
	return calls, batch, len(calls) > 0
}

// lenientCall is a call as Go's encoding/json reads it into a struct, as geth does: keys matched
// case-insensitively, the last duplicate kept.
type lenientCall struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Method  string          `json:"method"`
	Params  json.RawMessage `json:"params"`
}

// FuzzParseStrict checks that whatever Parse decides a request's calls are (method, id, params), a strict
// case-sensitive reader that refuses duplicate keys reads the same, and so does Go's lenient one; or Parse refused
// the request. Bytes encoding/json takes for JSON in UTF-8 are refused as not JSON only for a lone surrogate escape
// or depth.
func FuzzParseStrict(f *testing.F) {
	for _, a := range attacks {
		f.Add([]byte(a.body))
	}
	for _, s := range []string{
		`{"jsonrpc":"2.0","id":1,"method":"eth_call","params":[{"to":"0x0","data":"0x00"},"latest"]}`,
		`[{"jsonrpc":"2.0","id":"a","method":"m"},{"jsonrpc":"2.0","method":"n","params":{"a":[1,{"b":null}]}}]`,
		`{"jsonrpc":"2\u002e0","id":"\u0041\ud83d\ude00","\u006dethod":"eth_\u0073ign","params":[]}`,
		"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"m\",\"params\":{\"\u212a\":1,\"k\":2}}",
		`{"jsonrpc":"2.0","id":"\ud800","method":"m"}`,
		`{"jsonrpc":"2.0","id":-0.5e+7,"method":"m","params":[true,false,null,"\/\b\f\n\r\t"]}`,
		`[]`, `{}`, `null`, `[1]`, "\xff", `[[[[[[[[]]]]]]]]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := Parse(body, 100)
		if err != nil {
			if err.Code != ErrParse.Code && err.Code != ErrInvalidRequest.Code {
				t.Fatalf("code %d", err.Code)
			}
			if err.Code == ErrParse.Code && json.Valid(body) && utf8.Valid(body) &&
				!strings.Contains(err.Detail, "surrogate") && !strings.Contains(err.Detail, "nesting") {
				t.Fatalf("JSON refused as not JSON: %v", err)
			}
			return
		}
		calls, batch, ok := refCalls(body)
		if !ok {
			t.Fatalf("Parse accepted what a strict reader refuses")
		}
		if batch != req.Batch || len(calls) != len(req.Calls) {
			t.Fatalf("strict reader: batch %v, %d calls; Parse: batch %v, %d calls", batch, len(calls), req.Batch, len(req.Calls))
		}
		var lenient []lenientCall
		if batch {
			if json.Unmarshal(body, &lenient) != nil {
				t.Fatal("encoding/json refuses the batch")
			}
		} else {
			lenient = make([]lenientCall, 1)
			if json.Unmarshal(body, &lenient[0]) != nil {
				t.Fatal("encoding/json refuses the call")
			}
		}
		for i, c := range req.Calls {
			ref, lc := calls[i], lenient[i]
			if c.Method != ref.method || c.Method != lc.Method || lc.JSONRPC != "2.0" {
				t.Fatalf("call %d: method %q; strict reader %q, encoding/json %q", i, c.Method, ref.method, lc.Method)
			}
			if c.Notification() == ref.hasID || !bytes.Equal(c.ID, lc.ID) {
				t.Fatalf("call %d: id %s; strict reader %v (present %v), encoding/json %s", i, c.ID, ref.id, ref.hasID, lc.ID)
			}
			if (c.Params != nil) != ref.hasParam || !bytes.Equal(c.Params, lc.Params) {
				t.Fatalf("call %d: params %s; encoding/json %s", i, c.Params, lc.Params)
			}
			for _, v := range []struct {
				raw  []byte
				want any
			}{{c.ID, ref.id}, {c.Params, ref.params}} {
				if v.raw == nil {
					continue
				}
				if !within(body, v.raw) || cap(v.raw) != len(v.raw) {
					t.Fatalf("call %d: %s is not a capped sub-slice of the body", i, v.raw)
				}
				got, err := refRead(v.raw)
				if err != nil || !reflect.DeepEqual(got, v.want) {
					t.Fatalf("call %d: %s reads as %v, the strict reader as %v", i, v.raw, got, v.want)
				}
			}
		}
	})
}
