package subs

import (
	"encoding/json"
	"fmt"
)

// The wiring's loop, with a fake node standing for the upstreams: a socket subscribes; at each alarm the follower
// plans, the caller fetches what the plan names (in production one JSON-RPC batch through the data plane),
// Apply turns it into events, the State is persisted, and each socket gets its notifications.
func Example() {
	var sock Socket
	ids := &counter{}
	r := sock.Handle([]byte(`{"jsonrpc":"2.0","id":1,"method":"eth_subscribe","params":["newHeads"]}`), Limits{}, ids)
	fmt.Println(string(r.Reply))

	node := newChain(100)
	var st State // in production: read from the object's storage at each alarm
	alarm := func() {
		for {
			p := NextPlan(&st, node.head(), Config{}, len(sock.Filters()) > 0)
			if !p.Fetch {
				return
			}
			var headers []json.RawMessage // eth_getBlockByNumber(n, false) for n in p.From..p.To
			for n := p.From; n <= p.To; n++ {
				headers = append(headers, node.header(n))
			}
			var logs json.RawMessage // eth_getLogs(p.LogsParams(filters)) when p.Logs
			if p.Logs {
				logs = node.logs(p.From, p.To)
			}
			events, _, err := Apply(&st, p, headers, logs, sock.Filters(), Config{})
			if err != nil {
				return // ErrInconsistent: ask another upstream at the next try
			}
			// persist st, then send:
			for _, n := range sock.Notifications(events) {
				var msg struct {
					Params struct{ Result struct{ Number string } }
				}
				_ = json.Unmarshal(n, &msg)
				fmt.Println("newHeads", msg.Params.Result.Number)
			}
		}
	}
	alarm() // the first head is adopted
	node.mine(2, "a")
	alarm()
	node.reorg(1, 1, "b")
	alarm()
	// Output:
	// {"jsonrpc":"2.0","id":1,"result":"0x1"}
	// newHeads 0x65
	// newHeads 0x66
	// newHeads 0x66
}
