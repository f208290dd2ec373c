package app

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"

	"github.com/evmlb/evmlb/internal/evmtest"
	"github.com/evmlb/evmlb/internal/proxy"
)

// dashTx is EIP-155's example of a signed legacy transaction.
const dashTx = "0xf86c098504a817c800825208943535353535353535353535353535353535353535880de0b6b3a76400008025a028ef61340bd939bc2195fe537567866003e1a15d3c71ff63e1590620aa636276a067cbe9d8997f761aecb703304b3800ccf555c9f3dc64214b297fb1966a3b6d83"

// Issue 20 on the dashboard's JSON: per chain the eth_getLogs split and their pieces, per upstream how it took
// broadcast transactions and what it proved it can and cannot serve (caps: archive, methods lacked).
func TestDashboardIssue20(t *testing.T) {
	raw, _ := hex.DecodeString(dashTx[2:])
	hash := proxy.TxHash(raw)
	answer := func(body []byte) []byte {
		var c struct {
			ID     json.RawMessage
			Method string
		}
		_ = json.Unmarshal(body, &c)
		switch c.Method {
		case "eth_sendRawTransaction":
			return fmt.Appendf(nil, `{"jsonrpc":"2.0","id":%s,"result":%q}`, c.ID, hash)
		case "eth_getLogs":
			return fmt.Appendf(nil, `{"jsonrpc":"2.0","id":%s,"result":[]}`, c.ID)
		}
		return fmt.Appendf(nil, `{"jsonrpc":"2.0","id":%s,"error":{"code":-32601,"message":"Method not found"}}`, c.ID)
	}
	a := evmtest.NewNode(t, "a", 1, 100)
	b := evmtest.NewNode(t, "b", 1, 100)
	a.SetRawAnswer(answer)
	b.SetRawAnswer(answer)
	cfg := fmt.Sprintf(`{"chains":{"eth":{"cache":false}},"upstreams":[
		{"chain":"eth","name":"a","upstream":%q,"max_logs_range":10},
		{"chain":"eth","name":"b","upstream":%q,"archive":true}]}`, a.URL, b.URL)
	h := started(t, map[string]string{"UPSTREAM_CONFIG": cfg}, upstream{"eth", "a", a.URL}, upstream{"eth", "b", b.URL})
	for _, body := range []string{
		`{"jsonrpc":"2.0","id":1,"method":"eth_sendRawTransaction","params":["` + dashTx + `"]}`,
		`{"jsonrpc":"2.0","id":2,"method":"eth_getLogs","params":[{"fromBlock":"0x1","toBlock":"0x14"}]}`,
		`{"jsonrpc":"2.0","id":3,"method":"eth_getUserOperationByHash","params":["` + hash + `"]}`,
	} {
		h.post("eth", body)
	}
	h.host.Wait() // the broadcast's other attempt runs on after the answer (background work)
	h.checks(0)   // the isolate's counts and what it learned reach the chain's object
	var d struct{ Chains []DashboardChain }
	h.admin(http.MethodGet, "/admin/dashboard.json", &d)
	if len(d.Chains) != 1 || len(d.Chains[0].Upstreams) != 2 {
		t.Fatalf("%+v", d)
	}
	c := d.Chains[0]
	if c.LogsSplits != 1 || c.LogsPieces != 2 {
		t.Errorf("eth_getLogs of 20 blocks, a taking 10: %d split in %d pieces, want 1 in 2", c.LogsSplits, c.LogsPieces)
	}
	lacked := 0
	for _, u := range c.Upstreams {
		if u.Broadcast["accepted"] != 1 || len(u.Broadcast) != 1 {
			t.Errorf("%s took the broadcast transaction: %v, want accepted 1", u.Name, u.Broadcast)
		}
		if _, ok := u.Caps.Methods["eth_getUserOperationByHash"]; ok {
			lacked++
		}
		if u.Caps.Archive != (u.Name == "b") {
			t.Errorf("%s: archive %v", u.Name, u.Caps.Archive)
		}
	}
	if lacked == 0 {
		t.Errorf("no upstream shows that it lacks eth_getUserOperationByHash: %+v", c.Upstreams)
	}
}
