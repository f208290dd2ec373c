package subs

import (
	"encoding/json"
	"fmt"
	"math/big"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
)

const (
	addrA  = "0x00000000000000000000000000000000000000aa"
	addrB  = "0x00000000000000000000000000000000000000bb"
	topic1 = "0x1111111111111111111111111111111111111111111111111111111111111111"
	topic2 = "0x2222222222222222222222222222222222222222222222222222222222222222"
	topic3 = "0x3333333333333333333333333333333333333333333333333333333333333333"
)

// What geth answers for each logs filter: its FilterCriteria.UnmarshalJSON's error (eth/filters/api.go, with
// hexutil's texts), or none. The wrapping "invalid argument 1: " and the code -32602 are rpc's (TestSubscribeErrors).
func TestParseFilterAsGeth(t *testing.T) {
	for _, c := range []struct{ raw, err string }{
		{`{}`, ""}, {`null`, ""}, {`{"address":[]}`, ""}, {`{"address":null}`, ""}, {`{"topics":null}`, ""}, {`{"topics":[]}`, ""},
		{`{"address":"` + addrA + `"}`, ""},
		{`{"address":["` + addrA + `","` + strings.ToUpper(addrB[2:]) + `"]}`, "invalid address at index 1: hex string without 0x prefix"},
		{`{"address":["0X` + strings.ToUpper(addrB[2:]) + `"]}`, ""},
		{`{"address":"aa"}`, "invalid address: hex string without 0x prefix"},
		{`{"address":"0xaa"}`, "invalid address: hex has invalid length 1 after decoding; expected 20 for address"},
		{`{"address":"0xa"}`, "invalid address: hex string of odd length"},
		{`{"address":"0xzz"}`, "invalid address: invalid hex string"},
		{`{"address":""}`, "invalid address: empty hex string"},
		{`{"address":"0x"}`, "invalid address: hex has invalid length 0 after decoding; expected 20 for address"},
		{`{"address":["` + addrA + `", 5]}`, "non-string address at index 1"},
		{`{"address":["` + addrA + `", "0x12"]}`, "invalid address at index 1: hex has invalid length 1 after decoding; expected 20 for address"},
		{`{"address":5}`, "invalid addresses in query"},
		{`{"address":{}}`, "invalid addresses in query"},
		{`{"topics":[null]}`, ""}, {`{"topics":["` + topic1 + `"]}`, ""}, {`{"topics":[null,"` + topic2 + `"]}`, ""},
		{`{"topics":[["` + topic1 + `","` + topic2 + `"],null,"` + topic3 + `"]}`, ""},
		{`{"topics":[["` + topic1 + `",null,"0xbad"]]}`, ""}, // a null alternative: wildcard, geth reads no further
		{`{"topics":[[]]}`, ""},
		{`{"topics":[["0x12"]]}`, "hex has invalid length 1 after decoding; expected 32 for topic"},
		{`{"topics":["0x12"]}`, "hex has invalid length 1 after decoding; expected 32 for topic"},
		{`{"topics":["12"]}`, "hex string without 0x prefix"},
		{`{"topics":[5]}`, "invalid topic(s)"}, {`{"topics":[[5]]}`, "invalid topic(s)"},
		{`{"topics":[[["` + topic1 + `"]]]}`, "invalid topic(s)"},
		{`{"topics":[null,null,null,null]}`, ""},
		{`{"topics":[null,null,null,null,null]}`, "exceed max topics"},
		{`{"topics":["` + topic1 + `",null,null,null,"` + topic1 + `"]}`, "exceed max topics"},
		{`{"topics":"` + topic1 + `"}`, "json: cannot unmarshal string into Go struct field input.topics of type []interface {}"},
		{`"x"`, "json: cannot unmarshal string into Go value of type filters.input"},
		{`{"blockHash":"` + topic1 + `"}`, ""},
		{`{"blockHash":"` + topic1 + `","fromBlock":"0x1"}`, "cannot specify both BlockHash and FromBlock/ToBlock, choose one or the other"},
		{`{"fromBlock":"0x1","toBlock":"latest","address":"` + addrA + `"}`, ""},
		{`{"address":"` + addrA + `","address":"` + addrB + `"}`, "json: cannot unmarshal object into Go value of type filters.input"}, // geth takes the last; the balancer refuses duplicate keys everywhere
	} {
		f, err := parseFilter(json.RawMessage(c.raw))
		if got := fmt.Sprint(err); c.err == "" && err != nil || c.err != "" && got != c.err {
			t.Errorf("%s: error %v, want %q", c.raw, err, c.err)
		}
		if err == nil && f == nil {
			t.Errorf("%s: no filter", c.raw)
		}
	}
	// What is kept: lower case, in order; a null alternative empties its position.
	f, err := parseFilter(json.RawMessage(`{"address":["0X` + strings.ToUpper(addrB[2:]) + `","` + addrA + `"],"topics":[["` + strings.ToUpper(topic1) + `",null],null,["` + topic2 + `","` + topic3 + `"]]}`))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := fmt.Sprint(f.Addresses, f.Topics), fmt.Sprint([]string{addrB, addrA}, [][]string{nil, nil, {topic2, topic3}}); got != want {
		t.Errorf("kept %s, want %s", got, want)
	}
}

// The block range a subscription may have: EventSystem.SubscribeLogs' rules.
func TestParseFilterRange(t *testing.T) {
	for raw, want := range map[string]string{
		`{"fromBlock":"latest","toBlock":"latest"}`: "",
		`{"fromBlock":"0x5","toBlock":"0x9"}`:       "",
		`{"fromBlock":"0x5"}`:                       "",
		`{"fromBlock":"earliest"}`:                  "",
		`{"fromBlock":"0x9","toBlock":"0x5"}`:       "invalid block range params",
		`{"toBlock":"0x5"}`:                         "invalid block range params",
		`{"fromBlock":"finalized"}`:                 "invalid block range params",
		`{"fromBlock":"safe","toBlock":"latest"}`:   "invalid block range params",
		`{"fromBlock":"pending"}`:                   "pending logs are not supported",
		`{"toBlock":"pending"}`:                     "pending logs are not supported",
		`{"fromBlock":"0x05"}`:                      "invalid block number \"0x05\"",
		`{"fromBlock":5}`:                           "invalid block number 5",
	} {
		_, err := parseFilter(json.RawMessage(raw))
		if got := fmt.Sprint(err); want == "" && err != nil || want != "" && got != want {
			t.Errorf("%s: %v, want %q", raw, err, want)
		}
	}
}

// gethMatch is go-ethereum's filterLogs on one log, through a filter system-free path: the same checks, on geth's
// own types (eth/filters' filterLogs is unexported; its rules are the five lines this repeats).
type gethCrit struct {
	FromBlock, ToBlock *big.Int
	Addresses          []common.Address
	Topics             [][]common.Hash
}

func gethMatch(c gethCrit, l *types.Log) bool {
	if c.FromBlock != nil && c.FromBlock.Int64() >= 0 && c.FromBlock.Uint64() > l.BlockNumber {
		return false
	}
	if c.ToBlock != nil && c.ToBlock.Int64() >= 0 && c.ToBlock.Uint64() < l.BlockNumber {
		return false
	}
	if len(c.Addresses) > 0 {
		found := false
		for _, a := range c.Addresses {
			found = found || a == l.Address
		}
		if !found {
			return false
		}
	}
	if len(c.Topics) > len(l.Topics) {
		return false
	}
	for i, sub := range c.Topics {
		if len(sub) == 0 {
			continue
		}
		found := false
		for _, h := range sub {
			found = found || h == l.Topics[i]
		}
		if !found {
			return false
		}
	}
	return true
}

// Filter.Match against geth's rules, on every log of a small set for every filter of a small set, and the rules
// spelled out: address any-of, positional topics, null wildcard, OR lists, more positions than topics.
func TestMatchAsGeth(t *testing.T) {
	a, b := common.HexToAddress(addrA), common.HexToAddress(addrB)
	t1, t2, t3 := common.HexToHash(topic1), common.HexToHash(topic2), common.HexToHash(topic3)
	crits := []struct {
		raw  string
		geth gethCrit
	}{
		{`{}`, gethCrit{}},
		{`{"address":"` + addrA + `"}`, gethCrit{Addresses: []common.Address{a}}},
		{`{"address":["` + addrA + `","` + addrB + `"]}`, gethCrit{Addresses: []common.Address{a, b}}},
		{`{"topics":["` + topic1 + `"]}`, gethCrit{Topics: [][]common.Hash{{t1}}}},
		{`{"topics":[null,"` + topic2 + `"]}`, gethCrit{Topics: [][]common.Hash{nil, {t2}}}},
		{`{"topics":[null]}`, gethCrit{Topics: [][]common.Hash{nil}}},
		{`{"topics":[null,null,null]}`, gethCrit{Topics: [][]common.Hash{nil, nil, nil}}},
		{`{"topics":[["` + topic1 + `","` + topic2 + `"]]}`, gethCrit{Topics: [][]common.Hash{{t1, t2}}}},
		{`{"topics":[["` + topic1 + `",null]]}`, gethCrit{Topics: [][]common.Hash{nil}}},
		{`{"address":"` + addrB + `","topics":["` + topic1 + `",["` + topic2 + `","` + topic3 + `"]]}`, gethCrit{Addresses: []common.Address{b}, Topics: [][]common.Hash{{t1}, {t2, t3}}}},
		{`{"fromBlock":"0x5","toBlock":"0x6"}`, gethCrit{FromBlock: big.NewInt(5), ToBlock: big.NewInt(6)}},
		{`{"fromBlock":"0x6"}`, gethCrit{FromBlock: big.NewInt(6), ToBlock: big.NewInt(-2)}},
	}
	var logs []json.RawMessage
	for _, a := range []string{addrA, addrB, strings.ToUpper("0x00000000000000000000000000000000000000BB")} {
		for _, ts := range [][]string{nil, {topic1}, {topic2}, {topic1, topic2}, {topic1, topic3, topic1}, {topic2, topic2}} {
			for _, n := range []uint64{4, 5, 6} {
				tj, _ := json.Marshal(append([]string{}, ts...))
				logs = append(logs, json.RawMessage(fmt.Sprintf(`{"address":"%s","topics":%s,"data":"0x","blockNumber":"%s","transactionHash":"%s","transactionIndex":"0x0","blockHash":"%s","logIndex":"0x0","removed":false}`,
					a, tj, hexQuantity(n), topic3, topic1)))
			}
		}
	}
	matched := 0
	for _, cr := range crits {
		raw, c := cr.raw, cr.geth
		f, err := parseFilter(json.RawMessage(raw))
		if err != nil {
			t.Fatal(err)
		}
		for _, lr := range logs {
			var gl types.Log
			if err := json.Unmarshal(lr, &gl); err != nil {
				t.Fatal(err)
			}
			l, err := ParseLog(lr)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := f.Match(&l), gethMatch(c, &gl); got != want {
				t.Errorf("filter %s, log %s: match %v, geth %v", raw, lr, got, want)
			} else if got {
				matched++
			}
		}
	}
	if matched == 0 || matched == len(crits)*len(logs) {
		t.Fatalf("%d matches: the table tests nothing", matched)
	}
	// The rules, each once by hand.
	one := func(filter, log string) bool {
		f, err := parseFilter(json.RawMessage(filter))
		if err != nil {
			t.Fatal(err)
		}
		l, err := ParseLog(json.RawMessage(log))
		if err != nil {
			t.Fatal(err)
		}
		return f.Match(&l)
	}
	lg := func(addr string, topics ...string) string {
		tj, _ := json.Marshal(append([]string{}, topics...))
		return `{"address":"` + addr + `","topics":` + string(tj) + `,"blockNumber":"0x1","blockHash":"` + topic3 + `","logIndex":"0x0"}`
	}
	for _, c := range []struct {
		filter, log string
		want        bool
	}{
		{`{"address":["` + addrA + `","` + addrB + `"]}`, lg(addrB), true},
		{`{"address":"` + addrA + `"}`, lg(addrB), false},
		{`{"topics":[null,"` + topic2 + `"]}`, lg(addrA, topic1, topic2), true},
		{`{"topics":[null,"` + topic2 + `"]}`, lg(addrA, topic2, topic1), false},
		{`{"topics":[null,null]}`, lg(addrA, topic1), false}, // more positions than the log has topics
		{`{"topics":[["` + topic1 + `","` + topic2 + `"]]}`, lg(addrA, topic2), true},
		{`{"topics":[["` + topic3 + `",null]]}`, lg(addrA, topic2), true},
	} {
		if got := one(c.filter, c.log); got != c.want {
			t.Errorf("filter %s, log %s: %v, want %v", c.filter, c.log, got, c.want)
		}
	}
}
