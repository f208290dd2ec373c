package healthcheck

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/evmlb/evmlb/internal/retry"
)

// The one hex parser of quantities (blockref.ParseQuantity): 0x and 1 to 16 hex digits.
func TestReadQuantity(t *testing.T) {
	for q, want := range map[string]bool{
		"0x0": true, "0x1b4": true, "0xffffffffffffffff": true, "0xABC": true, "0X1b4": true,
		"": false, "0x": false, "1b4": false, "0x1g": false, "0x10000000000000000": false, "-0x1": false, " 0x1": false,
	} {
		b, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": 1, "result": q})
		if _, _, err := ReadQuantity(b); (err == nil) != want {
			t.Errorf("ReadQuantity(%q): %v", q, err)
		}
	}
	for answer, want := range map[string]struct {
		class retry.Class
		text  string
	}{
		`{"result":"0x10"}`: {retry.OK, ""},
		`not json`:          {retry.HealthBadResult, "not a JSON-RPC answer"},
		`{"error":{"code":-32601,"message":"the method eth_chainId does not exist"}}`: {retry.HealthRPCError, "JSON-RPC error -32601 the method eth_chainId does not exist"},
		`{"error":null,"result":"0x1"}`:                                               {retry.OK, ""},
		`{"id":1}`:                                                                    {retry.HealthBadResult, "no result"},
		`{"result":null}`:                                                             {retry.HealthBadResult, "not a quantity"},
		`{"result":16}`:                                                               {retry.HealthBadResult, "not a quantity"},
	} {
		_, _, err := ReadQuantity([]byte(answer))
		switch {
		case want.class == retry.OK && err != nil:
			t.Errorf("%s: %v", answer, err)
		case want.class != retry.OK && (err == nil || ClassOf(err) != want.class || err.Error() != want.text):
			t.Errorf("%s: %v (%s), want %q (%s)", answer, err, ClassOf(err), want.text, want.class)
		}
	}
}

func TestReadBatch(t *testing.T) {
	for _, tc := range []struct {
		name   string
		body   string
		prev   uint64
		ok     bool
		result Result
	}{
		{"all", `[{"id":3,"result":{"currentBlock":"0x1"}},{"id":1,"result":"0x1"},{"id":2,"result":"0x64"},{"id":4,"result":"0x0"}]`, 90, true,
			Result{ChainID: "0x1", Height: 100, Syncing: true, Probe: BlockThere}},
		{"no syncing, block missing", `[{"id":1,"result":"0x1"},{"id":2,"result":"0x64"},{"id":4,"result":null}]`, 90, true,
			Result{ChainID: "0x1", Height: 100, Probe: BlockMissing}},
		{"first check", `[{"id":1,"result":"0x1"},{"id":2,"result":"0x64"},{"id":3,"result":false}]`, 0, true,
			Result{ChainID: "0x1", Height: 100}},
		{"chain id an error", `[{"id":1,"error":{"code":-32000,"message":"x"}},{"id":2,"result":"0x64"}]`, 0, true,
			Result{Class: retry.HealthRPCError}},
		{"height not a quantity", `[{"id":1,"result":"0x1"},{"id":2,"result":"latest"}]`, 0, true,
			Result{Class: retry.HealthBadResult, ChainID: "0x1"}},
		{"finalized", `[{"id":1,"result":"0x1"},{"id":2,"result":"0x64"},{"id":3,"result":false},{"id":5,"result":{"number":"0x24","hash":"0xab"}}]`, 0, true,
			Result{ChainID: "0x1", Height: 100, Finalized: 36}},
		// A node without the tag answers an error or null for it: no finality, and the check still passes.
		{"finalized unsupported", `[{"id":1,"result":"0x1"},{"id":2,"result":"0x64"},{"id":3,"result":false},{"id":5,"error":{"code":-32602,"message":"invalid block tag"}}]`, 0, true,
			Result{ChainID: "0x1", Height: 100}},
		{"finalized null", `[{"id":1,"result":"0x1"},{"id":2,"result":"0x64"},{"id":5,"result":null}]`, 0, true,
			Result{ChainID: "0x1", Height: 100}},
		{"finalized not a block", `[{"id":1,"result":"0x1"},{"id":2,"result":"0x64"},{"id":5,"result":"0x24"}]`, 0, true,
			Result{ChainID: "0x1", Height: 100}},
		{"not an array", `{"id":1,"result":"0x1"}`, 0, false, Result{}},
		{"a call missing", `[{"id":1,"result":"0x1"}]`, 0, false, Result{}},
	} {
		r, ok := ReadBatch([]byte(tc.body), tc.prev, Final{})
		if ok != tc.ok || r != tc.result {
			t.Errorf("%s: %+v %v, want %+v %v", tc.name, r, ok, tc.result, tc.ok)
		}
	}
}

func TestBatchAndCalls(t *testing.T) {
	var calls []struct {
		ID     json.RawMessage
		Method string
		Params []any
	}
	if err := json.Unmarshal(Batch(255, Final{}), &calls); err != nil || len(calls) != 5 || calls[4].Params[0] != "0xff" {
		t.Fatalf("%s: %v", Batch(255, Final{}), err)
	}
	// A finalized block without a hash is never asked again: there is nothing to compare.
	if err := json.Unmarshal(Batch(0, Final{Number: 36}), &calls); err != nil || len(calls) != 4 {
		t.Fatalf("%s: %v", Batch(0, Final{Number: 36}), err)
	}
	if c := calls[3]; c.Method != "eth_getBlockByNumber" || len(c.Params) != 2 || c.Params[0] != "finalized" || c.Params[1] != false {
		t.Errorf("the finalized call: %+v", c)
	}
	var again []struct {
		ID     json.Number
		Method string
		Params []any
	}
	b := Batch(255, Final{Number: 36, Hash: hashA})
	if err := json.Unmarshal(b, &again); err != nil || len(again) != 6 {
		t.Fatalf("%s: %v", b, err)
	}
	if c := again[5]; c.ID.String() != "6" || c.Method != "eth_getBlockByNumber" || len(c.Params) != 2 || c.Params[0] != "0x24" || c.Params[1] != false {
		t.Errorf("the finalized block asked again: %+v", c)
	}
	for _, b := range [][]byte{Call("eth_chainId"), BlockCall(16), FinalizedCall(), RecheckCall(Final{Number: 36, Hash: hashA})} {
		if !json.Valid(b) {
			t.Errorf("%s", b)
		}
	}
}

// TestReadFinalized: only a block with a number is a finalized block; anything else is none, never a failure.
func TestReadFinalized(t *testing.T) {
	for answer, want := range map[string]uint64{
		`{"result":{"number":"0x24"}}`: 36, `{"result":null}`: 0, `{"result":{}}`: 0, `{"result":{"number":"x"}}`: 0,
		`{"error":{"code":-32601,"message":"nope"}}`: 0, `garbage`: 0, `{"result":"0x24"}`: 0,
	} {
		if got := ReadFinalized([]byte(answer)); got != want {
			t.Errorf("%s: %d, want %d", answer, got, want)
		}
	}
	if ReadFinalized(nil) != 0 {
		t.Error("no answer gave a finalized block")
	}
}

const (
	hashA = "0xaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	hashB = "0xbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
)

// TestReadFinalBlock: the finalized block's hash is kept when it looks like one.
func TestReadFinalBlock(t *testing.T) {
	for answer, want := range map[string]Final{
		`{"result":{"number":"0x24","hash":"` + hashA + `"}}`: {36, hashA},
		`{"result":{"number":"0x24"}}`:                        {36, ""},
		`{"result":{"number":"0x24","hash":"0xab"}}`:          {36, ""},
		`{"result":{"number":"0x24","hash":7}}`:               {},
		`{"result":{"number":"0x0","hash":"` + hashA + `"}}`:  {},
		`{"result":null}`: {},
		`{"error":{"code":-32602,"message":"invalid block tag"}}`: {},
	} {
		if got := ReadFinalBlock([]byte(answer)); got != want {
			t.Errorf("%s: %+v, want %+v", answer, got, want)
		}
	}
}

// TestReadBatchRecheck: the finalized block an earlier check found, asked again in the batch: another hash or
// null means the chain replaced it (Replaced); the same hash, an error, no answer or no hash mean nothing.
func TestReadBatchRecheck(t *testing.T) {
	known := Final{Number: 36, Hash: hashA}
	head := `{"id":1,"result":"0x1"},{"id":2,"result":"0x64"},{"id":5,"result":{"number":"0x62","hash":"` + hashB + `"}}`
	for _, tc := range []struct {
		name    string
		recheck string // the element with id 6, "" for none
		known   Final
		want    uint64
	}{
		{"same hash", `{"id":6,"result":{"number":"0x24","hash":"` + hashA + `"}}`, known, 0},
		{"same hash, other case", `{"id":6,"result":{"number":"0x24","hash":"` + strings.ToUpper(hashA[:2]) + strings.ToUpper(hashA[2:]) + `"}}`, known, 0},
		{"another hash", `{"id":6,"result":{"number":"0x24","hash":"` + hashB + `"}}`, known, 36},
		{"null: no block there now", `{"id":6,"result":null}`, known, 36},
		{"an error", `{"id":6,"error":{"code":-32000,"message":"header not found"}}`, known, 0},
		{"an error, result null too", `{"id":6,"result":null,"error":{"code":-32603,"message":"internal"}}`, known, 0},
		{"not answered", ``, known, 0},
		{"no result member", `{"id":6}`, known, 0},
		{"a block without a hash", `{"id":6,"result":{"number":"0x24"}}`, known, 0},
		{"not a block", `{"id":6,"result":"0x24"}`, known, 0},
		{"nothing known: not read", `{"id":6,"result":null}`, Final{}, 0},
		{"known without a hash: not read", `{"id":6,"result":null}`, Final{Number: 36}, 0},
	} {
		body := "[" + head
		if tc.recheck != "" {
			body += "," + tc.recheck
		}
		r, ok := ReadBatch([]byte(body+"]"), 0, tc.known)
		want := Result{ChainID: "0x1", Height: 100, Finalized: 98, FinalizedHash: hashB, Replaced: tc.want}
		if !ok || r != want {
			t.Errorf("%s: %+v %v, want %+v", tc.name, r, ok, want)
		}
		if got := ReadRecheck([]byte(tc.recheck), tc.known); (got && tc.recheck != "") != (tc.want != 0) {
			t.Errorf("%s: ReadRecheck %v", tc.name, got)
		}
	}
	if ReadRecheck(nil, known) {
		t.Error("no answer is a replaced block")
	}
}

func TestReadBlockAndSyncing(t *testing.T) {
	for answer, want := range map[string]Block{
		`{"result":"0x3"}`: BlockThere,
		`{"result":null}`:  BlockMissing,
		`{"error":{"code":-32000,"message":"header not found"}}`:                                              BlockMissing,
		`{"error":{"code":-32603,"message":"BlockOutOfRangeError: block height is 0 but requested was 100"}}`: BlockMissing,
		`{"error":{"code":-32601,"message":"method not found"}}`:                                              BlockUnknown,
		`garbage`: BlockUnknown,
	} {
		if got := ReadBlock([]byte(answer)); got != want {
			t.Errorf("%s: %d, want %d", answer, got, want)
		}
	}
	if ReadBlock(nil) != BlockUnknown {
		t.Error("no answer proves something")
	}
	for answer, want := range map[string]bool{
		`{"result":{"currentBlock":"0x1","highestBlock":"0x2"}}`: true, `{"result":false}`: false, `{"result":null}`: false,
		`{"error":{"code":-32601,"message":"nope"}}`: false, `{"result":true}`: false,
	} {
		if Syncing([]byte(answer)) != want {
			t.Errorf("%s: syncing %v", answer, !want)
		}
	}
}
