package jsonrpc

import (
	"fmt"
	"strings"
	"testing"
	"unsafe"
)

// The bodies of issue 11: the balancer and a node must not read different calls out of them.
var attacks = []struct{ name, body, detail string }{
	{"case variant after", `{"jsonrpc":"2.0","id":1,"method":"eth_sign","params":[],"METHOD":"eth_chainId"}`,
		`key "METHOD" differs from the JSON-RPC member "method" only by case`},
	{"case variant before", `{"jsonrpc":"2.0","id":1,"METHOD":"eth_sign","method":"eth_chainId","params":[]}`,
		`key "METHOD" differs from the JSON-RPC member "method" only by case`},
	{"capitalised", `{"jsonrpc":"2.0","id":1,"method":"eth_chainId","Method":"eth_sign"}`,
		`key "Method" differs from the JSON-RPC member "method" only by case`},
	{"exact duplicate", `{"jsonrpc":"2.0","id":1,"method":"eth_sendTransaction","method":"eth_chainId","params":[]}`,
		`duplicate key "method"`},
	{"escaped duplicate", `{"jsonrpc":"2.0","id":1,"method":"eth_sendTransaction","\u006dethod":"eth_chainId"}`,
		`duplicate key "method"`},
	{"long s", `{"jsonrpc":"2.0","id":1,"method":"eth_call","params":[],"paramſ":["x"]}`,
		`key "paramſ" differs from the JSON-RPC member "params" only by case`},
	{"escaped long s", `{"jsonrpc":"2.0","id":1,"method":"eth_call","param\u017f":[]}`,
		`key "paramſ" differs from the JSON-RPC member "params" only by case`},
	{"lone case variant", `{"jsonrpc":"2.0","id":1,"Method":"eth_sign"}`,
		`key "Method" differs from the JSON-RPC member "method" only by case`},
	{"case variant of jsonrpc", `{"jsonrpc":"2.0","JSONRPC":"1.0","id":1,"method":"m"}`, `"JSONRPC" differs`},
	{"case variant of id", `{"jsonrpc":"2.0","id":1,"Id":2,"method":"m"}`, `"Id" differs`},
	{"batch element", `[{"jsonrpc":"2.0","id":1,"method":"eth_chainId"},` +
		`{"jsonrpc":"2.0","id":2,"method":"eth_chainId","mETHOD":"personal_unlockAccount","params":["0x1","pw",0]}]`,
		`batch element 1: key "mETHOD" differs from the JSON-RPC member "method" only by case`},
	{"batch exact duplicate", `[{"jsonrpc":"2.0","id":1,"method":"eth_sendTransaction","method":"eth_chainId"}]`,
		`batch element 0: duplicate key "method"`},
	{"nested duplicate", `{"jsonrpc":"2.0","id":1,"method":"eth_call","params":[{"to":"0x1","to":"0x2"},"latest"]}`,
		`duplicate key "to"`},
	{"nested case variant", `{"jsonrpc":"2.0","id":1,"method":"eth_getLogs","params":[{"fromBlock":"0x1","FromBlock":"0x9"}]}`,
		`keys "fromBlock" and "FromBlock" differ only by case`},
	{"nested Kelvin sign", `{"jsonrpc":"2.0","id":1,"method":"m","params":{"k":1,"\u212a":2}}`, // the Kelvin sign, escaped
		"keys \"k\" and \"K\" differ only by case"},
	{"nested Kelvin sign, as UTF-8", "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"m\",\"params\":{\"K\":1,\"k\":2}}",
		"keys \"K\" and \"k\" differ only by case"},
	{"deep duplicate", `{"jsonrpc":"2.0","id":1,"method":"m","params":[[[{"a":{"b":1,"b":2}}]]]}`, `duplicate key "b"`},
}

func TestParseRefusesAmbiguousKeys(t *testing.T) {
	for _, tc := range attacks {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.body), 10)
			if err == nil || err.Code != ErrInvalidRequest.Code || err.Status != 400 {
				t.Fatalf("error %v, want %v", err, ErrInvalidRequest)
			}
			if !strings.Contains(err.Detail, tc.detail) {
				t.Errorf("detail %q lacks %q", err.Detail, tc.detail)
			}
		})
	}
}

func TestParseStrictJSON(t *testing.T) {
	call := func(params string) string { return `{"jsonrpc":"2.0","id":1,"method":"m","params":` + params + `}` }
	many := func(n int, last string) string {
		var b strings.Builder
		b.WriteString("{")
		for i := range n {
			fmt.Fprintf(&b, `"key%d":%d,`, i, i)
		}
		b.WriteString(last + `:0}`)
		return b.String()
	}
	for _, tc := range []struct {
		name, body string
		want       *Error // nil: valid
		detail     string
	}{
		{"lone high surrogate", `{"jsonrpc":"2.0","id":"\ud800","method":"m"}`, ErrParse, `lone UTF-16 surrogate \ud800`},
		{"lone low surrogate", call(`["\udc00"]`), ErrParse, `lone UTF-16 surrogate \udc00`},
		{"high then not low", call(`["\uD800\u0041"]`), ErrParse, `lone UTF-16 surrogate \uD800`},
		{"two high", call(`["\ud800\ud800"]`), ErrParse, "surrogate"},
		{"surrogate in a key", call(`{"\udfff":1}`), ErrParse, "surrogate"},
		{"surrogate pair", call(`["\ud83d\ude00"]`), nil, ""},
		// The call object is the first level, params the second.
		{"deep", call(strings.Repeat("[", MaxDepth-1) + strings.Repeat("]", MaxDepth-1)), nil, ""},
		{"too deep", call(strings.Repeat("[", MaxDepth) + strings.Repeat("]", MaxDepth)), ErrParse, "nesting deeper than 256"},
		{"100000 brackets", strings.Repeat("[", 100000), ErrParse, "nesting deeper than 256"},
		{"100000 objects", strings.Repeat(`{"a":`, 100000), ErrParse, "nesting deeper than 256"},
		{"many keys", call(many(1000, `"other"`)), nil, ""},
		{"many keys, one twice", call(many(1000, `"key500"`)), ErrInvalidRequest, `duplicate key "key500"`},
		{"many keys, one folds to another", call(many(1000, `"KEY7"`)), ErrInvalidRequest, `keys "key7" and "KEY7" differ only by case`},
		{"distinct keys", call(`{"a":1,"b":{"a":2},"c":[{"a":3},{"a":4}],"A1":0,"ab":1,"aB1":2}`), nil, ""},
		{"same key in sibling objects", `[{"jsonrpc":"2.0","id":1,"method":"m"},{"jsonrpc":"2.0","id":2,"method":"m"}]`, nil, ""},
		{"no BOM", "\ufeff" + call(`[]`), ErrParse, ""},
		{"no Unicode space", "\u00a0" + call(`[]`), ErrParse, ""},
		{"leading zero", call(`[01]`), ErrParse, ""},
		{"bare minus", call(`[-]`), ErrParse, ""},
		{"number forms", call(`[0, -0, 1.5e10, 2E-3, -12.25e+1]`), nil, ""},
		{"control character", call("[\"a\tb\"]"), ErrParse, ""},
		{"bad escape", call(`["\x"]`), ErrParse, ""},
		{"short unicode escape", call(`["\u12"]`), ErrParse, ""},
		{"single quotes", `{'jsonrpc':'2.0'}`, ErrParse, ""},
		{"trailing comma", call(`[1,]`), ErrParse, ""},
		{"trailing comma in object", `{"jsonrpc":"2.0","id":1,"method":"m",}`, ErrParse, ""},
		{"trailing comma in batch", `[{"jsonrpc":"2.0","id":1,"method":"m"},]`, ErrParse, ""},
		{"unterminated batch", `[{"jsonrpc":"2.0","id":1,"method":"m"}`, ErrParse, ""},
		{"two values", `{"jsonrpc":"2.0","id":1,"method":"m"}{}`, ErrParse, ""},
		{"overlong UTF-8", "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"\xc0\xaf\"}", ErrParse, "not UTF-8"},
		{"UTF-8 surrogate", "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"\xed\xa0\x80\"}", ErrParse, "not UTF-8"},
		{"invalid UTF-8 in a key", "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"m\",\"\xff\":1}", ErrParse, "not UTF-8"},
		{"syntax beats a duplicate", `{"jsonrpc":"2.0","jsonrpc":"2.0","id":1,"method":"m"`, ErrParse, ""},
		{"escaped jsonrpc", `{"jsonrpc":"2\u002e0","id":1,"method":"m"}`, nil, ""},
		{"null params", `{"jsonrpc":"2.0","id":1,"method":"m","params":null}`, ErrInvalidRequest, "params must be an array or an object"},
		{"jsonrpc not a string", `{"jsonrpc":2,"id":1,"method":"m"}`, ErrInvalidRequest, "wrong member type"},
		{"method an array", `{"jsonrpc":"2.0","id":1,"method":[]}`, ErrInvalidRequest, "wrong member type"},
		{"null method", `{"jsonrpc":"2.0","id":1,"method":null}`, ErrInvalidRequest, "method must be a non-empty string"},
		{"batch element null", `[{"jsonrpc":"2.0","id":1,"method":"m"}, null]`, ErrInvalidRequest, "batch element 1: not an object"},
		{"first invalid element named", `[{"jsonrpc":"2.0","id":1}, {"jsonrpc":"2.0","id":1,"method":"m","method":"n"}]`, ErrInvalidRequest, "batch element 0: method"},
		{"batch limit before elements", `[1,2,3,4]`, ErrInvalidRequest, "batch of 4 calls, at most 3 allowed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.body), 3)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("error %v", err)
				}
				return
			}
			if err == nil || err.Code != tc.want.Code || err.Status != tc.want.Status {
				t.Fatalf("error %v, want %v", err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.detail) {
				t.Errorf("error %q lacks %q", err.Error(), tc.detail)
			}
		})
	}
}

func TestParseReadsWhatANodeReads(t *testing.T) {
	req, err := Parse([]byte(`[{"jsonrpc":"2\u002e0","id":"\u0041","\u006dethod":"eth_\u0073ign","\u0070arams":[]},`+
		`{"jsonrpc":"2.0","id":2,"method":"eth_call","Params":[1],"params":[2]}]`), 10)
	if err == nil || !strings.Contains(err.Detail, `batch element 1: key "Params" differs`) {
		t.Fatalf("error %v", err)
	}
	req, err = Parse([]byte(`{"jsonrpc":"2\u002e0","id":"\u0041","\u006dethod":"eth_\u0073ign","\u0070arams":[]}`), 10)
	if err != nil {
		t.Fatal(err)
	}
	if c := req.Calls[0]; c.Method != "eth_sign" || string(c.ID) != `"\u0041"` || string(c.Params) != `[]` {
		t.Errorf("call %+v", c)
	}
}

// An invalid single call names its id in the error, unless it is not clear which id a node would read.
func TestParseInvalidKeepsOnlyAnUnambiguousID(t *testing.T) {
	for _, tc := range []struct{ body, id string }{
		{`{"jsonrpc":"2.0","id":7,"method":"eth_sign","METHOD":"eth_chainId"}`, "7"},
		{`{"jsonrpc":"2.0","id":7,"method":"m","params":[{"a":1,"a":2}]}`, "7"},
		{`{"jsonrpc":"2.0","id":7,"id":8,"method":"m"}`, ""},
		{`{"jsonrpc":"2.0","id":7,"ID":8,"method":"m"}`, ""},
		{`{"jsonrpc":"2.0","ID":8,"method":"m"}`, ""},
	} {
		req, err := Parse([]byte(tc.body), 10)
		if err == nil || req == nil || len(req.Calls) != 1 || string(req.Calls[0].ID) != tc.id {
			t.Errorf("%s: %v %+v, want id %q", tc.body, err, req, tc.id)
		}
	}
}

// within reports whether sub lies in the memory of b.
func within(b, sub []byte) bool {
	if len(sub) == 0 {
		return true
	}
	lo, hi := uintptr(unsafe.Pointer(unsafe.SliceData(b))), uintptr(unsafe.Pointer(unsafe.SliceData(b)))+uintptr(len(b))
	p := uintptr(unsafe.Pointer(unsafe.SliceData(sub)))
	return lo <= p && p+uintptr(len(sub)) <= hi
}

func TestParseAliasesIDAndParams(t *testing.T) {
	body := []byte(`[{"jsonrpc":"2.0","id":"abc","method":"eth_call","params":[{"data":"0x00"},"latest"]}]`)
	req, err := Parse(body, 10)
	if err != nil {
		t.Fatal(err)
	}
	c := req.Calls[0]
	if !within(body, c.ID) || !within(body, c.Params) || cap(c.Params) != len(c.Params) || cap(c.ID) != len(c.ID) {
		t.Errorf("id and params must be capped sub-slices of the body")
	}
	if string(c.Params) != `[{"data":"0x00"},"latest"]` {
		t.Errorf("params %s", c.Params)
	}
}

func TestReaders(t *testing.T) {
	raw := []byte(` [ {"a":1}, "x" ,[] ] `)
	if elems, ok := Array(raw); !ok || len(elems) != 3 || string(elems[0]) != `{"a":1}` || string(elems[1]) != `"x"` ||
		string(elems[2]) != `[]` || !within(raw, elems[0]) || cap(elems[0]) != len(elems[0]) {
		t.Errorf("Array: %q %v", elems, ok)
	}
	for _, bad := range []string{``, `{}`, `[1,]`, `[1] 2`, `[{"a":1,"A":2}]`, `["\ud800"]`, `[` + strings.Repeat("[", MaxDepth) + `]`} {
		if _, ok := Array([]byte(bad)); ok {
			t.Errorf("Array(%s) ok", bad)
		}
	}
	if elems, ok := Array([]byte(`[]`)); !ok || len(elems) != 0 {
		t.Errorf("Array([]): %q %v", elems, ok)
	}

	obj := []byte(`{"FromBlock":"0x1","\u0074oBlock":"0x2","x":{"fromBlock":3}}`)
	if v, ok := Fields(obj, "fromBlock", "toBlock", "x"); !ok || v[0] != nil || string(v[1]) != `"0x2"` || string(v[2]) != `{"fromBlock":3}` {
		t.Errorf("Fields: %q %v", v, ok)
	}
	if v, ok := Fields([]byte(`{}`), "a"); !ok || len(v) != 1 || v[0] != nil {
		t.Errorf("Fields({}): %q %v", v, ok)
	}
	for _, bad := range []string{`[]`, `{"a":1,"a":2}`, `{"a":1,"A":2}`, `{"a":{"b":1,"b":1}}`, `{"a":1`, `{"a":1}x`, `null`} {
		if _, ok := Fields([]byte(bad), "a"); ok {
			t.Errorf("Fields(%s) ok", bad)
		}
	}

	if s, ok := String([]byte(`"a\u00e9\ud83d\ude00\n"`)); !ok || s != "aé😀\n" {
		t.Errorf("String: %q %v", s, ok)
	}
	for _, bad := range []string{`1`, `"a`, `"a" "b"`, `"\udc00"`, "\"\xff\""} {
		if _, ok := String([]byte(bad)); ok {
			t.Errorf("String(%s) ok", bad)
		}
	}
}
