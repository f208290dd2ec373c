package chainid

import (
	"testing"

	"github.com/evmlb/evmlb/internal/jsonrpc"
)

func TestAnswer(t *testing.T) {
	for _, tc := range []struct {
		body    string
		chainID uint64
		want    string // "" for no local answer
	}{
		{`{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[]}`, 31337, `{"jsonrpc":"2.0","id":1,"result":"0x7a69"}`},
		{`{"jsonrpc":"2.0","id":"x","method":"eth_chainId"}`, 1, `{"jsonrpc":"2.0","id":"x","result":"0x1"}`},
		{`{"jsonrpc":"2.0","id":null,"method":"net_version","params":{}}`, 31337, `{"jsonrpc":"2.0","id":null,"result":"31337"}`},
		{`{"jsonrpc":"2.0","id":-5,"method":"net_version","params":[]}`, 1, `{"jsonrpc":"2.0","id":-5,"result":"1"}`},
		{`{"jsonrpc":"2.0","id":9223372036854775807,"method":"eth_chainId"}`, 1, `{"jsonrpc":"2.0","id":9223372036854775807,"result":"0x1"}`},
		{`[{"jsonrpc":"2.0","id":1,"method":"eth_chainId"},{"jsonrpc":"2.0","id":2,"method":"net_version"}]`, 10, `[{"jsonrpc":"2.0","id":1,"result":"0xa"},{"jsonrpc":"2.0","id":2,"result":"10"}]`},
		// Left to the upstream.
		{`{"jsonrpc":"2.0","id":1,"method":"eth_chainId"}`, 0, ""},                                                       // chain id not known yet
		{`{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber"}`, 1, ""},                                                   // another method
		{`{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":["x"]}`, 1, ""},                                        // params
		{`{"jsonrpc":"2.0","method":"eth_chainId"}`, 1, ""},                                                              // notification
		{`[{"jsonrpc":"2.0","id":1,"method":"eth_chainId"},{"jsonrpc":"2.0","method":"net_version"}]`, 1, ""},            // a notification in a batch
		{`{"jsonrpc":"2.0","id":1.5,"method":"eth_chainId"}`, 1, ""},                                                     // an id nodes refuse
		{`{"jsonrpc":"2.0","id":123456789012345678901234567890,"method":"eth_chainId"}`, 1, ""},                          // beyond 64 bits
		{`[{"jsonrpc":"2.0","id":1,"method":"eth_chainId"},{"jsonrpc":"2.0","id":2,"method":"eth_blockNumber"}]`, 1, ""}, // mixed batch
	} {
		req, perr := jsonrpc.Parse([]byte(tc.body), 100)
		if perr != nil {
			t.Fatalf("%s: %v", tc.body, perr)
		}
		got, ok := Answer(req, tc.chainID)
		if ok != (tc.want != "") || string(got) != tc.want {
			t.Errorf("%s (chain id %d): got %v %s, want %s", tc.body, tc.chainID, ok, got, tc.want)
		}
	}
	if _, ok := Answer(nil, 1); ok {
		t.Error("nil request answered")
	}
}
