"use strict";
const REFRESH_MS = 5000;
function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  for (const k of kids) e.append(k instanceof Node ? k : document.createTextNode(String(k)));
  return e;
}
function spark(values) {
  const w = 120, h = 24, max = Math.max(1, ...values), n = values.length;
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("width", w); svg.setAttribute("height", h); svg.setAttribute("viewBox", `0 0 ${w} ${h}`);
  svg.setAttribute("role", "img"); svg.setAttribute("aria-label", "requests per minute, last " + n + " minutes");
  const pl = document.createElementNS(ns, "polyline");
  pl.setAttribute("points", values.map((v, i) => `${(i * (w - 2) / Math.max(1, n - 1) + 1).toFixed(1)},${(h - 1 - v * (h - 2) / max).toFixed(1)}`).join(" "));
  svg.append(pl);
  return svg;
}
const ms = v => v >= 100 ? v.toFixed(0) + " ms" : v.toFixed(1) + " ms";
const pct = v => (v * 100).toFixed(v > 0 && v < 0.01 ? 2 : 1) + " %";
const rps = v => v.toFixed(v < 10 ? 2 : 0);
const until = t => t ? " until " + new Date(t).toLocaleTimeString() : "";
// What an upstream proved it can and cannot serve (issue 20: admin's caps).
function caps(c) {
  if (!c) return "";
  const out = c.archive ? ["archive"] : [];
  for (const [m, t] of Object.entries(c.lacks_methods || {})) out.push("lacks " + m + until(t));
  if (c.lacks_state_below) out.push("lacks state ≤ " + c.lacks_state_below + until(c.lacks_state_until));
  if (c.has_state_from) out.push("state from " + c.has_state_from + until(c.has_state_until));
  return out.join("; ");
}
const counts = o => Object.entries(o || {}).map(([k, v]) => k + " " + v).join(", ") || "–";
function render(data) {
  const root = document.getElementById("chains");
  const out = [];
  for (const c of data.chains || []) {
    const rows = c.upstreams.map(u => el("tr", {"data-upstream": c.chain + "/" + u.name, "data-state": u.state},
      el("td", {}, el("b", {}, u.name), el("br"), el("small", {}, u.endpoint), el("small", {class: "caps"}, caps(u.caps))),
      el("td", {}, el("span", {class: "st st-" + u.state, "data-role": "state"}, u.state)),
      el("td", {}, u.height || "–"), el("td", {}, u.height ? u.lag : "–"),
      el("td", {class: "opt"}, ms(u.p50_ms)), el("td", {class: "opt"}, ms(u.p99_ms)),
      el("td", {}, pct(u.error_rate)), el("td", {}, rps(u.rps)),
      el("td", {class: "opt"}, spark(u.spark)),
      el("td", {"data-role": "broadcast"}, counts(u.broadcast)),
      el("td", {class: "reason"}, u.reason || "")));
    out.push(el("section", {class: "chain", "data-chain": c.chain},
      el("h2", {}, c.chain),
      el("div", {class: "sum"},
        el("span", {}, "head ", el("b", {}, c.head || "–")),
        el("span", {}, "finalized ", el("b", {}, c.finalized || "–")),
        el("span", {}, "req/s ", el("b", {}, rps(c.rps))),
        el("span", {}, "errors ", el("b", {}, pct(c.error_rate))),
        el("span", {}, "p50 ", el("b", {}, ms(c.p50_ms))), el("span", {}, "p99 ", el("b", {}, ms(c.p99_ms))),
        el("span", {"data-role": "cache"}, "cache hits ", el("b", {}, c.cache_calls ? pct(c.cache_hit_ratio) : "–")),
        el("span", {"data-role": "logs"}, "getLogs split ", el("b", {}, c.logs_splits), " in ", el("b", {}, c.logs_pieces), " pieces"),
        spark(c.spark)),
      c.error ? el("p", {id: "err"}, c.error) : "",
      c.chain_id_undecided ? el("p", {class: "undecided"}, c.chain_id_undecided) : "",
      el("div", {class: "wrap"}, el("table", {},
        el("thead", {}, el("tr", {}, el("th", {}, "upstream, capabilities"), el("th", {}, "state"), el("th", {}, "head"),
          el("th", {}, "lag"), el("th", {class: "opt"}, "p50"), el("th", {class: "opt"}, "p99"),
          el("th", {}, "errors"), el("th", {}, "req/s"), el("th", {class: "opt"}, "last 30 min"), el("th", {}, "broadcast"),
          el("th", {}, "reason"))),
        el("tbody", {}, ...rows)))));
  }
  const cl = data.clients || {};
  if (cl.client_keys) {
    const outcomes = ["ok", "limited", "day_limited", "denied", "chain_denied"];
    const rows = (cl.clients || []).map(k => el("tr", {"data-client": k.name},
      el("td", {}, el("b", {}, k.name), el("br"), el("small", {}, (k.chains || []).join(", "))),
      ...outcomes.map(o => el("td", {"data-role": o}, (k.totals || {})[o] || 0)),
      el("td", {"data-role": "day"}, k.budget ? k.budget.day_used : "–", " / ", k.limits.per_day || "∞"),
      el("td", {"data-role": "rps"}, k.limits.rps || "∞", k.limits.burst ? " (burst " + k.limits.burst + ")" : ""),
      el("td", {class: "reason"}, k.budget_error || "")));
    const unknown = Object.values(cl.unknown || {}).reduce((a, b) => a + b, 0);
    out.push(el("section", {class: "clients", "data-role": "clients"},
      el("h2", {}, "clients"),
      el("div", {class: "sum"}, el("span", {"data-role": "unknown"}, "refused without a known key ", el("b", {}, unknown))),
      el("div", {class: "wrap"}, el("table", {},
        el("thead", {}, el("tr", {}, el("th", {}, "client, chains"), ...outcomes.map(o => el("th", {}, o.replace("_", " "))),
          el("th", {}, "today / per day"), el("th", {}, "req/s limit"), el("th", {}, "budget"))),
        el("tbody", {}, ...rows)))));
  }
  root.replaceChildren(...out);
  const upd = document.getElementById("updated");
  upd.textContent = "updated " + new Date(data.at).toLocaleTimeString();
  upd.dataset.at = data.at;
  document.body.dataset.loaded = String(Number(document.body.dataset.loaded || 0) + 1);
}
async function refresh() {
  const err = document.getElementById("status");
  try {
    // From the origin, not relative: a page opened as http://admin:…@host/admin would lend its URL's
    // credentials to a relative URL, and fetch refuses a URL with credentials. The browser's own basic auth
    // (asked for or remembered for the origin) goes with the request instead.
    const r = await fetch(location.origin + "/admin/dashboard.json", {credentials: "same-origin", cache: "no-store"});
    if (!r.ok) throw new Error("HTTP " + r.status);
    render(await r.json());
    err.textContent = "";
  } catch (e) {
    err.textContent = "refresh failed: " + e.message;
  }
  setTimeout(refresh, REFRESH_MS);
}
refresh();
