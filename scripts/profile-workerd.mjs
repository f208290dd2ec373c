// Takes a V8 CPU profile of the balancer in workerd under load, through the inspector wrangler dev opens, and
// prints where the time goes: self time by function, and by part (Go's wasm, wasm_exec.js, the shim, the rest).
//
//   node scripts/profile-workerd.mjs INSPECTOR_PORT URL [REQUESTS] [CONCURRENCY] [OUT.cpuprofile]
//
// `make profile-workerd` builds an unstripped app.wasm (so Go's function names show), starts wrangler dev in
// front of anvil and runs this. The raw profile opens in Chrome's DevTools.
import { writeFileSync } from "node:fs";
import WebSocket from "ws"; // wrangler's inspector proxy wants an Origin it knows, which the global WebSocket cannot set

const [port, url, n = "3000", c = "1", out = ""] = process.argv.slice(2);
const targets = await (await fetch(`http://127.0.0.1:${port}/json`)).json();
const target = targets.find((t) => t.webSocketDebuggerUrl) ?? targets[0];
const ws = new WebSocket(target.webSocketDebuggerUrl, { origin: "https://devtools.devprod.cloudflare.dev" });
await new Promise((resolve, reject) => (ws.on("open", resolve), ws.on("error", reject)));
let nextId = 0;
const pending = new Map();
ws.on("message", (data) => {
  const m = JSON.parse(data);
  if (m.id !== undefined && pending.has(m.id)) {
    pending.get(m.id)(m);
    pending.delete(m.id);
  }
});
const send = (method, params = {}) =>
  new Promise((resolve) => {
    const id = ++nextId;
    pending.set(id, resolve);
    ws.send(JSON.stringify({ id, method, params }));
  });

// PROFILE_CALLDATA_KIB set: an eth_call to the dev account with that much calldata instead (issue 18's 1 MiB call).
const kib = Number(process.env.PROFILE_CALLDATA_KIB || 0);
const body =
  kib > 0
    ? `{"jsonrpc":"2.0","id":1,"method":"eth_call","params":[{"to":"0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266","data":"0x${"ab".repeat(kib << 10)}"},"latest"]}`
    : '{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber","params":[]}';
const one = async () => {
  const r = await fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body });
  await r.text();
};
for (let i = 0; i < (kib > 0 ? 20 : 200); i++) await one(); // warm
await send("Profiler.enable");
await send("Profiler.setSamplingInterval", { interval: 50 });
await send("Profiler.start");
const t0 = performance.now();
let left = Number(n);
await Promise.all(
  Array.from({ length: Number(c) }, async () => {
    while (left-- > 0) await one();
  }),
);
const elapsed = performance.now() - t0;
const { result } = await send("Profiler.stop");
ws.close();
const profile = result.profile;
if (out) writeFileSync(out, JSON.stringify(profile));

// Self time per node: samples × mean interval.
const counts = new Map();
for (const s of profile.samples) counts.set(s, (counts.get(s) ?? 0) + 1);
const interval = (profile.endTime - profile.startTime) / profile.samples.length / 1000; // ms
const byFn = new Map();
const byPart = new Map();
const part = (f) => {
  if (f.url.startsWith("wasm://")) return "Go (wasm)";
  if (f.url.includes("wasm_exec")) return "wasm_exec.js (Go's JS glue)";
  if (f.url.includes("worker.mjs") || f.url.includes("shim")) return "shim";
  if (f.functionName === "(idle)" || f.functionName === "(program)") return f.functionName;
  if (f.functionName === "(garbage collector)") return "V8 GC";
  return "other JS / runtime";
};
for (const node of profile.nodes) {
  const ms = (counts.get(node.id) ?? 0) * interval;
  if (!ms) continue;
  const f = node.callFrame;
  const key = `${f.functionName || "(anonymous)"}  ${f.url.split("/").pop()}`;
  byFn.set(key, (byFn.get(key) ?? 0) + ms);
  byPart.set(part(f), (byPart.get(part(f)) ?? 0) + ms);
}
const reqs = Number(n);
console.log(`${reqs} requests at c=${c} in ${elapsed.toFixed(0)} ms (${((reqs / elapsed) * 1000).toFixed(0)} req/s)`);
console.log("\nself time by part (ms per request):");
for (const [k, v] of [...byPart].sort((a, b) => b[1] - a[1])) console.log(`  ${(v / reqs).toFixed(3).padStart(8)}  ${k}`);
console.log("\ntop functions by self time (ms per request):");
for (const [k, v] of [...byFn].sort((a, b) => b[1] - a[1]).slice(0, 40)) console.log(`  ${(v / reqs).toFixed(4).padStart(8)}  ${k}`);
