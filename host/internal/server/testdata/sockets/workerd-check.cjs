// Drives the sockets test program served by workerd (scripts/ws-workerd-check.sh) through the steps of the wazero
// host's TestWebSockets, eviction aside: node workerd-check.cjs PORT (ws from node_modules, Node 20 has no
// WebSocket client of its own).
const WebSocket = require(process.env.WS_MODULE);
const base = `ws://127.0.0.1:${process.argv[2]}`;
const http = `http://127.0.0.1:${process.argv[2]}`;
function dial(chain, tag, att) {
  return new Promise((res, rej) => {
    const ws = new WebSocket(`${base}/ws/${chain}?tag=${tag}&att=${encodeURIComponent(att)}`);
    ws.msgs = []; ws.waiters = [];
    ws.on("message", (d, isBinary) => { const s = d.toString(); if (ws.waiters.length) ws.waiters.shift()(s); else ws.msgs.push(s); });
    ws.closedP = new Promise((r) => ws.on("close", (code, reason) => r([code, reason.toString()])));
    ws.on("open", () => res(ws)); ws.on("error", rej);
    ws.on("unexpected-response", (req, resp) => { let b = ""; resp.on("data", (c) => (b += c)); resp.on("end", () => rej(new Error(`status ${resp.statusCode} ${resp.headers["content-type"]} ${b}`))); });
  });
}
const read = (ws) => ws.msgs.length ? Promise.resolve(ws.msgs.shift()) : new Promise((r) => ws.waiters.push(r));
const get = async (p) => { const r = await fetch(http + p); return `${r.status} ${await r.text()}`; };
const check = (what, got, want) => { const ok = want instanceof RegExp ? want.test(got) : got === want; console.log(ok ? "ok  " : "FAIL", what, JSON.stringify(got)); if (!ok) process.exitCode = 1; };
(async () => {
  const a = await dial("c1", "a", "att-a"), b = await dial("c1", "b", "att-b"), c = await dial("c1", "c", "");
  a.send("echo:hi"); check("echo", await read(a), /^echo:hi att=att-a instance=/);
  a.send("attach:new-a"); check("attach", await read(a), /^attached=1 /);
  check("list", (await get("/obj/c1/list")).slice(4).split(",").sort().join(","), "a=new-a,b=att-b,c=");
  b.send("fan:a,c,nobody:hello"); check("fan a", await read(a), "hello"); check("fan c", await read(c), "hello"); check("fan b", await read(b), /^sent=2 /);
  check("send all", await get("/obj/c1/send?tags=*&text=bye"), "200 sent=3 error=<nil>");
  for (const w of [a, b, c]) check("bye", await read(w), "bye");
  a.send("close:4001:bye-a"); check("go close", JSON.stringify(await a.closedP), JSON.stringify([4001, "bye-a"]));
  check("obj close", await get("/obj/c1/close?tag=b&code=1008&reason=policy"), "200 closed=1 error=<nil>");
  check("obj close code", JSON.stringify(await b.closedP), JSON.stringify([1008, "policy"]));
  c.send(Buffer.from([1, 2, 3])); check("binary", (await c.closedP)[0], 1003);
  const d = await dial("c1", "d", ""); d.send("x".repeat(5000)); check("too large", (await d.closedP)[0], 1009);
  const e = await dial("c1", "e", "att-e"); e.send("echo:x"); await read(e); e.close(4002, "client-bye"); await e.closedP;
  const g = await dial("c1", "gone", "att-g"); g.send("echo:x"); await read(g); g.terminate(); // no close frame
  let ev = "";
  for (let i = 0; i < 50 && !(ev.includes("e 4002") && ev.includes("gone ")); i++) { await new Promise((r) => setTimeout(r, 100)); ev = await get("/obj/c1/events"); }
  check("close calls", ev, '200 a 4001 "bye-a" clean=true att=new-a\nb 1008 "policy" clean=true att=att-b\nc 1003 "binary frames are not spoken here" clean=true att=\nd 1009 "too large" clean=true att=\ne 4002 "client-bye" clean=true att=att-e\ngone 1006 "WebSocket disconnected without sending Close frame." clean=false att=att-g');
  check("list after", await get("/obj/c1/list"), "200 ");
  try { await dial("c1", "refuse", ""); check("refused", "opened", "refused"); } catch (err) { check("refused", err.message, /^status 400 application\/json .*refused/); }
  check("worker socket op", await get("/worker-socket"), /error=host: invalid/);
  process.exit();
})().catch((e) => { console.error(e); process.exit(1); });
