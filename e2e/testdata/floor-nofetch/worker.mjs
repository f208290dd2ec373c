// The runtime's floor for an answer from the edge, for benchmarks only (never shipped): a plain-JS Worker that
// reads the client's JSON-RPC call and answers it by itself, with the call's id and a fixed block-sized result,
// without any fetch. A cache hit of the balancer in workerd is measured against it (issue 19).
const result = JSON.stringify({ number: "0x14", hash: "0x" + "ab".repeat(32), parentHash: "0x" + "cd".repeat(32), logsBloom: "0x" + "00".repeat(256), transactions: [] });
export default {
  async fetch(request) {
    let id = null;
    try {
      id = JSON.parse(await request.text()).id ?? null;
    } catch {
      // not a call (the harness's GET /): answered all the same
    }
    const body = '{"jsonrpc":"2.0","id":' + JSON.stringify(id) + ',"result":' + result + "}";
    return new Response(body, { status: 200, headers: { "content-type": "application/json" } });
  },
};
