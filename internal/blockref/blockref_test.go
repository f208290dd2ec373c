package blockref

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestOf(t *testing.T) {
	hash := `"0x` + "ab" + "00000000000000000000000000000000000000000000000000000000000000" + `"`
	for _, tc := range []struct {
		method, params string
		want           Ref
	}{
		{"eth_blockNumber", `[]`, Ref{}},
		{"eth_getBlockByNumber", `["0x10", false]`, Ref{Number, 16}},
		{"eth_getBlockByNumber", `["latest", false]`, Ref{Kind: Latest}},
		{"eth_getBlockByNumber", `["finalized", false]`, Ref{Kind: Latest}},
		{"eth_getBlockByNumber", `["earliest", false]`, Ref{Kind: Earliest}},
		{"eth_getBlockByHash", `[` + hash + `, false]`, Ref{}},
		{"eth_getBalance", `["0x0000000000000000000000000000000000000001", "0x2a"]`, Ref{Number, 42}},
		{"eth_getBalance", `["0x0000000000000000000000000000000000000001"]`, Ref{Kind: Latest}},
		{"eth_getBalance", `["0x0000000000000000000000000000000000000001", {"blockNumber":"0x5"}]`, Ref{Number, 5}},
		{"eth_getBalance", `["0x0000000000000000000000000000000000000001", {"blockHash":` + hash + `}]`, Ref{}},
		{"eth_call", `[{"to":"0x01","data":"0x"}, "0xff"]`, Ref{Number, 255}},
		{"eth_getStorageAt", `["0x01", "0x0", "0x64"]`, Ref{Number, 100}},
		{"eth_getLogs", `[{"fromBlock":"0x1","toBlock":"0x20"}]`, Ref{Number, 32}},
		{"eth_getLogs", `[{"fromBlock":"0x1"}]`, Ref{Kind: Latest}},
		{"eth_getLogs", `[{"fromBlock":"latest"}]`, Ref{Kind: Latest}},
		{"eth_getLogs", `[{"blockHash":` + hash + `}]`, Ref{}},
		{"eth_getLogs", `[{"fromBlock":"0x30","toBlock":"0x20"}]`, Ref{Number, 48}},
		{"eth_getBlockByNumber", `{"not":"a list"}`, Ref{}},
		{"eth_getBlockByNumber", `["0xzz"]`, Ref{}},
		{"eth_getBlockByNumber", `["0x10000000000000000"]`, Ref{}},
		{"eth_getBlockByNumber", ``, Ref{}},
		{"eth_feeHistory", `["0x4", "0x99", []]`, Ref{Number, 0x99}},
		// Keys are matched exactly, once unescaped, as a node that reads them case-sensitively does.
		{"eth_getLogs", `[{"\u0066romBlock":"0x30","toBlock":"0x2\u0030"}]`, Ref{Number, 48}},
		{"eth_getLogs", `[{"FromBlock":"0x30","toBlock":"0x20"}]`, Ref{Number, 32}},
		{"eth_getLogs", `[{"fromBlock":"0x1","TOBLOCK":"0x20"}]`, Ref{Kind: Latest}},
		{"eth_getLogs", `[{"fromBlock":"0x1","BlockHash":` + hash + `}]`, Ref{Kind: Latest}},
		{"eth_getBalance", `["0x01", {"BlockNumber":"0x5"}]`, Ref{}},
		{"eth_getBalance", `["0x01", {"blockNumber":"0x5","BlockNumber":"0x7"}]`, Ref{}},  // Parse refuses such bodies:
		{"eth_getLogs", `[{"fromBlock":"0x1","toBlock":"0x20","toBlock":"0x40"}]`, Ref{}}, // no reading of them is right
		// A member of the wrong type spoils the filter; null is an absent member.
		{"eth_getLogs", `[{"fromBlock":1,"toBlock":"0x20"}]`, Ref{}},
		{"eth_getLogs", `[{"fromBlock":null,"toBlock":"0x20","blockHash":null}]`, Ref{Number, 32}},
		{"eth_getLogs", `["0x1"]`, Ref{}},
		{"eth_getBalance", `["0x01", {"blockNumber":null}]`, Ref{}},
		{"eth_call", `[{"to":"0x01"}, "0x10", {"0x01":{"balance":"0x1"}}]`, Ref{Number, 16}},
		{"eth_call", `[{"to":"0x01"}, "0x10"`, Ref{}},
	} {
		if got := Of(tc.method, json.RawMessage(tc.params)); got != tc.want {
			t.Errorf("Of(%s, %s) = %+v, want %+v", tc.method, tc.params, got, tc.want)
		}
	}
}

// BenchmarkOf reads the block of a 1 MiB eth_call: the calldata is skipped over, not copied.
func BenchmarkOf(b *testing.B) {
	params := json.RawMessage(`[{"to":"0x0000000000000000000000000000000000000001","data":"0x` +
		strings.Repeat("ab", 1<<19) + `"},"0x10"]`)
	b.ReportAllocs()
	b.SetBytes(int64(len(params)))
	for b.Loop() {
		if r := Of("eth_call", params); r != (Ref{Number, 16}) {
			b.Fatal(r)
		}
	}
}

func FuzzOf(f *testing.F) {
	f.Add("eth_getLogs", []byte(`[{"fromBlock":"0x1","toBlock":"0x20"}]`))
	f.Add("eth_call", []byte(`[{}, {"blockNumber":"0x5"}]`))
	f.Fuzz(func(t *testing.T, method string, params []byte) {
		r := Of(method, params)
		if r.Kind != Number && r.Number != 0 {
			t.Fatalf("number %d set with kind %d", r.Number, r.Kind)
		}
	})
}

func TestBehind(t *testing.T) {
	const head = 100
	for _, tc := range []struct {
		method, params, answer string
		seen                   uint64
		behind                 bool
	}{
		{"eth_getBlockByNumber", `["latest",false]`, `{"jsonrpc":"2.0","id":1,"result":{"hash":"0x1","number":"0x63","transactions":[]}}`, 99, true},
		{"eth_getBlockByNumber", `["latest",true]`, `{"jsonrpc":"2.0","id":1,"result": {"baseFeePerGas":"0x1", "number" : "0x64","transactions":[{"blockNumber":"0x1"}]}}`, 100, false},
		{"eth_getBlockByNumber", `["latest",false]`, `{"jsonrpc":"2.0","id":1,"result":{"number":"0x65"}}`, 101, false},
		{"eth_getHeaderByNumber", `["latest"]`, `{"jsonrpc":"2.0","id":1,"result":{"number":"0x10"}}`, 16, true},
		{"eth_getBlockByNumber", `["latest",false]`, `{"jsonrpc":"2.0","id":1,"result":null}`, 0, true},
		{"eth_getBlockByNumber", `["0x64",false]`, `{"jsonrpc":"2.0","id":1,"result":null}`, 99, true},
		{"eth_getBlockByNumber", `["0x65",false]`, `{"jsonrpc":"2.0","id":1,"result":null}`, 0, false}, // above the head: null is the truth
		{"eth_getBlockByNumber", `["0x0",false]`, `{"jsonrpc":"2.0","id":1,"result":null}`, 0, true},
		{"eth_getBlockByNumber", `["0x64",false]`, `{"jsonrpc":"2.0","id":1,"result":{"number":"0x64"}}`, 0, false},
		{"eth_getBlockByNumber", `["safe",false]`, `{"jsonrpc":"2.0","id":1,"result":{"number":"0x50"}}`, 0, false},
		{"eth_getBlockByNumber", `["finalized",false]`, `{"jsonrpc":"2.0","id":1,"result":null}`, 0, false},
		{"eth_getBlockByNumber", `["latest",false]`, `{"jsonrpc":"2.0","id":1,"error":{"code":-32000,"message":"x"}}`, 0, false},
		{"eth_getBlockByNumber", `["latest",false]`, `{"jsonrpc":"2.0","id":1,"result":{"hash":"0x1"}}`, 0, false},
		{"eth_getBalance", `["0x1","latest"]`, `{"jsonrpc":"2.0","id":1,"result":null}`, 0, false},
		{"eth_getBlockByNumber", `[{"blockHash":"0x1"}]`, `{"jsonrpc":"2.0","id":1,"result":null}`, 0, false},
	} {
		seen, behind := Behind(tc.method, json.RawMessage(tc.params), head, []byte(tc.answer))
		if seen != tc.seen || behind != tc.behind {
			t.Errorf("%s %s → %s: got %d %v, want %d %v", tc.method, tc.params, tc.answer, seen, behind, tc.seen, tc.behind)
		}
	}
	if _, behind := Behind("eth_getBlockByNumber", json.RawMessage(`["latest"]`), 0, []byte(`{"result":null}`)); behind {
		t.Error("no head served: nothing is behind")
	}
}
