package app

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/evmlb/evmlb/internal/evmtest"
	"github.com/evmlb/evmlb/internal/jsonrpc"
)

// errorAnswers decodes a batch of error objects: id and code of each.
func errorAnswers(t *testing.T, body string) (ids []string, codes []int, msgs []string) {
	t.Helper()
	var as []struct {
		ID    json.RawMessage `json:"id"`
		Error struct {
			Code    int
			Message string
		} `json:"error"`
	}
	if err := json.Unmarshal([]byte(body), &as); err != nil {
		t.Fatalf("%v in %s", err, body)
	}
	for _, a := range as {
		ids, codes, msgs = append(ids, string(a.ID)), append(codes, a.Error.Code), append(msgs, a.Error.Message)
	}
	return ids, codes, msgs
}

func TestDeniedMethods(t *testing.T) {
	n := evmtest.NewNode(t, "a", 1, 100)
	h := newHarness(t, nil, upstream{"eth", "a", n.URL})
	for _, tc := range []struct{ name, method string }{
		{"admin", "admin_peers"},
		{"other case", "ADMIN_addPeer"},
		{"personal", "personal_unlockAccount"},
		{"signing", "eth_sign"},
		{"typed data", "eth_signTypedData_v4"},
		{"sending with the provider's keys", "eth_sendTransaction"},
		{"node control", "debug_setHead"},
		{"engine", "engine_forkchoiceUpdatedV3"},
		{"dev node: evm_", "evm_mine"},
		{"dev node: anvil_", "anvil_setBalance"},
		{"dev node: hardhat_", "hardhat_impersonateAccount"},
		{"dev node: ganache_", "ganache_snapshot"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body := h.post("eth", `{"jsonrpc":"2.0","id":"x7","method":"`+tc.method+`","params":[]}`)
			if status != http.StatusForbidden || errorCode(t, body) != jsonrpc.ErrMethodDenied.Code {
				t.Errorf("got %d %s", status, body)
			}
			if !strings.Contains(body, `"id":"x7"`) || !strings.Contains(body, "method not allowed by this balancer: "+tc.method) {
				t.Errorf("answer lacks the id or the method: %s", body)
			}
		})
	}
	// A notification is refused too (with a null id).
	if status, body := h.post("eth", `{"jsonrpc":"2.0","method":"admin_addPeer","params":["enode://x"]}`); status != http.StatusForbidden || !strings.Contains(body, `"id":null`) {
		t.Errorf("notification: %d %s", status, body)
	}
	// A very long method name is cut in the answer.
	long := "admin_" + strings.Repeat("é", 3000)
	if status, body := h.post("eth", `{"jsonrpc":"2.0","id":1,"method":"`+long+`"}`); status != http.StatusForbidden || len(body) > 300 || !strings.Contains(body, "…") {
		t.Errorf("long method: %d %s", status, body)
	}
	// Reads, the debug_trace family and txpool_* pass.
	for _, m := range []string{"eth_call", "eth_accounts", "debug_traceTransaction", "txpool_content", "eth_sendRawTransaction"} {
		if status, body := h.post("eth", `{"jsonrpc":"2.0","id":1,"method":"`+m+`","params":[]}`); status != http.StatusOK || servedBy(t, body) != "a" {
			t.Errorf("%s: %d %s", m, status, body)
		}
	}
	// A batch with one denied call is refused whole: every call with an id gets the error, naming the element.
	status, body := h.post("eth", `[{"jsonrpc":"2.0","id":1,"method":"eth_call","params":[]},`+
		`{"jsonrpc":"2.0","id":"two","method":"miner_start","params":[]},{"jsonrpc":"2.0","method":"eth_call"}]`)
	ids, codes, msgs := errorAnswers(t, body)
	if status != http.StatusForbidden || strings.Join(ids, ",") != `1,"two"` ||
		!slices.Equal(codes, []int{jsonrpc.ErrMethodDenied.Code, jsonrpc.ErrMethodDenied.Code}) ||
		msgs[0] != "method not allowed by this balancer: batch element 1: miner_start" {
		t.Errorf("batch: %d %s", status, body)
	}
	for _, m := range n.Methods() {
		if h.app.env.Config.Denied(h.app.env.Settings, "eth", m) || m == "miner_start" {
			t.Errorf("%s reached the node", m)
		}
	}
	if got := n.Methods(); len(got) != 5 {
		t.Errorf("node saw %v, want the 5 allowed reads only", got)
	}
}

func TestDenyListConfigured(t *testing.T) {
	n := evmtest.NewNode(t, "a", 1, 100)
	cfg := `{"chains": {"open": {"deny_methods": []}, "strict": {"deny_methods": ["eth_call", "eth_get*"]},
			"devnet": {"deny_methods": ["admin_*", "personal_*", "eth_sign*", "eth_sendTransaction"]}},
		"upstreams": [{"chain": "open", "name": "a", "upstream": "` + n.URL + `"},
			{"chain": "strict", "name": "a", "upstream": "` + n.URL + `"},
			{"chain": "devnet", "name": "a", "upstream": "` + n.URL + `"},
			{"chain": "plain", "name": "a", "upstream": "` + n.URL + `"}]}`
	for _, tc := range []struct {
		name, env string
		chain     string
		method    string
		status    int
	}{
		{"default list", "", "plain", "admin_peers", http.StatusForbidden},
		{"empty chain list", "", "open", "admin_peers", http.StatusOK},
		{"chain list replaces the default", "", "strict", "admin_peers", http.StatusOK},
		{"chain list exact", "", "strict", "eth_call", http.StatusForbidden},
		{"chain list prefix", "", "strict", "eth_getLogs", http.StatusForbidden},
		{"chain list allows the rest", "", "strict", "eth_blockNumber", http.StatusOK},
		{"environment replaces the default", "eth_call, debug_*", "plain", "admin_peers", http.StatusOK},
		{"environment list", "eth_call, debug_*", "plain", "debug_traceCall", http.StatusForbidden},
		{"chain list beats the environment", "eth_call, debug_*", "open", "eth_call", http.StatusOK},
		{"environment none", "none", "plain", "admin_peers", http.StatusOK},
		{"dev-node methods denied by default", "", "plain", "evm_mine", http.StatusForbidden},
		{"a devnet allows them with its own list", "", "devnet", "evm_mine", http.StatusOK},
		{"a devnet allows anvil_", "", "devnet", "anvil_setBalance", http.StatusOK},
		{"a devnet's list still denies", "", "devnet", "personal_sign", http.StatusForbidden},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := map[string]string{"UPSTREAM_CONFIG": cfg, "ADMIN_PASSWORD": password, "EVMLB_ATTEMPT_TIMEOUT": "300ms"}
			if tc.env != "" {
				env["EVMLB_DENY_METHODS"] = tc.env
			}
			h := startHarness(t, env)
			status, body := h.post(tc.chain, `{"jsonrpc":"2.0","id":1,"method":"`+tc.method+`","params":[]}`)
			if status != tc.status {
				t.Errorf("%d %s, want %d", status, body, tc.status)
			}
			if status == http.StatusForbidden && errorCode(t, body) != jsonrpc.ErrMethodDenied.Code {
				t.Errorf("code in %s", body)
			}
		})
	}
	// A malformed EVMLB_DENY_METHODS is a configuration error naming the variable.
	h := startHarness(t, map[string]string{"UPSTREAM_CONFIG": cfg, "EVMLB_DENY_METHODS": "admin_*,,"})
	if status, body := h.post("plain", rpcBody); status != http.StatusServiceUnavailable || !strings.Contains(body, "EVMLB_DENY_METHODS must be") {
		t.Errorf("bad EVMLB_DENY_METHODS: %d %s", status, body)
	}
}

// A body in which the balancer and a node could read different calls is refused whole, before any upstream sees
// it: a node that matches keys exactly would run the method under "METHOD", one that matches them
// case-insensitively (as Go's encoding/json, and so the fake node, does) the last of the duplicates.
func TestAmbiguousKeysRefused(t *testing.T) {
	n := evmtest.NewNode(t, "a", 1, 100)
	h := newHarness(t, nil, upstream{"eth", "a", n.URL})
	for _, tc := range []struct{ name, call, detail string }{
		{"case variant hides a denied method", `{"jsonrpc":"2.0","id":1,"method":"eth_sign","params":[],"METHOD":"eth_chainId"}`,
			`key "METHOD" differs from the JSON-RPC member "method" only by case`},
		{"capitalised key carries a denied method", `{"jsonrpc":"2.0","id":1,"method":"eth_chainId","Method":"eth_sign","params":[]}`,
			`key "Method" differs from the JSON-RPC member "method" only by case`},
		{"mixed case", `{"jsonrpc":"2.0","id":1,"method":"eth_chainId","mETHOD":"personal_unlockAccount","params":["0x1","pw",0]}`,
			`key "mETHOD" differs from the JSON-RPC member "method" only by case`},
		{"exact duplicate", `{"jsonrpc":"2.0","id":1,"method":"eth_sendTransaction","method":"eth_chainId","params":[]}`,
			`duplicate key "method"`},
		{"escaped duplicate", `{"jsonrpc":"2.0","id":1,"method":"eth_chainId","\u006dethod":"eth_sign","params":[]}`,
			`duplicate key "method"`},
		{"Unicode folding", `{"jsonrpc":"2.0","id":1,"method":"eth_call","params":[{"to":"0x0"},"latest"],"paramſ":[]}`,
			`key "paramſ" differs from the JSON-RPC member "params" only by case`},
		{"duplicate in params", `{"jsonrpc":"2.0","id":1,"method":"eth_getLogs","params":[{"fromBlock":"0x1","FromBlock":"0x99"}]}`,
			`keys "fromBlock" and "FromBlock" differ only by case`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body := h.post("eth", tc.call)
			if status != http.StatusBadRequest || errorCode(t, body) != jsonrpc.ErrInvalidRequest.Code || !strings.Contains(body, `"id":1`) ||
				!strings.Contains(body, "invalid request: "+strings.ReplaceAll(tc.detail, `"`, `\"`)) {
				t.Errorf("single: %d %s", status, body)
			}
			status, body = h.post("eth", `[{"jsonrpc":"2.0","id":0,"method":"eth_call","params":[]},`+tc.call+`]`)
			if status != http.StatusBadRequest || errorCode(t, body) != jsonrpc.ErrInvalidRequest.Code ||
				!strings.Contains(body, "invalid request: batch element 1: "+strings.ReplaceAll(tc.detail, `"`, `\"`)) {
				t.Errorf("batch: %d %s", status, body)
			}
		})
	}
	if c := n.Calls(); c != 0 {
		t.Errorf("refused bodies reached the node %d times (methods %v)", c, n.Methods())
	}
	// An escaped method name is the method a node runs: it is denied as such.
	if status, body := h.post("eth", `{"jsonrpc":"2.0","id":1,"method":"eth_\u0073ign","params":[]}`); status != http.StatusForbidden ||
		!strings.Contains(body, "method not allowed by this balancer: eth_sign") {
		t.Errorf("escaped method: %d %s", status, body)
	}
	if status, body := h.post("eth", rpcBody); status != http.StatusOK || servedBy(t, body) != "a" {
		t.Errorf("a plain request after them: %d %s", status, body)
	}
}
