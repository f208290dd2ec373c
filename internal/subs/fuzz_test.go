package subs

import (
	"encoding/json"
	"testing"
)

// FuzzHandle: any message leaves the socket within its limits and valid, and is answered with valid JSON or
// handed back as plain calls; subscription calls in a batch with plain ones are answered in Own.
func FuzzHandle(f *testing.F) {
	for _, s := range []string{
		`{"jsonrpc":"2.0","id":1,"method":"eth_subscribe","params":["newHeads"]}`,
		`{"jsonrpc":"2.0","id":1,"method":"eth_subscribe","params":["logs",{"address":["` + addrA + `"],"topics":[null,["` + topic1 + `",null]]}]}`,
		`{"jsonrpc":"2.0","id":1,"method":"eth_subscribe","params":["logs",{"fromBlock":"0x1","toBlock":"latest","blockHash":"` + topic1 + `"}]}`,
		`{"jsonrpc":"2.0","id":"x","method":"eth_unsubscribe","params":["0x1"]}`,
		`[{"jsonrpc":"2.0","id":1,"method":"eth_chainId"},{"jsonrpc":"2.0","id":2,"method":"eth_subscribe","params":["newHeads"]}]`,
		`[{"jsonrpc":"2.0","method":"eth_unsubscribe","params":["0x1"]}]`,
		`{"jsonrpc":"2.0","id":1,"method":"eth_subscribe","params":["syncing"]}`,
		`{`, `[]`, `null`, `"\ud800"`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		s := Socket{Subs: []Sub{{ID: "0x1"}, {ID: "0x2", Logs: &Filter{}}}}
		lim := Limits{MaxSubs: 4, MaxBytes: 600, MaxBatch: 8}
		res := s.Handle(msg, lim, &counter{})
		if res.Reply != nil && !json.Valid(res.Reply) {
			t.Fatalf("reply not JSON: %s", res.Reply)
		}
		if res.Reply != nil && res.Plain != nil {
			t.Fatal("a reply and plain calls")
		}
		for _, o := range res.Own {
			if !json.Valid(o) {
				t.Fatalf("own answer not JSON: %s", o)
			}
		}
		if res.Plain != nil && !json.Valid(Merge([]byte(`[]`), res.Own)) {
			t.Fatal("merged answer not JSON")
		}
		if len(s.Subs) > lim.MaxSubs || s.Size() > lim.MaxBytes {
			t.Fatalf("socket of %d subscriptions, %d bytes", len(s.Subs), s.Size())
		}
		b, _ := json.Marshal(&s)
		var back Socket
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatal(err)
		}
		if b2, _ := json.Marshal(&back); string(b2) != string(b) {
			t.Fatalf("socket through JSON: %s / %s", b, b2)
		}
		// Every filter kept matches or not without panicking, on a log of the filter's own block range.
		l := Log{Address: addrA, Topics: []string{topic1}, Number: 5}
		for _, sub := range s.Subs {
			if sub.Logs != nil {
				sub.Logs.Match(&l)
			}
		}
	})
}

// FuzzApply: any answers to a plan are taken or refused with ErrInconsistent, never a panic, and what is taken
// leaves a State that goes through JSON.
func FuzzApply(f *testing.F) {
	c := newChain(12)
	f.Add([]byte(c.header(11)), []byte(c.header(12)), []byte(c.logs(11, 12)))
	f.Add([]byte(`{}`), []byte(`null`), []byte(`[{}]`))
	f.Fuzz(func(t *testing.T, h1, h2, logs []byte) {
		var st State
		c := newChain(12)
		p := NextPlan(&st, c.at(10), Config{}, true)
		if _, _, err := Apply(&st, p, []json.RawMessage{c.header(10)}, c.logs(10, 10), allLogs(), Config{}); err != nil {
			t.Fatal(err)
		}
		p = NextPlan(&st, c.head(), Config{}, true)
		ev, _, err := Apply(&st, p, []json.RawMessage{h1, h2}, logs, allLogs(), Config{})
		if err != nil {
			return
		}
		for _, e := range ev {
			if !json.Valid(e.Result) {
				t.Fatalf("event not JSON: %s", e.Result)
			}
		}
		if _, err := json.Marshal(&st); err != nil {
			t.Fatal(err)
		}
	})
}
