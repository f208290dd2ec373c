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
		Params []string
	}
	if err := json.Unmarshal(Batch(255), &calls); err != nil || len(calls) != 4 || calls[3].Params[0] != "0xff" {
		t.Fatalf("%s: %v", Batch(255), err)
	}
	if err := json.Unmarshal(Batch(0), &calls); err != nil || len(calls) != 3 {
		t.Fatalf("%s: %v", Batch(0), err)
	}
	for _, b := range [][]byte{Call("eth_chainId"), BlockCall(16)} {
		if !json.Valid(b) {
			t.Errorf("%s", b)
		}
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
