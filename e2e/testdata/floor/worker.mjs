// The runtime's floor for a JSON-RPC proxy, for benchmarks only (never shipped): a plain-JS Worker that forwards
// the client's body to one provider with one fetch and answers with the provider's answer.
export default {
  async fetch(request, env) {
    const resp = await fetch(env.FLOOR_UPSTREAM, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: await request.arrayBuffer(),
    });
    return new Response(resp.body, { status: resp.status, headers: { "content-type": "application/json" } });
  },
};
