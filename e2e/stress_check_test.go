package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/evmlb/evmlb/e2e/internal/rpc"
)

// TestStressCheck feeds the stress test's answer check with answers right and wrong: it must tell them apart
// without a balancer.
func TestStressCheck(t *testing.T) {
	c := &stressChain{name: "alpha", id: 31337, balance: canon(json.RawMessage(`"0x10"`)), startHead: 20,
		hashes: map[uint64]string{21: "0x" + strings.Repeat("ab", 32)}}
	c.headMax.Store(22)
	c.st.errs = map[int]int{}
	call := func(id, method string, params ...any) stressCall {
		return stressCall{id: json.RawMessage(id), method: method, params: params}
	}
	echo := stressCall{id: json.RawMessage(`"e"`), method: "eth_call", want: "0xbeef"}
	block := `{"number":"0x15","hash":"0x` + strings.Repeat("ab", 32) + `","parentHash":"0x00"}`
	json200 := http.Header{"Content-Type": {"application/json"}}
	cases := []struct {
		name    string
		calls   []stressCall
		batch   bool
		status  int
		body    string
		code    int  // a proper balancer error
		problem bool // a wrong answer
	}{
		{"chain id", []stressCall{call("1", "eth_chainId")}, false, 200, `{"jsonrpc":"2.0","id":1,"result":"0x7a69"}`, 0, false},
		{"wrong chain id", []stressCall{call("1", "eth_chainId")}, false, 200, `{"jsonrpc":"2.0","id":1,"result":"0x7a6a"}`, 0, true},
		{"wrong id", []stressCall{call("1", "eth_chainId")}, false, 200, `{"jsonrpc":"2.0","id":2,"result":"0x7a69"}`, 0, true},
		{"string id", []stressCall{call(`"s-3"`, "eth_chainId")}, false, 200, `{"jsonrpc":"2.0","id":"s-3","result":"0x7a69"}`, 0, false},
		{"id as a number for a string", []stressCall{call(`"3"`, "eth_chainId")}, false, 200, `{"jsonrpc":"2.0","id":3,"result":"0x7a69"}`, 0, true},
		{"no jsonrpc", []stressCall{call("1", "eth_chainId")}, false, 200, `{"id":1,"result":"0x7a69"}`, 0, true},
		{"result and error", []stressCall{call("1", "eth_chainId")}, false, 200, `{"jsonrpc":"2.0","id":1,"result":"0x7a69","error":{"code":1,"message":"x"}}`, 0, true},
		{"not JSON", []stressCall{call("1", "eth_chainId")}, false, 200, `<html>`, 0, true},
		{"upstream error in a 200", []stressCall{call("1", "eth_chainId")}, false, 200, `{"jsonrpc":"2.0","id":1,"error":{"code":-32000,"message":"header not found"}}`, 0, true},
		{"head", []stressCall{call("1", "eth_blockNumber")}, false, 200, `{"jsonrpc":"2.0","id":1,"result":"0x16"}`, 0, false},
		{"head above the node's", []stressCall{call("1", "eth_blockNumber")}, false, 200, `{"jsonrpc":"2.0","id":1,"result":"0x17"}`, 0, true},
		{"head below the start", []stressCall{call("1", "eth_blockNumber")}, false, 200, `{"jsonrpc":"2.0","id":1,"result":"0x13"}`, 0, true},
		{"balance", []stressCall{call("1", "eth_getBalance")}, false, 200, `{"jsonrpc":"2.0","id":1,"result":"0x10"}`, 0, false},
		{"wrong balance", []stressCall{call("1", "eth_getBalance")}, false, 200, `{"jsonrpc":"2.0","id":1,"result":"0x11"}`, 0, true},
		{"echo", []stressCall{echo}, false, 200, `{"jsonrpc":"2.0","id":"e","result":"0xbeef"}`, 0, false},
		{"another call's echo", []stressCall{echo}, false, 200, `{"jsonrpc":"2.0","id":"e","result":"0xbee0"}`, 0, true},
		{"block", []stressCall{call("1", "eth_getBlockByNumber")}, false, 200, `{"jsonrpc":"2.0","id":1,"result":` + block + `}`, 0, false},
		{"block of another chain", []stressCall{call("1", "eth_getBlockByNumber")}, false, 200, `{"jsonrpc":"2.0","id":1,"result":` + strings.Replace(block, "abab", "cdcd", 1) + `}`, 0, true},
		{"null block", []stressCall{call("1", "eth_getBlockByNumber")}, false, 200, `{"jsonrpc":"2.0","id":1,"result":null}`, 0, true},
		{"batch", []stressCall{call("1", "eth_chainId"), echo}, true, 200, `[{"jsonrpc":"2.0","id":1,"result":"0x7a69"},{"jsonrpc":"2.0","id":"e","result":"0xbeef"}]`, 0, false},
		{"batch reordered", []stressCall{call("1", "eth_chainId"), echo}, true, 200, `[{"jsonrpc":"2.0","id":"e","result":"0xbeef"},{"jsonrpc":"2.0","id":1,"result":"0x7a69"}]`, 0, true},
		{"batch short", []stressCall{call("1", "eth_chainId"), echo}, true, 200, `[{"jsonrpc":"2.0","id":1,"result":"0x7a69"}]`, 0, true},
		{"batch as an object", []stressCall{call("1", "eth_chainId"), echo}, true, 200, `{"jsonrpc":"2.0","id":1,"result":"0x7a69"}`, 0, true},
		{"no upstream", []stressCall{call("1", "eth_chainId")}, false, 503, `{"jsonrpc":"2.0","id":1,"error":{"code":-32070,"message":"no upstream could answer"}}`, -32070, false},
		{"no upstream, batch", []stressCall{call("1", "eth_chainId"), echo}, true, 503, `[{"jsonrpc":"2.0","id":1,"error":{"code":-32070,"message":"no upstream could answer"}},{"jsonrpc":"2.0","id":"e","error":{"code":-32070,"message":"no upstream could answer"}}]`, -32070, false},
		{"no upstream, wrong status", []stressCall{call("1", "eth_chainId")}, false, 502, `{"jsonrpc":"2.0","id":1,"error":{"code":-32070,"message":"no upstream could answer"}}`, 0, true},
		{"code not in the table", []stressCall{call("1", "eth_chainId")}, false, 503, `{"jsonrpc":"2.0","id":1,"error":{"code":-32000,"message":"x"}}`, 0, true},
		{"internal error", []stressCall{call("1", "eth_chainId")}, false, 500, `{"jsonrpc":"2.0","id":1,"error":{"code":-32603,"message":"internal error"}}`, 0, true},
		{"a 503 with a result", []stressCall{call("1", "eth_chainId")}, false, 503, `{"jsonrpc":"2.0","id":1,"result":"0x7a69"}`, 0, true},
		{"a text 502", []stressCall{call("1", "eth_chainId")}, false, 502, `bad gateway`, 0, true},
	}
	for _, tc := range cases {
		c.served.Store(0)
		code, problem := c.check(context.Background(), tc.calls, tc.batch, &rpc.Response{Status: tc.status, Header: json200, Body: []byte(tc.body)}, 0)
		if code != tc.code || (problem != "") != tc.problem {
			t.Errorf("%s: code %d, problem %q; want code %d, a problem: %v", tc.name, code, problem, tc.code, tc.problem)
		}
	}
	// A head below one answered before the request was sent is counted.
	c.st.headBack = 0
	c.check(context.Background(), []stressCall{call("1", "eth_blockNumber")}, false, &rpc.Response{Status: 200, Header: json200, Body: []byte(`{"jsonrpc":"2.0","id":1,"result":"0x15"}`)}, 22)
	if c.st.headBack != 1 {
		t.Errorf("a head below the floor: headBack %d, want 1", c.st.headBack)
	}
	// A text/plain answer is wrong whatever it holds.
	if _, p := c.check(context.Background(), []stressCall{call("1", "eth_chainId")}, false, &rpc.Response{Status: 200, Header: http.Header{"Content-Type": {"text/plain"}}, Body: []byte(`{"jsonrpc":"2.0","id":1,"result":"0x7a69"}`)}, 0); p == "" {
		t.Error("a text/plain answer passed")
	}
}
