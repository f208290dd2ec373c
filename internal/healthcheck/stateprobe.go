package healthcheck

import (
	"strconv"

	"github.com/evmlb/evmlb/internal/retry"
)

// The state probe (issue 20): how far back an upstream's state reaches is learned from live reads of old state, and
// also from probes that its Upstream object sends beside a health check (durable/health.go: from the second
// successful check on, every capability_ttl), so that the first client reads of old state need not find out. Each
// probe is a request of its own, never part of the health batch: the batch's calls are what the checks' tests and
// the e2e scenarios count. The chain object takes its result into the table with balance.Table.Learn(name,
// StateProbeMethod, the block read, class, lack, at) once the chain's best height is known, which keeps it only
// when the block is old for the chain (more than balance.OldStateDepth below the best height).

// StateProbeMethod and StateProbeBlock are the probe's read: the balance of the zero address at block 1, a block
// whose state only an archive node keeps on any chain older than a full node's window.
const (
	StateProbeMethod = "eth_getBalance"
	StateProbeBlock  = 1
)

// StateProbeCall is the body of a probe of the state at block n (StateProbeBlock first).
func StateProbeCall(n uint64) []byte {
	return []byte(`{"jsonrpc":"2.0","id":1,"method":"` + StateProbeMethod +
		`","params":["0x0000000000000000000000000000000000000000","0x` + strconv.FormatUint(n, 16) + `"]}`)
}

// ReadStateProbe reads the probe's answer (validated JSON-RPC for the call, retry.Answer): proves says whether it
// proves anything; class and lack are then Learn's arguments: a quantity result proves the state is there
// (retry.OK, retry.NoLack); an error in LackTexts' words proves what it lacks. Anything else (another error, a
// result that is not a quantity) proves nothing.
func ReadStateProbe(answer []byte) (class retry.Class, lack retry.Lack, proves bool) {
	if m := retry.ErrorMember(answer); m != nil {
		lack = retry.LackOf(StateProbeMethod, m)
		if lack == retry.NoLack || lack == retry.LacksMethod {
			return retry.OK, retry.NoLack, false
		}
		return retry.MissingData, lack, true
	}
	if _, _, err := ReadQuantity(answer); err != nil {
		return retry.OK, retry.NoLack, false
	}
	return retry.OK, retry.NoLack, true
}
