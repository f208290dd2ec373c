// The module entry of the balancer in workerd: the host side of CONTRACT.md (version 7).
// It keeps one Go runtime per isolate, hands every fetch and alarm to Go as a call, and performs the I/O each
// call asks for inside that call's own context. It decides nothing itself.
import "./wasm_exec.js";
import mod from "./app.wasm";
import { DurableObject } from "cloudflare:workers";

// --- contract constants: begin ---
// The host contract's names and numbers, the same as internal/contract's: TestShimConstants reads this block (one
// `const NAME = value;` a line, values in JSON or single-quoted) and fails on any difference, or on one of these
// values written as a literal elsewhere in this file.
const CONTRACT_VERSION = 7;
const NO_BODY = -1;
const HOST_KIND = "workerd";
const OBJECT_URL_BASE = "https://object";
const IMPORT_MODULE = "evmlb";
const INTERNAL_ERROR = '{"jsonrpc":"2.0","id":null,"error":{"code":-32603,"message":"internal error"}}';
const CALL = { fetch: "fetch", alarm: "alarm", message: "message", close: "close" };
const ROLE = { worker: "worker", chain: "chain", upstream: "upstream", subs: "subs", budget: "budget" };
const OP = { fetch: "fetch", object: "object", storage: "storage", sleep: "sleep", cache: "cache", upgrade: "upgrade", socket: "socket", abort: "abort", response: "response", done: "done" };
const ERR = { timeout: "timeout", aborted: "aborted", tooLarge: "too_large", network: "network", storage: "storage", invalid: "invalid" };
const STORAGE = { get: "get", put: "put", delete: "delete", list: "list", deleteAll: "deleteAll", getAlarm: "getAlarm", setAlarm: "setAlarm", deleteAlarm: "deleteAlarm" };
const CACHE = { match: "match", put: "put", delete: "delete" };
const SOCKET = { send: "send", close: "close", attach: "attach", list: "list" };
const FRAME = { text: "text", binary: "binary" };
const MAX_TAG_BYTES = 256;
const MAX_ATTACHMENT_BYTES = 16384;
const MAX_CLOSE_REASON_BYTES = 123;
const CLOSE_ABNORMAL = 1006;
// --- contract constants: end ---

const utf8 = new TextEncoder();
// ENDED, delivered to a call in place of a message, says its runtime was ended (the shim's own, not Go's).
const ENDED = Symbol("ended");
const fromUTF8 = new TextDecoder();

// The live runtime: a promise of { binding, exited, begin, complete, end }, or null before the first call and after
// an exit; live is the same object once it has started, so that a call need not wait a microtask for it.
let runtime = null;
let live = null;

function start(env) {
  const binding = {};
  // memoryBytes reads the linear memory of this runtime's instance (made below, before Go can call it).
  const host = { kind: HOST_KIND, memoryBytes: () => instance.exports.mem.buffer.byteLength };
  globalThis.context = { env, ctx: undefined, binding, host };
  globalThis.tryCatch = (fn) => {
    try {
      return { result: fn() };
    } catch (error) {
      return { error };
    }
  };
  const go = new Go();
  let ready;
  const isReady = new Promise((resolve) => (ready = resolve));
  // The import module evmlb (CONTRACT.md §1): Go's bytes cross through its memory. calls maps a call's number to
  // its deliver and its request body; pending is the event (begin, complete) Go is handling, for take(). A misuse
  // is logged, never thrown: an exception unwinding through Go's frames would corrupt its runtime.
  const calls = new Map();
  let pending = null;
  const memory = () => new Uint8Array(instance.exports.mem.buffer);
  const evmlb = {
    deliver(call, msg, msgLen, body, bodyLen) {
      const c = calls.get(call);
      if (c === undefined) return console.error(`evmlb: contract: deliver for call ${call}, which is not running`);
      const m = memory();
      c.deliver(fromUTF8.decode(m.subarray(msg >>> 0, (msg >>> 0) + msgLen)), bodyLen < 0 ? null : m.slice(body >>> 0, (body >>> 0) + bodyLen));
    },
    take(text, body) {
      if (pending === null) return console.error("evmlb: contract: take outside begin and complete");
      const p = pending;
      pending = null; // once per event
      const m = memory();
      m.set(p.text, text >>> 0);
      if (body !== 0 && p.body !== null) m.set(p.body, body >>> 0);
    },
    body(call, dst) {
      const c = calls.get(call);
      if (c === undefined || c.body === null) return console.error(`evmlb: contract: body for call ${call}, which has none to take`);
      memory().set(c.body, dst >>> 0);
      c.body = null;
    },
  };
  const instance = new WebAssembly.Instance(mod, { ...go.importObject, workers: { ready: () => ready() }, [IMPORT_MODULE]: evmlb });
  // wasm_exec.js calls go.exit(code) when Go exits; go.run()'s promise may never settle then (after a panic the
  // module traps inside a callback), so the exit is detected here, and the next call starts a new runtime.
  let onExit;
  const exited = new Promise((_, reject) => (onExit = reject));
  exited.catch(() => {
    if (runtime === started) runtime = null;
  });
  go.exit = (code) => {
    console.error(`evmlb: Go runtime exited with code ${code}; the next call starts a new one`);
    onExit(new Error("Go runtime exited"));
    // Its running calls, each in its own context; after this turn, as go.exit may run inside go.run() below.
    queueMicrotask(() => end(new Error(`Go runtime exited with code ${code}`)));
  };
  // An exception thrown through Go's frames (begin or complete threw: V8's stack overflowed inside the wasm, or a
  // host import threw) stops Go mid-execution, its scheduler and heap in an unknown state. The runtime is ended: the
  // next call starts a new one, each running call is told through its own deliver (its loop, in its own context,
  // then fails it with the internal error, 500), and nothing runs on the old runtime again (its timers are cleared,
  // a late callback into it does nothing). The `exited` promise is not used for this: it belongs to the request
  // that started the runtime, and workerd cancels what other requests chained on it once that request is over.
  // A Go exit (a panic) ends the runtime the same way: `exited` alone would reach only the calls of the request
  // that started it.
  let dead = false;
  const thrown = (where, error) => {
    if (dead) return;
    console.error(`evmlb: ${where} threw (${error && error.message}); the Go runtime is ended, the next call starts a new one`);
    end(new Error(`Go runtime ended: ${where} threw`));
  };
  const end = (ended) => {
    if (dead) return;
    dead = true;
    if (runtime === started) runtime = null;
    if (live !== null && live.binding === binding) live = null;
    for (const t of go._scheduledTimeouts.values()) clearTimeout(t);
    go._scheduledTimeouts.clear();
    go._resume = () => {};
    for (const c of calls.values()) c.deliver(ENDED, ended);
    calls.clear();
  };
  go.run(instance).then(
    () => go.exit(0),
    (error) => go.exit(error && error.message),
  );
  const started = Promise.race([isReady, exited]).then(() => {
    if (binding.contractVersion !== CONTRACT_VERSION) {
      throw new Error(`app.wasm implements host contract ${binding.contractVersion}, the shim ${CONTRACT_VERSION}`);
    }
    // begin and complete are called as plain functions (this undefined) with numbers only, the text and body
    // waiting in pending for Go's take(): Go then makes no JS value for them beyond the event.
    const { begin, complete } = binding;
    const event = (fn, args, text, body) => {
      pending = { text, body };
      try {
        fn(...args);
      } finally {
        pending = null;
      }
    };
    let nextCall = 0;
    live = {
      binding,
      exited,
      begin(text, body, deliver) {
        if (dead) throw new Error("Go runtime ended");
        do nextCall = nextCall >= 0x7fffffff ? 1 : nextCall + 1;
        while (calls.has(nextCall)); // a number no running call has (CONTRACT.md §3)
        const call = nextCall;
        const t = utf8.encode(text);
        calls.set(call, { deliver, body });
        try {
          event(begin, [call, t.byteLength, body === null ? NO_BODY : body.byteLength], t, null);
        } catch (error) {
          calls.delete(call);
          thrown("begin", error);
          throw error;
        }
        return call;
      },
      complete(call, op, text, body) {
        if (dead) return;
        const t = utf8.encode(text);
        try {
          event(complete, [call, op, t.byteLength, body === null ? NO_BODY : body.byteLength], t, body);
        } catch (error) {
          thrown("complete", error);
        }
      },
      end(call) {
        calls.delete(call);
      },
    };
    return live;
  });
  exited.catch(() => {
    if (live !== null && live.binding === binding) live = null;
  });
  return started;
}

function getRuntime(env) {
  if (runtime === null) {
    const r = start(env);
    runtime = r;
    r.catch(() => {
      if (runtime === r) runtime = null;
    });
  }
  return runtime;
}

function internalError(where, error) {
  console.error(`evmlb: ${where}: ${error && error.message}`);
  return new Response(INTERNAL_ERROR, { status: 500, headers: { "content-type": "application/json" } });
}

const flat = (headers) => {
  const out = [];
  for (const [k, v] of headers) out.push(k, v);
  return out;
};

const pairs = (a) => {
  const h = new Headers();
  for (let i = 0; i + 1 < a.length; i += 2) h.append(a[i], a[i + 1]);
  return h;
};

// Reads a request's body for begin(): at most maxBodyBytes, else null and call.bodyTooLarge.
async function readBody(call, request, max) {
  if (request.body === null) return null;
  if (Number(request.headers.get("content-length")) > max) {
    call.bodyTooLarge = true;
    return null;
  }
  const body = new Uint8Array(await request.arrayBuffer());
  if (body.byteLength > max) {
    call.bodyTooLarge = true;
    return null;
  }
  return body;
}

// Performs one operation of a call (CONTRACT.md §4). It runs in the call's own context: every I/O object it
// makes (fetch, body, abort, timer, stub, storage, cache, socket) stays there. An upgrade's answer is the call's
// answer as is (`answer`): the object's Response, its webSocket included.
async function perform(op, { env, storage, url, running, state, role }) {
  const ac = new AbortController();
  running.set(op.id, ac);
  let timedOut = false;
  const timer = op.timeout > 0 ? setTimeout(() => ((timedOut = true), ac.abort()), op.timeout) : undefined;
  try {
    switch (op.op) {
      case OP.fetch:
      case OP.object: {
        const init = { method: op.method, headers: pairs(op.headers), body: op.body, signal: ac.signal, redirect: "manual" };
        let resp;
        if (op.op === OP.fetch) {
          resp = await fetch(op.url, init);
        } else {
          const ns = env[op.namespace];
          resp = await ns.get(ns.idFromName(op.name)).fetch(OBJECT_URL_BASE + op.path, init);
        }
        const length = Number(resp.headers.get("content-length"));
        if (op.limit > 0 && length > op.limit) {
          ac.abort();
          return failed(ERR.tooLarge);
        }
        const body = new Uint8Array(await resp.arrayBuffer());
        if (op.limit > 0 && body.byteLength > op.limit) return failed(ERR.tooLarge);
        return { result: ["", "", String(resp.status)], body }; // Go reads no answer header
      }
      case OP.upgrade: {
        if (url === undefined) return failed(ERR.invalid, "upgrade: only a Worker call upgrades");
        const ns = env[op.namespace];
        const answer = await ns.get(ns.idFromName(op.name)).fetch(OBJECT_URL_BASE + op.path, { method: "GET", headers: pairs(op.headers), signal: ac.signal });
        return { result: ["", "", String(answer.status)], body: null, answer };
      }
      case OP.socket:
        if (role !== ROLE.subs || state === undefined) return failed(ERR.invalid, "socket: only a subs object's calls have sockets");
        return socketOp(state, op);
      case OP.sleep:
        await new Promise((resolve) => {
          const t = setTimeout(resolve, op.ms);
          ac.signal.addEventListener("abort", () => (clearTimeout(t), resolve()));
        });
        return ac.signal.aborted ? failed(ERR.aborted) : ok();
      case OP.storage:
        return ok(...(await storageOp(storage, op)));
      case OP.cache:
        return await cacheOp(url, op);
      default:
        return failed(ERR.invalid, `unknown op ${op.op}`);
    }
  } catch (error) {
    // An error of the Cache API is the storage kind, which Go takes as a miss (CONTRACT.md §4).
    if (op.op === OP.storage || op.op === OP.cache) return failed(ERR.storage, error && error.message);
    if (timedOut) return failed(ERR.timeout);
    if (ac.signal.aborted) return failed(ERR.aborted);
    return failed(ERR.network, error && error.message);
  } finally {
    clearTimeout(timer);
    running.delete(op.id);
  }
}

// WebSocket.OPEN: a socket that is closing or closed is left out of every socket call.
const WS_OPEN = 1;
const bytes = (s) => utf8.encode(s).byteLength;

// The open sockets of the object with the tag (or all, tag undefined), each once.
const openSockets = (state, tag) => state.getWebSockets(tag).filter((ws) => ws.readyState === WS_OPEN);

// Performs a socket call on the object's hibernatable WebSockets (CONTRACT.md §7): a socket's tag is the first
// of ctx.getTags, its attachment what serializeAttachment stored (a string).
function socketOp(state, op) {
  const attachmentOf = (ws) => ws.deserializeAttachment() ?? "";
  switch (op.call) {
    case SOCKET.send: {
      const text = fromUTF8.decode(op.body ?? new Uint8Array());
      const targets = op.all ? openSockets(state) : [...new Set(op.tags)].flatMap((tag) => openSockets(state, tag));
      let n = 0;
      for (const ws of targets) {
        try {
          ws.send(text);
          n++;
        } catch {
          // closed meanwhile: it reaches nothing
        }
      }
      return ok(String(n));
    }
    case SOCKET.close: {
      if (bytes(op.reason) > MAX_CLOSE_REASON_BYTES) return failed(ERR.invalid, "socket: the reason is too long");
      const [ws] = openSockets(state, op.tag);
      if (ws === undefined) return ok("0");
      ws.close(op.code, op.reason);
      return ok("1");
    }
    case SOCKET.attach: {
      if (bytes(op.attachment) > MAX_ATTACHMENT_BYTES) return failed(ERR.invalid, "socket: the attachment is too large");
      const [ws] = openSockets(state, op.tag);
      if (ws === undefined) return ok("0");
      ws.serializeAttachment(op.attachment);
      return ok("1");
    }
    case SOCKET.list: {
      const out = [];
      for (const ws of openSockets(state)) out.push(state.getTags(ws)[0] ?? "", attachmentOf(ws));
      return ok(...out);
    }
  }
  return failed(ERR.invalid, `unknown socket call ${op.call}`);
}

// Accepts a WebSocket for a subs object's answer that says so (response with accept: [tag, attachment]): the
// Hibernation API keeps it, its tag and attachment while the object sleeps; the client gets the other end.
function accept(state, [tag, attachment]) {
  if (state === undefined || bytes(tag) > MAX_TAG_BYTES || bytes(attachment) > MAX_ATTACHMENT_BYTES) throw new Error("accept outside a subs object, or over the limits");
  const [client, server] = Object.values(new WebSocketPair());
  state.acceptWebSocket(server, [tag]);
  server.serializeAttachment(attachment);
  return new Response(null, { status: 101, webSocket: client });
}

// A result is a JSON array of strings, [error, message, payload…] (CONTRACT.md §4), and a body.
const ok = (...payload) => ({ result: ["", "", ...payload], body: null });
const failed = (error, message = "") => ({ result: [error, String(message)], body: null });

// Performs a storage call; returns its payload.
async function storageOp(storage, op) {
  if (!storage) throw new Error("storage outside a Durable Object");
  switch (op.call) {
    case STORAGE.get: {
      const value = await storage.get(op.key);
      return value === undefined ? [] : [value];
    }
    case STORAGE.put: {
      const entries = {};
      for (let i = 0; i + 1 < op.entries.length; i += 2) entries[op.entries[i]] = op.entries[i + 1];
      await storage.put(entries);
      return [];
    }
    case STORAGE.delete:
      await storage.delete(op.keys);
      return [];
    case STORAGE.list:
      return flat(await storage.list({ prefix: op.prefix }));
    case STORAGE.deleteAll:
      await storage.deleteAll();
      return [];
    case STORAGE.getAlarm: {
      const time = await storage.getAlarm();
      return time === null ? [] : [String(time)];
    }
    case STORAGE.setAlarm:
      await storage.setAlarm(op.time);
      return [];
    case STORAGE.deleteAlarm:
      await storage.deleteAlarm();
      return [];
  }
  throw new Error(`unknown storage call ${op.call}`);
}

// Performs a cache call on caches.default, this data centre's cache (on a workers.dev host Cloudflare stores
// nothing: put does nothing and match misses). url is the Worker's request URL, undefined for the objects: the key
// must be an https URL on its host. What is stored says nothing but its age: no upstream URL, no cookie.
async function cacheOp(url, op) {
  let key;
  try {
    key = new URL(op.key);
  } catch {
    return failed(ERR.invalid, "cache: the key is not a URL");
  }
  if (url === undefined || key.protocol !== "https:" || key.host !== new URL(url).host || key.username !== "" || key.password !== "" || key.hash !== "") {
    return failed(ERR.invalid, "cache: the key is not an https URL on the Worker's host");
  }
  switch (op.call) {
    case CACHE.match: {
      const resp = await caches.default.match(key.href);
      if (resp === undefined) return ok(); // a miss: no body
      if (op.limit > 0 && Number(resp.headers.get("content-length")) > op.limit) {
        await resp.body?.cancel();
        return failed(ERR.tooLarge);
      }
      const body = new Uint8Array(await resp.arrayBuffer());
      if (op.limit > 0 && body.byteLength > op.limit) return failed(ERR.tooLarge);
      return { result: ok().result, body };
    }
    case CACHE.put:
      await caches.default.put(key.href, new Response(op.body, { headers: { "cache-control": `max-age=${op.ttl}` } }));
      return ok();
    case CACHE.delete:
      await caches.default.delete(key.href);
      return ok();
  }
  return failed(ERR.invalid, `unknown cache call ${op.call}`);
}

// Runs one call: begin() in Go, then every message Go delivers is handled here, in this call's context. Go may
// call deliver from any context, so deliver only queues and wakes this loop (a promise made here). It resolves
// with the call's response (fetch calls) and settles `finished` at done.
function run(rt, env, call, body, { storage, url, waitUntil, state, role }) {
  return new Promise((respond, fail) => {
    const queue = [];
    let wake = null;
    const deliver = (meta, body) => {
      queue.push(meta, body);
      if (wake !== null) {
        const w = wake;
        wake = null;
        w();
      }
    };
    let id;
    try {
      id = rt.begin(JSON.stringify(call), body, deliver);
    } catch (error) {
      fail(error);
      return;
    }
    const io = { env, storage, url, running: new Map(), state, role };
    const loop = (async () => {
      for (;;) {
        while (queue.length === 0) await new Promise((resolve) => (wake = resolve));
        const meta = queue.shift();
        const body = queue.shift();
        if (meta === ENDED) throw body;
        const m = JSON.parse(meta);
        m.body = body;
        switch (m.op) {
          case OP.response:
            respond(m.accept ? accept(state, m.accept) : new Response(m.body, { status: m.status, headers: pairs(m.headers) }));
            if (m.done) return; // the call ended with its answer: no "done" follows
            break;
          case OP.abort:
            io.running.get(m.target)?.abort();
            break;
          case OP.done:
            if (m.error) throw new Error(m.error);
            respond(null);
            return;
          default:
            perform(m, io).then(({ result, body, answer }) => {
              if (answer !== undefined) respond(answer); // an upgrade: the object's answer is the call's
              rt.complete(id, m.id, JSON.stringify(result), body);
            });
        }
      }
    })();
    const finished = Promise.race([loop, rt.exited]);
    finished.catch((error) => fail(error)).finally(() => rt.end(id));
    if (waitUntil) waitUntil(finished.catch(() => {}));
  });
}

async function fetchCall(env, request, role, extra) {
  let rt = live;
  if (rt === null) {
    try {
      rt = await getRuntime(env);
    } catch (error) {
      return internalError("start", error);
    }
  }
  try {
    const call = { bodyTooLarge: false };
    const body = await readBody(call, request, rt.binding.maxBodyBytes);
    const ids = extra.ids;
    const fields = [CALL.fetch, role, ids.object ?? "", ids.instance ?? "", request.method, request.url, call.bodyTooLarge ? "1" : "", "0"];
    for (const name of rt.binding.requestHeaders) {
      const value = request.headers.get(name);
      if (value !== null) fields.push(name, value);
    }
    const response = await run(rt, env, fields, body, extra);
    return response ?? internalError("request", new Error("no response"));
  } catch (error) {
    return internalError("request", error);
  }
}

class GoDurableObject extends DurableObject {
  constructor(ctx, env) {
    super(ctx, env);
    this.ids = { object: ctx.id.toString(), instance: crypto.randomUUID() };
  }

  get io() {
    return { ids: this.ids, storage: this.ctx.storage, state: this.ctx, role: this.role, waitUntil: (p) => this.ctx.waitUntil(p) };
  }

  fetch(request) {
    return fetchCall(this.env, request, this.role, this.io);
  }

  // A rejection makes workerd retry the alarm with back-off, as the contract says.
  async alarm(info) {
    const rt = await getRuntime(this.env);
    const call = [CALL.alarm, this.role, this.ids.object, this.ids.instance, "", "", "", String((info && info.retryCount) || 0)];
    await run(rt, this.env, call, null, this.io);
  }

  // A WebSocket's frame or end is a call of its own (CONTRACT.md §3, §7); its failure is logged, never retried.
  async socketCall(kind, tooLarge, rest, body) {
    try {
      const rt = await getRuntime(this.env);
      await run(rt, this.env, [kind, this.role, this.ids.object, this.ids.instance, "", "", tooLarge, "0", ...rest], body, this.io);
    } catch (error) {
      console.error(`evmlb: ${kind} call failed: ${error && error.message}`);
    }
  }

  async webSocketMessage(ws, message) {
    const text = typeof message === "string";
    let body = text ? utf8.encode(message) : new Uint8Array(message);
    let tooLarge = "";
    const rt = live ?? (await getRuntime(this.env).catch(() => null));
    if (rt !== null && body.byteLength > rt.binding.maxBodyBytes) [body, tooLarge] = [null, "1"];
    const rest = [this.ctx.getTags(ws)[0] ?? "", ws.deserializeAttachment() ?? "", text ? FRAME.text : FRAME.binary];
    await this.socketCall(CALL.message, tooLarge, rest, body);
  }

  // The peer closed: the host completes the closing handshake (echoing the code; 1005 and 1006 are never sent),
  // then tells Go.
  async webSocketClose(ws, code, reason, wasClean) {
    try {
      ws.close(code === 1005 || code === CLOSE_ABNORMAL ? 1000 : code, reason);
    } catch {
      // closed already
    }
    const rest = [this.ctx.getTags(ws)[0] ?? "", ws.deserializeAttachment() ?? "", String(code), reason, wasClean ? "1" : ""];
    await this.socketCall(CALL.close, "", rest, null);
  }

  async webSocketError(ws, error) {
    const rest = [this.ctx.getTags(ws)[0] ?? "", ws.deserializeAttachment() ?? "", String(CLOSE_ABNORMAL), String((error && error.message) || ""), ""];
    await this.socketCall(CALL.close, "", rest, null);
  }
}

export class ChainDurableObject extends GoDurableObject {
  get role() {
    return ROLE.chain;
  }
}

export class UpstreamDurableObject extends GoDurableObject {
  get role() {
    return ROLE.upstream;
  }
}

// The chain's WebSocket sessions (issue 21): the sockets hibernate with it (CONTRACT.md §7).
export class SubscriptionDurableObject extends GoDurableObject {
  get role() {
    return ROLE.subs;
  }
}

// A limit every isolate shares (issue 22): one object per budget leases each isolate its share.
export class BudgetDurableObject extends GoDurableObject {
  get role() {
    return ROLE.budget;
  }
}

export default {
  fetch(request, env, ctx) {
    return fetchCall(env, request, ROLE.worker, { ids: {}, url: request.url, waitUntil: (p) => ctx.waitUntil(p) });
  },
};
