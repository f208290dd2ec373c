// The module entry of the balancer in workerd: the host side of CONTRACT.md (version 2).
// It keeps one Go runtime per isolate, hands every fetch and alarm to Go, and decides nothing itself.
import "./wasm_exec.js";
import mod from "./app.wasm";
import { DurableObject } from "cloudflare:workers";

const CONTRACT_VERSION = 2;
const INTERNAL_ERROR =
  '{"jsonrpc":"2.0","id":null,"error":{"code":-32603,"message":"internal error"}}';

// Durable Object instances of this isolate, by id: what context.host.state(id) returns.
const objects = new Map();
// The live runtime: a promise of { binding, exited }, or null before the first call and after an exit.
let runtime = null;

function start(env) {
  const binding = {};
  globalThis.context = {
    env,
    ctx: undefined,
    binding,
    host: { kind: "workerd", state: (id) => objects.get(id) },
  };
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
  const instance = new WebAssembly.Instance(mod, {
    ...go.importObject,
    workers: { ready: () => ready() },
  });
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
  };
  go.run(instance).then(
    () => go.exit(0),
    (error) => go.exit(error && error.message),
  );
  const started = Promise.race([isReady, exited]).then(() => {
    if (binding.contractVersion !== CONTRACT_VERSION) {
      throw new Error(`app.wasm implements host contract ${binding.contractVersion}, the shim ${CONTRACT_VERSION}`);
    }
    return { binding, exited };
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

// Hands a request to Go with the role headers of CONTRACT.md section 3, always overwritten here.
async function callGo(env, request, role, objectId, instance) {
  let rt;
  try {
    rt = await getRuntime(env);
  } catch (error) {
    return internalError("start", error);
  }
  const headers = new Headers(request.headers);
  headers.set("x-evmlb-role", role);
  if (objectId === undefined) {
    headers.delete("x-evmlb-object");
    headers.delete("x-evmlb-instance");
  } else {
    headers.set("x-evmlb-object", objectId);
    headers.set("x-evmlb-instance", instance);
  }
  try {
    return await Promise.race([rt.binding.handleRequest(new Request(request, { headers })), rt.exited]);
  } catch (error) {
    return internalError("request", error);
  }
}

class GoDurableObject extends DurableObject {
  constructor(ctx, env) {
    super(ctx, env);
    this.id = ctx.id.toString();
    this.instance = crypto.randomUUID();
    objects.set(this.id, ctx);
  }

  fetch(request) {
    return callGo(this.env, request, this.role, this.id, this.instance);
  }

  // A rejection makes workerd retry the alarm with back-off, as the contract says.
  async alarm(info) {
    const rt = await getRuntime(this.env);
    await Promise.race([rt.binding.handleAlarm(this.role, this.id, (info && info.retryCount) || 0), rt.exited]);
  }
}

export class ChainDurableObject extends GoDurableObject {
  get role() {
    return "chain";
  }
}

export class UpstreamDurableObject extends GoDurableObject {
  get role() {
    return "upstream";
  }
}

export default {
  fetch(request, env) {
    return callGo(env, request, "worker");
  },
};
