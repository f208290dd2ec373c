// Package chainid answers eth_chainId and net_version from the chain's verified chain id (the configured one, or
// the one most upstreams report: balance.Table.ChainID), so that an upstream that switched networks can never
// answer them, and no upstream request is spent on the two calls wallets make most.
package chainid

import (
	"bytes"
	"encoding/json"
	"strconv"

	"github.com/evmlb/evmlb/internal/jsonrpc"
)

// Answer returns the balancer's own answer to req when every call in it is eth_chainId or net_version without
// parameters, and the chain id is known (not 0); otherwise false, and the request goes to an upstream as usual.
// eth_chainId answers the id as a hex quantity, net_version as a decimal string, each with the call's id bytes
// unchanged. A batch is answered only when all of its calls are; a batch that mixes them with other calls goes
// to an upstream whole (splitting it would mean merging answers for a saving of one call). Notifications, and ids
// a node would refuse (fractions, integers beyond signed 64 bits), are left to the upstream too, so that the answer is
// the one the node would give.
func Answer(req *jsonrpc.Request, chainID uint64) ([]byte, bool) {
	if req == nil || chainID == 0 || len(req.Calls) == 0 {
		return nil, false
	}
	var out bytes.Buffer
	if req.Batch {
		out.WriteByte('[')
	}
	for i, c := range req.Calls {
		var result string
		switch c.Method {
		case "eth_chainId":
			result = `"0x` + strconv.FormatUint(chainID, 16) + `"`
		case "net_version":
			result = `"` + strconv.FormatUint(chainID, 10) + `"`
		default:
			return nil, false
		}
		if !noParams(c.Params) || !plainID(c.ID) {
			return nil, false
		}
		if i > 0 {
			out.WriteByte(',')
		}
		out.WriteString(`{"jsonrpc":"2.0","id":`)
		out.Write(c.ID)
		out.WriteString(`,"result":`)
		out.WriteString(result)
		out.WriteByte('}')
	}
	if req.Batch {
		out.WriteByte(']')
	}
	return out.Bytes(), true
}

// noParams reports whether params is absent or an empty array or object.
func noParams(params json.RawMessage) bool {
	p := bytes.TrimSpace(params)
	if len(p) == 0 {
		return true
	}
	var list []json.RawMessage
	if json.Unmarshal(p, &list) == nil {
		return len(list) == 0
	}
	var obj map[string]json.RawMessage
	return json.Unmarshal(p, &obj) == nil && len(obj) == 0
}

// plainID reports whether id is null, a string, or an integer that fits a signed 64-bit number: what nodes accept
// (anvil refuses 2^64-1). nil (a notification) is not.
func plainID(id json.RawMessage) bool {
	s := string(bytes.TrimSpace(id))
	switch {
	case s == "":
		return false
	case s == "null", s[0] == '"':
		return true
	}
	_, err := strconv.ParseInt(s, 10, 64)
	return err == nil
}
