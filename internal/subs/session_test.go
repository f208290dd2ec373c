package subs

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// counter is a deterministic source of subscription ids: 16 bytes, the first 15 zero (so geth's trimming of
// leading zeros shows) and the last counting.
type counter struct{ n byte }

func (c *counter) Read(b []byte) (int, error) {
	for i := range b {
		b[i] = 0
	}
	c.n++
	b[len(b)-1] = c.n
	return len(b), nil
}

func handle(t *testing.T, s *Socket, msg string, lim Limits, r *counter) Result {
	t.Helper()
	return s.Handle([]byte(msg), lim, r)
}

func TestSubscribeAndUnsubscribe(t *testing.T) {
	var s Socket
	r := &counter{}
	for _, c := range []struct{ msg, reply string }{
		{`{"jsonrpc":"2.0","id":1,"method":"eth_subscribe","params":["newHeads"]}`, `{"jsonrpc":"2.0","id":1,"result":"0x1"}`},
		{`{"jsonrpc":"2.0","id":"a","method":"eth_subscribe","params":["logs",{"address":"` + addrA + `","topics":[null,"` + topic2 + `"]}]}`, `{"jsonrpc":"2.0","id":"a","result":"0x2"}`},
		{`{"jsonrpc":"2.0","id":2,"method":"eth_subscribe","params":["logs",{}]}`, `{"jsonrpc":"2.0","id":2,"result":"0x3"}`},
		{`{"jsonrpc":"2.0","id":3,"method":"eth_unsubscribe","params":["0x3"]}`, `{"jsonrpc":"2.0","id":3,"result":true}`},
		{`{"jsonrpc":"2.0","id":4,"method":"eth_unsubscribe","params":["0x3"]}`, `{"jsonrpc":"2.0","id":4,"error":{"code":-32000,"message":"subscription not found"}}`},
		{`{"jsonrpc":"2.0","method":"eth_subscribe","params":["newHeads"]}`, ``}, // a notification: no answer, no subscription
		{`[{"jsonrpc":"2.0","id":5,"method":"eth_subscribe","params":["newHeads"]},{"jsonrpc":"2.0","id":6,"method":"eth_unsubscribe","params":["0x4"]}]`,
			`[{"jsonrpc":"2.0","id":5,"result":"0x4"},{"jsonrpc":"2.0","id":6,"result":true}]`},
	} {
		res := handle(t, &s, c.msg, Limits{}, r)
		if string(res.Reply) != c.reply || res.Plain != nil {
			t.Errorf("%s:\n%s, want\n%s", c.msg, res.Reply, c.reply)
		}
	}
	b, _ := json.Marshal(&s)
	if want := `{"s":[{"i":"0x1"},{"i":"0x2","l":{"a":["` + addrA + `"],"t":[null,["` + topic2 + `"]]}}]}`; string(b) != want {
		t.Errorf("socket %s\nwant %s", b, want)
	}
	var back Socket
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if b2, _ := json.Marshal(&back); string(b2) != string(b) {
		t.Errorf("socket through JSON: %s", b2)
	}
}

// The ids: 16 random bytes as geth's rpc.encodeID writes them.
func TestSubscriptionIDs(t *testing.T) {
	if got := encodeID(bytes.Repeat([]byte{0xab}, 16)); got != "0x"+strings.Repeat("ab", 16) {
		t.Error(got)
	}
	if got := encodeID(make([]byte, 16)); got != "0x0" {
		t.Error(got)
	}
	if got := encodeID([]byte{0, 0x0f, 0xff}); got != "0xfff" {
		t.Error(got)
	}
	// An id already in use is drawn again.
	s := Socket{Subs: []Sub{{ID: "0x1"}}}
	res := handle(t, &s, `{"jsonrpc":"2.0","id":1,"method":"eth_subscribe","params":["newHeads"]}`, Limits{}, &counter{})
	if string(res.Reply) != `{"jsonrpc":"2.0","id":1,"result":"0x2"}` {
		t.Errorf("%s", res.Reply)
	}
}

// Bad params get geth's answers: -32602 with its texts, -32601 for a kind it does not serve here.
func TestSubscribeErrors(t *testing.T) {
	for _, c := range []struct{ params, code, msg string }{
		{``, "-32602", "non-array args"},
		{`,"params":null`, "-32600", "invalid request: params must be an array or an object"}, // jsonrpc's rule, before geth's
		{`,"params":{}`, "-32602", "non-array args"},
		{`,"params":[]`, "-32602", "expected subscription name as first argument"},
		{`,"params":[5]`, "-32602", "expected subscription name as first argument"},
		{`,"params":["newHeads",{}]`, "-32602", "too many arguments, want at most 1"},
		{`,"params":["logs"]`, "-32602", "missing value for required argument 1"},
		{`,"params":["logs",{},1]`, "-32602", "too many arguments, want at most 2"},
		{`,"params":["logs",{"address":"0x1"}]`, "-32602", "invalid argument 1: invalid address: hex string of odd length"},
		{`,"params":["logs",{"topics":[1]}]`, "-32602", "invalid argument 1: invalid topic(s)"},
		{`,"params":["logs",{"topics":[null,null,null,null,null]}]`, "-32602", "invalid argument 1: exceed max topics"},
		{`,"params":["logs",{"fromBlock":"pending"}]`, "-32602", "pending logs are not supported"},
		{`,"params":["logs",{"fromBlock":"0x2","toBlock":"0x1"}]`, "-32602", "invalid block range params"},
		{`,"params":["newPendingTransactions"]`, "-32601", `no \"newPendingTransactions\" subscription in eth namespace: this balancer serves newHeads and logs`},
		{`,"params":["syncing"]`, "-32601", `no \"syncing\" subscription in eth namespace: this balancer serves newHeads and logs`},
		{`,"params":["transactionReceipts"]`, "-32601", `no \"transactionReceipts\" subscription in eth namespace: this balancer serves newHeads and logs`},
		{`,"params":["NEWHEADS"]`, "-32601", `no \"NEWHEADS\" subscription in eth namespace: this balancer serves newHeads and logs`},
	} {
		var s Socket
		msg := `{"jsonrpc":"2.0","id":7,"method":"eth_subscribe"` + c.params + `}`
		res := handle(t, &s, msg, Limits{}, &counter{})
		want := `{"jsonrpc":"2.0","id":7,"error":{"code":` + c.code + `,"message":"` + c.msg + `"}}`
		if string(res.Reply) != want || res.Changed || len(s.Subs) != 0 {
			t.Errorf("%s:\n%s, want\n%s", msg, res.Reply, want)
		}
	}
	for _, c := range []struct{ params, code, msg string }{
		{``, "-32602", "missing value for required argument 0"},
		{`,"params":[]`, "-32602", "missing value for required argument 0"},
		{`,"params":{}`, "-32602", "non-array args"},
		{`,"params":[5]`, "-32602", "invalid argument 0: json: cannot unmarshal number into Go value of type rpc.ID"},
		{`,"params":["0x1","0x2"]`, "-32602", "too many arguments, want at most 1"},
		{`,"params":[null]`, "-32000", "subscription not found"},
		{`,"params":["0x9"]`, "-32000", "subscription not found"},
	} {
		s := Socket{Subs: []Sub{{ID: "0x1"}}}
		msg := `{"jsonrpc":"2.0","id":7,"method":"eth_unsubscribe"` + c.params + `}`
		res := handle(t, &s, msg, Limits{}, &counter{})
		want := `{"jsonrpc":"2.0","id":7,"error":{"code":` + c.code + `,"message":"` + c.msg + `"}}`
		if string(res.Reply) != want || len(s.Subs) != 1 {
			t.Errorf("%s:\n%s, want\n%s", msg, res.Reply, want)
		}
	}
}

// Malformed messages get jsonrpc's answers, as an HTTP body would.
func TestMalformedMessages(t *testing.T) {
	for msg, want := range map[string]string{
		`{`:  `{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"parse error: unexpected end of JSON"}}`,
		`[]`: `{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"invalid request: empty batch"}}`,
		`5`:  `{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"invalid request: not an object or array"}}`,
		`{"jsonrpc":"2.0","id":1,"method":"eth_subscribe","params":"newHeads"}`: `{"jsonrpc":"2.0","id":1,"error":{"code":-32600,"message":"invalid request: params must be an array or an object"}}`,
		`{"id":1,"method":"eth_subscribe","params":["newHeads"]}`:               `{"jsonrpc":"2.0","id":1,"error":{"code":-32600,"message":"invalid request: jsonrpc must be \"2.0\""}}`,
	} {
		var s Socket
		res := handle(t, &s, msg, Limits{}, &counter{})
		if string(res.Reply) != want || res.Plain != nil || len(s.Subs) != 0 {
			t.Errorf("%s:\n%s, want\n%s", msg, res.Reply, want)
		}
	}
	var s Socket
	batch := "[" + strings.Repeat(`{"jsonrpc":"2.0","id":1,"method":"eth_subscribe","params":["newHeads"]},`, 3) + `{"jsonrpc":"2.0","id":1,"method":"x"}]`
	if res := handle(t, &s, batch, Limits{MaxBatch: 3}, &counter{}); !strings.Contains(string(res.Reply), "batch of 4 calls, at most 3") || len(s.Subs) != 0 {
		t.Errorf("a batch over the limit: %s", res.Reply)
	}
}

// Other calls are handed back, alone or beside subscription calls in a batch, and the answers merge.
func TestPlainCalls(t *testing.T) {
	var s Socket
	res := handle(t, &s, `{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber"}`, Limits{}, &counter{})
	if res.Reply != nil || res.Plain == nil || res.Plain.Batch || len(res.Plain.Calls) != 1 || res.Plain.Calls[0].Method != "eth_blockNumber" {
		t.Fatalf("%+v", res)
	}
	res = handle(t, &s, `[{"jsonrpc":"2.0","id":1,"method":"eth_chainId"},{"jsonrpc":"2.0","id":2,"method":"eth_subscribe","params":["newHeads"]},{"jsonrpc":"2.0","id":3,"method":"eth_unsubscribe","params":["0x7"]}]`, Limits{}, &counter{})
	if res.Reply != nil || !res.Plain.Batch || len(res.Plain.Calls) != 1 || len(res.Own) != 2 || !res.Changed {
		t.Fatalf("%+v", res)
	}
	for _, c := range []struct{ plain, want string }{
		{`[{"jsonrpc":"2.0","id":1,"result":"0x1"}]`, `[{"jsonrpc":"2.0","id":2,"result":"0x1"},{"jsonrpc":"2.0","id":3,"error":{"code":-32000,"message":"subscription not found"}},{"jsonrpc":"2.0","id":1,"result":"0x1"}]`},
		{`{"jsonrpc":"2.0","id":null,"error":{"code":-32067,"message":"m"}}`, `[{"jsonrpc":"2.0","id":2,"result":"0x1"},{"jsonrpc":"2.0","id":3,"error":{"code":-32000,"message":"subscription not found"}},{"jsonrpc":"2.0","id":null,"error":{"code":-32067,"message":"m"}}]`},
		{`[]`, `[{"jsonrpc":"2.0","id":2,"result":"0x1"},{"jsonrpc":"2.0","id":3,"error":{"code":-32000,"message":"subscription not found"}}]`},
	} {
		if got := string(Merge([]byte(c.plain), res.Own)); got != c.want {
			t.Errorf("Merge(%s):\n%s, want\n%s", c.plain, got, c.want)
		}
		var v []any
		if err := json.Unmarshal(Merge([]byte(c.plain), res.Own), &v); err != nil {
			t.Errorf("Merge(%s) is not JSON: %v", c.plain, err)
		}
	}
	if got := string(Merge([]byte(`{"x":1}`), nil)); got != `{"x":1}` {
		t.Errorf("Merge without own: %s", got)
	}
}

// A socket holds at most MaxSubs subscriptions, and its JSON at most MaxBytes: a filter of many addresses that
// would not fit the 16 KB attachment is refused, and the socket stays as it was.
func TestSocketLimits(t *testing.T) {
	var s Socket
	r := &counter{}
	for i := range 33 {
		res := handle(t, &s, `{"jsonrpc":"2.0","id":1,"method":"eth_subscribe","params":["newHeads"]}`, Limits{}, r)
		if i < 32 && !res.Changed {
			t.Fatalf("subscription %d refused: %s", i, res.Reply)
		}
		if i == 32 && string(res.Reply) != `{"jsonrpc":"2.0","id":1,"error":{"code":-32075,"message":"too many subscriptions on this socket: at most 32"}}` {
			t.Fatalf("the 33rd: %s", res.Reply)
		}
	}
	addrs := func(n int) string {
		var a []string
		for i := range n {
			a = append(a, fmt.Sprintf(`"0x%040x"`, i))
		}
		return "[" + strings.Join(a, ",") + "]"
	}
	s = Socket{}
	res := handle(t, &s, `{"jsonrpc":"2.0","id":1,"method":"eth_subscribe","params":["logs",{"address":`+addrs(300)+`}]}`, Limits{}, r)
	if !res.Changed {
		t.Fatalf("300 addresses: %s", res.Reply)
	}
	t.Logf("one filter of 300 addresses: %d bytes", s.Size())
	res = handle(t, &s, `{"jsonrpc":"2.0","id":1,"method":"eth_subscribe","params":["logs",{"address":`+addrs(60)+`}]}`, Limits{}, r)
	want := `{"jsonrpc":"2.0","id":1,"error":{"code":-32076,"message":"subscription too large: the socket's subscriptions must fit its 16 KB attachment: it would make them 16257 bytes, at most 16000"}}`
	if string(res.Reply) != want || len(s.Subs) != 1 || res.Changed {
		t.Errorf("over the bound:\n%s, want\n%s", res.Reply, want)
	}
	if n := s.Size(); n > AttachmentBytes {
		t.Errorf("socket of %d bytes", n)
	}
	// The bound holds whatever the filters: a full socket of the largest filters that fit is within it.
	s = Socket{}
	for {
		res := handle(t, &s, `{"jsonrpc":"2.0","id":1,"method":"eth_subscribe","params":["logs",{"topics":[`+strings.Repeat(`["`+topic1+`","`+topic2+`"],`, 3)+`null]}]}`, Limits{}, r)
		if !res.Changed {
			break
		}
	}
	if n := s.Size(); n > AttachmentBytes || len(s.Subs) == 0 {
		t.Errorf("socket of %d subscriptions, %d bytes", len(s.Subs), n)
	}
}

// Notifications are geth's, byte for byte, and go to the subscriptions whose kind and filter the event fits.
func TestNotifications(t *testing.T) {
	s := Socket{Subs: []Sub{{ID: "0x1"}, {ID: "0x2", Logs: &Filter{Addresses: []string{addrB}}}, {ID: "0x3", Logs: &Filter{}}}}
	c := newChain(2)
	l0, _ := ParseLog(c.blocks[1].logs[0])
	l1, _ := ParseLog(c.blocks[1].logs[1])
	events := []Event{
		{Kind: KindLog, Number: 1, Result: setRemoved(c.blocks[1].logs[1]), Log: l1, Removed: true},
		{Kind: KindHead, Number: 1, Result: json.RawMessage(`{"number":"0x1"}`)},
		{Kind: KindLog, Number: 1, Result: c.blocks[1].logs[0], Log: l0},
	}
	got := s.Notifications(events)
	var lines []string
	for _, n := range got {
		lines = append(lines, string(n))
	}
	removed := strings.Replace(string(c.blocks[1].logs[1]), `"removed":false`, `"removed":true`, 1)
	want := []string{
		`{"jsonrpc":"2.0","method":"eth_subscription","params":{"subscription":"0x2","result":` + removed + `}}`,
		`{"jsonrpc":"2.0","method":"eth_subscription","params":{"subscription":"0x3","result":` + removed + `}}`,
		`{"jsonrpc":"2.0","method":"eth_subscription","params":{"subscription":"0x1","result":{"number":"0x1"}}}`,
		`{"jsonrpc":"2.0","method":"eth_subscription","params":{"subscription":"0x3","result":` + string(c.blocks[1].logs[0]) + `}}`,
	}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Errorf("notifications\n%s\nwant\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
	if got := string(setRemoved(json.RawMessage(`{"a":1}`))); got != `{"a":1,"removed":true}` {
		t.Errorf("setRemoved without a removed member: %s", got)
	}
	if fs := s.Filters(); len(fs) != 2 {
		t.Errorf("filters %v", fs)
	}
}

// A session end to end: a socket subscribes, the follower follows a reorg, and the socket's notifications decode
// as geth's client reads them.
func TestSessionWithFollower(t *testing.T) {
	var s Socket
	r := &counter{}
	handle(t, &s, `{"jsonrpc":"2.0","id":1,"method":"eth_subscribe","params":["newHeads"]}`, Limits{}, r)
	handle(t, &s, `{"jsonrpc":"2.0","id":2,"method":"eth_subscribe","params":["logs",{"address":"`+addrA+`"}]}`, Limits{}, r)
	c := newChain(10)
	f := &follower{t: t, filters: s.Filters()}
	f.follow(c, c.head())
	c.mine(2, "a")
	f.follow(c, c.head())
	c.reorg(1, 1, "b")
	f.follow(c, c.head())
	var summary []string
	for _, n := range s.Notifications(f.take()) {
		var msg struct {
			Method string
			Params struct {
				Subscription string
				Result       struct {
					Number, BlockNumber string
					Removed             bool
				}
			}
		}
		if err := json.Unmarshal(n, &msg); err != nil || msg.Method != "eth_subscription" {
			t.Fatalf("%s: %v", n, err)
		}
		p := msg.Params
		summary = append(summary, fmt.Sprintf("%s:%s%s%v", p.Subscription, p.Result.Number, p.Result.BlockNumber, p.Result.Removed))
	}
	if got, want := strings.Join(summary, " "), "0x1:0xbfalse 0x2:0xbfalse 0x1:0xcfalse 0x2:0xcfalse 0x2:0xctrue 0x1:0xcfalse 0x2:0xcfalse"; got != want {
		t.Errorf("%s\nwant %s", got, want)
	}
}
