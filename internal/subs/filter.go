package subs

import (
	"encoding/json"
	"errors"
	"math"
	"slices"
	"strings"

	"github.com/evmlb/evmlb/internal/jsonrpc"
)

// Filter is a logs subscription's criteria as go-ethereum's eth/filters keeps them after parsing (FilterCriteria):
// addresses any-of; topics by position, each position any-of, an empty position a wildcard; From and To the block
// range, nil when "latest" or "earliest" (geth then checks no bound). Addresses and topics are 0x-hex in lower
// case. It marshals compactly (one-letter keys) since it lives in the WebSocket's attachment.
type Filter struct {
	Addresses []string   `json:"a,omitempty"`
	Topics    [][]string `json:"t,omitempty"`
	From      *uint64    `json:"f,omitempty"`
	To        *uint64    `json:"u,omitempty"`
}

// geth's limits (eth/filters/api.go): topic positions (LOG0..LOG4) and alternatives in one position; its
// LogQueryLimit (1,000 addresses or alternatives) is far above what a 16 KB attachment holds.
const (
	maxTopics    = 4
	maxSubTopics = 1000
)

// Block tags as go-ethereum's rpc.BlockNumber reads them.
const (
	tagLatest    = -2
	tagPending   = -1
	tagFinalized = -3
	tagSafe      = -4
	tagEarliest  = -5
)

// blockArg reads a fromBlock/toBlock value as rpc.BlockNumber.UnmarshalJSON does.
func blockArg(v json.RawMessage) (int64, error) {
	s := strings.TrimSpace(string(v))
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		s = s[1 : len(s)-1]
	}
	switch s {
	case "earliest":
		return tagEarliest, nil
	case "latest":
		return tagLatest, nil
	case "pending":
		return tagPending, nil
	case "finalized":
		return tagFinalized, nil
	case "safe":
		return tagSafe, nil
	}
	n, ok := hexUint(s)
	if !ok {
		return 0, errors.New("invalid block number " + strings.TrimSpace(string(v)))
	}
	if n > math.MaxInt64 {
		return 0, errors.New("block number larger than int64")
	}
	return int64(n), nil
}

// errInvalidTopic and the others are geth's texts (eth/filters/api.go).
var (
	errInvalidTopic           = errors.New("invalid topic(s)")
	errExceedMaxTopics        = errors.New("exceed max topics")
	errInvalidBlockRange      = errors.New("invalid block range params")
	errPendingLogsUnsupported = errors.New("pending logs are not supported")
)

// parseFilter reads the second argument of eth_subscribe("logs", …) as geth's FilterCriteria.UnmarshalJSON and
// EventSystem.SubscribeLogs do, with their errors: null is the empty filter (every log).
func parseFilter(raw json.RawMessage) (*Filter, error) {
	f := &Filter{}
	if string(raw) == "null" {
		return f, nil
	}
	v, ok := jsonrpc.Fields(raw, "blockHash", "fromBlock", "toBlock", "address", "topics")
	if !ok {
		return nil, errors.New("json: cannot unmarshal " + kind(raw) + " into Go value of type filters.input")
	}
	hash, from, to, addr, topics := v[0], v[1], v[2], v[3], v[4]
	fromN, toN := int64(tagLatest), int64(tagLatest)
	var err error
	if from != nil && string(from) != "null" {
		if fromN, err = blockArg(from); err != nil {
			return nil, err
		}
	}
	if to != nil && string(to) != "null" {
		if toN, err = blockArg(to); err != nil {
			return nil, err
		}
	}
	if hash != nil && string(hash) != "null" {
		s, ok := str(hash)
		if !ok {
			return nil, errors.New("json: cannot unmarshal " + kind(hash) + " into Go struct field input.blockHash of type common.Hash")
		}
		if _, err := hexData(s, 32, "hash"); err != nil {
			return nil, err
		}
		if from != nil && string(from) != "null" || to != nil && string(to) != "null" {
			return nil, errors.New("cannot specify both BlockHash and FromBlock/ToBlock, choose one or the other")
		}
		// geth keeps blockHash but a subscription ignores it (SubscribeLogs and filterLogs read only the range).
	}
	if addr != nil && string(addr) != "null" {
		switch addr[0] {
		case '[':
			elems, _ := jsonrpc.Array(addr)
			for i, e := range elems {
				s, ok := str(e)
				if !ok {
					return nil, errors.New("non-string address at index " + itoa(i))
				}
				a, err := hexData(s, 20, "address")
				if err != nil {
					return nil, errors.New("invalid address at index " + itoa(i) + ": " + err.Error())
				}
				f.Addresses = append(f.Addresses, a)
			}
		case '"':
			s, _ := str(addr)
			a, err := hexData(s, 20, "address")
			if err != nil {
				return nil, errors.New("invalid address: " + err.Error())
			}
			f.Addresses = []string{a}
		default:
			return nil, errors.New("invalid addresses in query")
		}
	}
	if topics != nil && string(topics) != "null" {
		if topics[0] != '[' {
			return nil, errors.New("json: cannot unmarshal " + kind(topics) + " into Go struct field input.topics of type []interface {}")
		}
		positions, _ := jsonrpc.Array(topics)
		if len(positions) > maxTopics {
			return nil, errExceedMaxTopics
		}
		if len(positions) > 0 {
			f.Topics = make([][]string, len(positions))
		}
		for i, p := range positions {
			switch p[0] {
			case 'n': // null: any topic in this position
			case '"':
				s, _ := str(p)
				t, err := hexData(s, 32, "topic")
				if err != nil {
					return nil, err
				}
				f.Topics[i] = []string{t}
			case '[':
				alts, _ := jsonrpc.Array(p)
				if len(alts) > maxSubTopics {
					return nil, errExceedMaxTopics
				}
			alternatives:
				for _, a := range alts {
					switch a[0] {
					case 'n': // a null alternative makes the whole position a wildcard; geth reads no further
						f.Topics[i] = nil
						break alternatives
					case '"':
						s, _ := str(a)
						t, err := hexData(s, 32, "topic")
						if err != nil {
							return nil, err
						}
						f.Topics[i] = append(f.Topics[i], t)
					default:
						return nil, errInvalidTopic
					}
				}
			default:
				return nil, errInvalidTopic
			}
		}
	}
	// EventSystem.SubscribeLogs: the range a subscription may have.
	if fromN == tagPending || toN == tagPending {
		return nil, errPendingLogsUnsupported
	}
	if fromN == tagEarliest {
		fromN = 0 // geth: the history pruning cutoff, 0 on an unpruned node
	}
	switch {
	case fromN == tagLatest && toN == tagLatest:
	case fromN >= 0 && toN >= 0 && toN >= fromN:
	case fromN >= 0 && toN == tagLatest:
	default:
		return nil, errInvalidBlockRange
	}
	if fromN >= 0 {
		n := uint64(fromN)
		f.From = &n
	}
	if toN >= 0 {
		n := uint64(toN)
		f.To = &n
	}
	return f, nil
}

// kind names a JSON value's type as encoding/json's errors do.
func kind(v json.RawMessage) string {
	switch {
	case len(v) == 0:
		return "nothing"
	case v[0] == '"':
		return "string"
	case v[0] == '[':
		return "array"
	case v[0] == '{':
		return "object"
	case v[0] == 't' || v[0] == 'f':
		return "bool"
	case v[0] == 'n':
		return "null"
	}
	return "number"
}

// Log is what a filter reads of one log object as a node answers it.
type Log struct {
	Address string   // lower case
	Topics  []string // lower case
	Number  uint64   // blockNumber
	Hash    string   // blockHash, lower case
	Index   uint64   // logIndex
}

// ParseLog reads the members of a log object that filters and the follower use. A log a node would not answer
// (no address, topics that are not strings, blockNumber not a quantity) is an error.
func ParseLog(raw json.RawMessage) (Log, error) {
	v, ok := jsonrpc.Fields(raw, "address", "topics", "blockNumber", "blockHash", "logIndex")
	if !ok {
		return Log{}, errors.New("log is not a JSON object")
	}
	var l Log
	a, ok := str(v[0])
	if !ok {
		return Log{}, errors.New("log without an address")
	}
	l.Address = strings.ToLower(a)
	if v[1] != nil {
		ts, ok := jsonrpc.Array(v[1])
		if !ok {
			return Log{}, errors.New("log topics are not an array")
		}
		for _, t := range ts {
			s, ok := str(t)
			if !ok {
				return Log{}, errors.New("log topic is not a string")
			}
			l.Topics = append(l.Topics, strings.ToLower(s))
		}
	}
	if l.Number, ok = quantity(v[2]); !ok {
		return Log{}, errors.New("log without a blockNumber")
	}
	h, ok := str(v[3])
	if !ok {
		return Log{}, errors.New("log without a blockHash")
	}
	l.Hash = strings.ToLower(h)
	if l.Index, ok = quantity(v[4]); !ok {
		return Log{}, errors.New("log without a logIndex")
	}
	return l, nil
}

// Match reports whether the log passes the filter, exactly as geth's filterLogs: the block range when set, the
// address any-of when there are addresses, then no more topic positions than the log has topics, and each
// non-empty position holding the log's topic in that position.
func (f *Filter) Match(l *Log) bool {
	if f.From != nil && *f.From > l.Number || f.To != nil && *f.To < l.Number {
		return false
	}
	if len(f.Addresses) > 0 && !slices.Contains(f.Addresses, l.Address) {
		return false
	}
	if len(f.Topics) > len(l.Topics) {
		return false
	}
	for i, alts := range f.Topics {
		if len(alts) > 0 && !slices.Contains(alts, l.Topics[i]) {
			return false
		}
	}
	return true
}
