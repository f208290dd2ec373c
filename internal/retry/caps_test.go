package retry

import (
	"strings"
	"testing"
)

// Every row of LackTexts, each on a real provider's full text (or one in its words), and texts that must prove
// nothing.
func TestLackTexts(t *testing.T) {
	for _, tc := range []struct {
		method  string
		code    int64
		message string
		want    Lack
	}{
		// State.
		{"eth_getBalance", -32000, "missing trie node d67e4d450343046425ae4271474353857ab860dbc0a1dde64b41b5cd3a532bf3 (path )", LacksState},
		{"eth_call", -32000, "historical state 0x3f2d5a1b9c0e7f64a8b2c1d0e9f8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0 is not available", LacksState},
		{"debug_traceCall", -32000, "required historical state unavailable (reexec=128)", LacksState},
		{"eth_getStorageAt", -32000, "state is not available", LacksState},
		{"eth_getProof", -32000, "state not available for block 0x10", LacksState},
		{"eth_getBalance", -32000, "This request is not supported because your node is running with state pruning. Run with --pruning=archive.", LacksState},
		{"eth_getCode", -32002, "Block 0xabc has been pruned", LacksState},
		{"eth_getTransactionCount", -32000, "state pruned at block 12", LacksState},
		// Blocks.
		{"eth_getBalance", -32000, "header not found", LacksBlock},
		{"eth_call", -39001, "Unknown block", LacksBlock},
		{"eth_getBlockByNumber", -32001, "Block not found", LacksBlock},
		// Methods.
		{"debug_traceTransaction", -32601, "the method debug_traceTransaction does not exist/is not available", LacksMethod},
		{"trace_block", -32601, "Method not found", LacksMethod},
		{"trace_block", -32601, "", LacksMethod},
		{"debug_traceBlockByNumber", -32000, "the method debug_traceBlockByNumber does not exist/is not available", LacksMethod},
		{"eth_chainId", -32000, "Method not found", LacksMethod},
		{"eth_getProof", -32000, "METHOD_NOT_FOUND: The method being requested is not available on this server", LacksMethod},
		{"trace_filter", -32000, "Method not supported", LacksMethod},
		{"trace_block", -32000, "Unsupported method: trace_block. See available methods at https://docs.example/", LacksMethod},
		{"trace_replayBlockTransactions", -32000, "Method trace_replayBlockTransactions is not supported", LacksMethod},
		{"trace_block", -32000, "trace_block is not supported on this network", LacksMethod},
		{"debug_traceCall", -32000, "debug_traceCall is not available on the free tier", LacksMethod},
		{"eth_getProof", -32000, "eth_getProof method is not available", LacksMethod},
		// Nothing learned.
		{"eth_call", 3, "execution reverted: not supported", NoLack},
		{"eth_call", 3, "execution reverted: method not supported", NoLack}, // a contract's reason, not the node's
		{"eth_call", -32000, "execution reverted: block not found", NoLack},
		{"eth_call", -32000, "execution reverted", NoLack},
		{"eth_sendRawTransaction", -32000, "transaction type not supported", NoLack},
		{"eth_sendRawTransaction", -32000, "nonce too low", NoLack},
		{"eth_getLogs", -32005, "query returned more than 10000 results", NoLack},
		{"eth_call", -32602, "invalid argument 0: hex string has length 3, want 40 for common.Address", NoLack},
		{"eth_call", -32000, "not supported", NoLack},
		// Another method's name is not this one's.
		{"trace_block", -32000, "the method debug_traceCall does not exist/is not available", NoLack},
		{"eth_call", -32000, "trace_block is not supported", NoLack},
		{"", -32000, "the method  does not exist/is not available", NoLack},
	} {
		if got := LackIn(tc.method, tc.code, tc.message); got != tc.want {
			t.Errorf("LackIn(%q, %d, %q) = %q, want %q", tc.method, tc.code, tc.message, got, tc.want)
		}
	}
}

// Every row is reached by some text: its fragment alone proves its lack (a row shadowed by an earlier one, or
// matched in the wrong pass, would fail here).
func TestLackTextsEachRow(t *testing.T) {
	seenMethod := false
	for _, r := range LackTexts {
		if r.Lack == LacksMethod {
			seenMethod = true
		} else if seenMethod {
			t.Errorf("row %q comes after a method row: state and block rows must go first", r.Fragment)
		}
		if r.Who == "" {
			t.Errorf("row %q says not whose words it is", r.Fragment)
		}
		msg := strings.ReplaceAll(r.Fragment, "%m", "trace_block")
		if got := LackIn("trace_block", -32000, "Error: "+strings.ToUpper(msg[:1])+msg[1:]+"."); got != r.Lack {
			t.Errorf("row %q: LackIn = %q, want %q", r.Fragment, got, r.Lack)
		}
	}
}

func TestLackOf(t *testing.T) {
	for _, tc := range []struct {
		member string
		want   Lack
	}{
		{`{"code":-32000,"message":"missing trie node 12 (path )"}`, LacksState},
		{`{"code":-32601,"message":"the method trace_block does not exist/is not available"}`, LacksMethod},
		{`{"code":-32601}`, NoLack},
		{`{"Code":-32601,"message":"x"}`, NoLack},
		{`{"code":"-32601","message":"x"}`, NoLack},
		{`"missing trie node"`, NoLack},
		{``, NoLack},
		{`null`, NoLack},
	} {
		if got := LackOf("trace_block", []byte(tc.member)); got != tc.want {
			t.Errorf("LackOf(%s) = %q, want %q", tc.member, got, tc.want)
		}
	}
}
