package healthcheck

import (
	"encoding/json"
	"testing"

	"github.com/evmlb/evmlb/internal/blockref"
	"github.com/evmlb/evmlb/internal/retry"
)

func TestStateProbeCall(t *testing.T) {
	var c struct {
		Method string          `json:"method"`
		Params json.RawMessage `json:"params"`
	}
	for _, n := range []uint64{StateProbeBlock, 0x2c} {
		if err := json.Unmarshal(StateProbeCall(n), &c); err != nil {
			t.Fatal(err)
		}
		if ref := blockref.Of(c.Method, c.Params); ref.Kind != blockref.Number || ref.Number != n {
			t.Fatalf("the probe reads %+v, want block %d", ref, n)
		}
	}
}

func TestReadStateProbe(t *testing.T) {
	for _, tc := range []struct {
		answer string
		class  retry.Class
		lack   retry.Lack
		proves bool
	}{
		{`{"jsonrpc":"2.0","id":1,"result":"0x0"}`, retry.OK, retry.NoLack, true},
		{`{"jsonrpc":"2.0","id":1,"result":"0x1bc16d674ec80000"}`, retry.OK, retry.NoLack, true},
		{`{"jsonrpc":"2.0","id":1,"error":{"code":-32000,"message":"missing trie node 1db428ea (path )"}}`, retry.MissingData, retry.LacksState, true},
		{`{"jsonrpc":"2.0","id":1,"error":{"code":-32000,"message":"historical state 0xab is not available"}}`, retry.MissingData, retry.LacksState, true},
		{`{"jsonrpc":"2.0","id":1,"error":{"code":-32000,"message":"header not found"}}`, retry.MissingData, retry.LacksBlock, true},
		// Proves nothing: a rate limit, the method missing (a state probe cannot say that of client reads), a bad
		// result.
		{`{"jsonrpc":"2.0","id":1,"error":{"code":-32005,"message":"rate limit"}}`, retry.OK, retry.NoLack, false},
		{`{"jsonrpc":"2.0","id":1,"error":{"code":-32601,"message":"Method not found"}}`, retry.OK, retry.NoLack, false},
		{`{"jsonrpc":"2.0","id":1,"result":null}`, retry.OK, retry.NoLack, false},
		{`{"jsonrpc":"2.0","id":1,"result":"zz"}`, retry.OK, retry.NoLack, false},
	} {
		c, l, p := ReadStateProbe([]byte(tc.answer))
		if c != tc.class || l != tc.lack || p != tc.proves {
			t.Errorf("%s: (%q, %q, %v), want (%q, %q, %v)", tc.answer, c, l, p, tc.class, tc.lack, tc.proves)
		}
	}
}
