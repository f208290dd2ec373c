package jsonrpc

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		want       *Error // nil: valid
		batch      bool
		ids        []string // raw ids of the calls; "" for a notification
		detail     string   // a part of the error's detail
	}{
		{name: "single", body: `{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber","params":[]}`, ids: []string{"1"}},
		{name: "string id", body: `{"jsonrpc":"2.0","id":"a\u00e9","method":"m"}`, ids: []string{`"a\u00e9"`}},
		{name: "null id", body: `{"jsonrpc":"2.0","id":null,"method":"m"}`, ids: []string{"null"}},
		{name: "big id kept as written", body: `{"jsonrpc":"2.0","id":123456789012345678901234567890,"method":"m"}`, ids: []string{"123456789012345678901234567890"}},
		{name: "notification", body: `{"jsonrpc":"2.0","method":"m"}`, ids: []string{""}},
		{name: "params object", body: `{"jsonrpc":"2.0","id":1,"method":"m","params":{"a":1}}`, ids: []string{"1"}},
		{name: "spaces around", body: " \n[{\"jsonrpc\":\"2.0\",\"id\":-2.5e3,\"method\":\"m\"}] ", batch: true, ids: []string{"-2.5e3"}},
		{name: "batch", body: `[{"jsonrpc":"2.0","id":1,"method":"a"},{"jsonrpc":"2.0","id":"x","method":"b"}]`, batch: true, ids: []string{"1", `"x"`}},
		{name: "malformed", body: `{"jsonrpc":"2.0",`, want: ErrParse},
		{name: "empty body", body: ``, want: ErrParse},
		{name: "invalid UTF-8", body: "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"eth_\xff\"}", want: ErrParse, detail: "not UTF-8"},
		{name: "trailing garbage", body: `{"jsonrpc":"2.0","id":1,"method":"m"} x`, want: ErrParse},
		{name: "number", body: `42`, want: ErrInvalidRequest, detail: "not an object or array"},
		{name: "string", body: `"x"`, want: ErrInvalidRequest},
		{name: "empty batch", body: `[]`, want: ErrInvalidRequest, detail: "empty batch"},
		{name: "no method", body: `{"jsonrpc":"2.0","id":7}`, want: ErrInvalidRequest, detail: "method", ids: []string{"7"}},
		{name: "empty method", body: `{"jsonrpc":"2.0","id":7,"method":""}`, want: ErrInvalidRequest, detail: "method"},
		{name: "method not string", body: `{"jsonrpc":"2.0","id":7,"method":1}`, want: ErrInvalidRequest},
		{name: "no jsonrpc", body: `{"id":7,"method":"m"}`, want: ErrInvalidRequest, detail: "jsonrpc", ids: []string{"7"}},
		{name: "wrong jsonrpc", body: `{"jsonrpc":"1.0","id":7,"method":"m"}`, want: ErrInvalidRequest, detail: "jsonrpc"},
		{name: "object id", body: `{"jsonrpc":"2.0","id":{},"method":"m"}`, want: ErrInvalidRequest, detail: "id"},
		{name: "bool id", body: `{"jsonrpc":"2.0","id":true,"method":"m"}`, want: ErrInvalidRequest, detail: "id"},
		{name: "params scalar", body: `{"jsonrpc":"2.0","id":1,"method":"m","params":3}`, want: ErrInvalidRequest, detail: "params"},
		{name: "batch element invalid", body: `[{"jsonrpc":"2.0","id":1,"method":"a"},5]`, want: ErrInvalidRequest, detail: "batch element 1"},
		{name: "batch too large", body: `[` + strings.Repeat(`{"jsonrpc":"2.0","id":1,"method":"a"},`, 3) + `{"jsonrpc":"2.0","id":1,"method":"a"}]`, want: ErrInvalidRequest, detail: "at most 3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := Parse([]byte(tc.body), 3)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("error %v", err)
				}
				if req.Batch != tc.batch {
					t.Errorf("batch %v", req.Batch)
				}
			} else {
				if err == nil || err.Code != tc.want.Code || err.Status != tc.want.Status {
					t.Fatalf("error %v, want %v", err, tc.want)
				}
				if !strings.Contains(err.Error(), tc.detail) {
					t.Errorf("error %q lacks %q", err.Error(), tc.detail)
				}
			}
			if tc.ids == nil {
				return
			}
			if len(req.Calls) != len(tc.ids) {
				t.Fatalf("%d calls", len(req.Calls))
			}
			for i, id := range tc.ids {
				if string(req.Calls[i].ID) != id || req.Calls[i].Notification() != (id == "") {
					t.Errorf("call %d id %q, want %q", i, req.Calls[i].ID, id)
				}
			}
		})
	}
}

func TestParseKeepsParamsRaw(t *testing.T) {
	req, err := Parse([]byte(`{"jsonrpc":"2.0","id":1,"method":"m","params":[ 1.000, "0x01" ]}`), 1)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(req.Calls[0].Params); got != `[ 1.000, "0x01" ]` {
		t.Errorf("params %s", got)
	}
}

func TestMethods(t *testing.T) {
	if got := Methods([]byte(`[{"jsonrpc":"2.0","id":1,"method":"a"},{"jsonrpc":"2.0","method":"b"}]`)); strings.Join(got, ",") != "a,b" {
		t.Errorf("methods %v", got)
	}
	if got := Methods([]byte(`nope`)); got != nil {
		t.Errorf("methods of garbage %v", got)
	}
}

func TestBodyFor(t *testing.T) {
	batch, _ := Parse([]byte(`[{"jsonrpc":"2.0","id":"a","method":"x"},{"jsonrpc":"2.0","method":"n"},{"jsonrpc":"2.0","id":2,"method":"y"}]`), 10)
	single, _ := Parse([]byte(`{"jsonrpc":"2.0","id":"z","method":"x"}`), 10)
	notes, _ := Parse([]byte(`[{"jsonrpc":"2.0","method":"n"}]`), 10)
	note, _ := Parse([]byte(`{"jsonrpc":"2.0","method":"n"}`), 10)
	e := ErrNoUpstream.With(`say "hi"`)
	msg := `{"code":-32070,"message":"no upstream could answer: say \"hi\""}`
	for _, tc := range []struct {
		name string
		req  *Request
		want string
	}{
		{"nil", nil, `{"jsonrpc":"2.0","id":null,"error":` + msg + `}`},
		{"single", single, `{"jsonrpc":"2.0","id":"z","error":` + msg + `}`},
		{"batch skips notifications", batch, `[{"jsonrpc":"2.0","id":"a","error":` + msg + `},{"jsonrpc":"2.0","id":2,"error":` + msg + `}]`},
		{"notifications only", notes, `{"jsonrpc":"2.0","id":null,"error":` + msg + `}`},
		{"single notification", note, `{"jsonrpc":"2.0","id":null,"error":` + msg + `}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := string(e.BodyFor(tc.req))
			if got != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
			if !json.Valid([]byte(got)) {
				t.Error("not JSON")
			}
		})
	}
}

// TestNoEmptyID: every writer of an error object writes a missing id (a notification's) as null, never `"id":,`.
func TestNoEmptyID(t *testing.T) {
	for _, id := range []json.RawMessage{nil, {}} {
		if got := string(IDOrNull(id)); got != "null" {
			t.Errorf("IDOrNull(%q) = %s", id, got)
		}
		var b bytes.Buffer
		ErrNoUpstream.appendTo(&b, id)
		if !json.Valid(b.Bytes()) || !strings.Contains(b.String(), `"id":null,`) {
			t.Errorf("appendTo(%q): %s", id, b.String())
		}
		if body := ErrNoUpstream.Body(id); !json.Valid(body) {
			t.Errorf("Body(%q): %s", id, body)
		}
	}
	if got := string(IDOrNull(json.RawMessage(`"a"`))); got != `"a"` {
		t.Errorf("IDOrNull kept %s", got)
	}
}

func TestWrite(t *testing.T) {
	rec := httptest.NewRecorder()
	ErrBodyTooLarge.Write(rec, nil)
	if rec.Code != http.StatusRequestEntityTooLarge || rec.Header().Get("Content-Type") != "application/json" {
		t.Errorf("status %d, type %q", rec.Code, rec.Header().Get("Content-Type"))
	}
}

func TestTableCodesAreUniqueAndOutsideEIP1474(t *testing.T) {
	seen := map[int]bool{}
	// EIP-1474's "limit exceeded" is the one code answered for several limits (a socket's rate, a key's).
	limits := map[*Error]bool{ErrSocketRate: true, ErrKeyLimit: true}
	for _, e := range Table {
		if seen[e.Code] && !limits[e] {
			t.Errorf("code %d twice", e.Code)
		}
		seen[e.Code] = true
		if e.Code >= -32005 && e.Code <= -32000 && !limits[e] {
			t.Errorf("code %d is an EIP-1474 node error", e.Code)
		}
		if e.Status < 400 || e.Message == "" {
			t.Errorf("entry %d: status %d message %q", e.Code, e.Status, e.Message)
		}
	}
}

func FuzzParseRequest(f *testing.F) {
	for _, s := range []string{
		`{"jsonrpc":"2.0","id":1,"method":"eth_call","params":[{"to":"0x0"},"latest"]}`,
		`[{"jsonrpc":"2.0","id":"a","method":"m"},{"jsonrpc":"2.0","method":"n"}]`,
		`[]`, `{}`, `null`, `[1]`, `{"jsonrpc":"2.0","id":{},"method":"m"}`, "\xff",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := Parse(body, 100)
		if err != nil {
			if err.Code != ErrParse.Code && err.Code != ErrInvalidRequest.Code {
				t.Fatalf("code %d", err.Code)
			}
			if out := err.BodyFor(req); !json.Valid(out) {
				t.Fatalf("error body not JSON: %s", out)
			}
			return
		}
		if len(req.Calls) == 0 || len(req.Calls) > 100 {
			t.Fatalf("%d calls", len(req.Calls))
		}
		for _, c := range req.Calls {
			if c.Method == "" || c.ID != nil && !json.Valid(c.ID) || c.Params != nil && !json.Valid(c.Params) {
				t.Fatalf("bad call %+v", c)
			}
		}
		if out := ErrNoUpstream.BodyFor(req); !json.Valid(out) {
			t.Fatalf("error body not JSON: %s", out)
		}
	})
}
