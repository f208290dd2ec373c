package healthcheck

import (
	"encoding/json"
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
		r, ok := ReadBatch([]byte(tc.body), tc.prev)
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
	if err := json.Unmarshal(Batch(255), &calls); err != nil || len(calls) != 5 || calls[4].Params[0] != "0xff" {
		t.Fatalf("%s: %v", Batch(255), err)
	}
	if err := json.Unmarshal(Batch(0), &calls); err != nil || len(calls) != 4 {
		t.Fatalf("%s: %v", Batch(0), err)
	}
	if c := calls[3]; c.Method != "eth_getBlockByNumber" || len(c.Params) != 2 || c.Params[0] != "finalized" || c.Params[1] != false {
		t.Errorf("the finalized call: %+v", c)
	}
	for _, b := range [][]byte{Call("eth_chainId"), BlockCall(16), FinalizedCall()} {
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
