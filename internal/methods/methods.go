// Package methods is the one list of JSON-RPC method names the balancer counts by name: the standard eth_, net_
// and web3_ methods, debug_trace* (and debug_getRaw*), trace_, txpool_, and the ERC-4337 bundler methods users
// send through an RPC URL. Per-method statistics (internal/stats, and an exporter later) label a call with its
// method when the method is on this list and with Other when it is not, so that a client sending made-up method
// names cannot grow the statistics or push the real methods out of them.
package methods

// Other labels every method that is not on the list.
const Other = "other"

// known is the list. A name is matched exactly: nodes look methods up case-sensitively, so an odd spelling is
// either an error or a node's leniency, and either way counts under Other.
var known = map[string]bool{}

func init() {
	for _, m := range list {
		known[m] = true
	}
}

var list = []string{
	// eth_
	"eth_accounts", "eth_blobBaseFee", "eth_blockNumber", "eth_call", "eth_callBundle", "eth_callMany",
	"eth_chainId", "eth_coinbase", "eth_config", "eth_createAccessList", "eth_estimateGas", "eth_feeHistory",
	"eth_gasPrice", "eth_getAccount", "eth_getBalance", "eth_getBlockByHash", "eth_getBlockByNumber",
	"eth_getBlockReceipts", "eth_getBlockTransactionCountByHash", "eth_getBlockTransactionCountByNumber",
	"eth_getCode", "eth_getFilterChanges", "eth_getFilterLogs", "eth_getHeaderByHash", "eth_getHeaderByNumber",
	"eth_getLogs", "eth_getProof", "eth_getRawTransactionByBlockHashAndIndex",
	"eth_getRawTransactionByBlockNumberAndIndex", "eth_getRawTransactionByHash", "eth_getStorageAt",
	"eth_getTransactionByBlockHashAndIndex", "eth_getTransactionByBlockNumberAndIndex", "eth_getTransactionByHash",
	"eth_getTransactionBySenderAndNonce", "eth_getTransactionCount", "eth_getTransactionReceipt",
	"eth_getUncleByBlockHashAndIndex", "eth_getUncleByBlockNumberAndIndex", "eth_getUncleCountByBlockHash",
	"eth_getUncleCountByBlockNumber", "eth_getWork", "eth_hashrate", "eth_maxPriorityFeePerGas", "eth_mining",
	"eth_newBlockFilter", "eth_newFilter", "eth_newPendingTransactionFilter", "eth_pendingTransactions",
	"eth_protocolVersion", "eth_sendBundle", "eth_sendPrivateTransaction", "eth_sendRawTransaction",
	"eth_sendRawTransactionConditional", "eth_sendRawTransactionSync", "eth_sendTransaction", "eth_sign",
	"eth_signTransaction", "eth_signTypedData", "eth_signTypedData_v3", "eth_signTypedData_v4", "eth_simulateV1",
	"eth_submitHashrate", "eth_submitWork", "eth_subscribe", "eth_syncing", "eth_uninstallFilter",
	"eth_unsubscribe",
	// ERC-4337 bundlers
	"eth_estimateUserOperationGas", "eth_getUserOperationByHash", "eth_getUserOperationReceipt",
	"eth_sendUserOperation", "eth_supportedEntryPoints",
	// net_, web3_
	"net_listening", "net_peerCount", "net_version", "web3_clientVersion", "web3_sha3",
	// debug_ reads
	"debug_getBadBlocks", "debug_getRawBlock", "debug_getRawHeader", "debug_getRawReceipts",
	"debug_getRawTransaction", "debug_traceBadBlock", "debug_traceBlock", "debug_traceBlockByHash",
	"debug_traceBlockByNumber", "debug_traceCall", "debug_traceCallMany", "debug_traceChain",
	"debug_traceTransaction",
	// trace_ (OpenEthereum, Erigon, Reth, Nethermind)
	"trace_block", "trace_call", "trace_callMany", "trace_filter", "trace_get", "trace_rawTransaction",
	"trace_replayBlockTransactions", "trace_replayTransaction", "trace_transaction",
	// txpool_
	"txpool_content", "txpool_contentFrom", "txpool_inspect", "txpool_status",
}

// Label is method when it is on the list, else Other.
func Label(method string) string {
	if known[method] {
		return method
	}
	return Other
}
