#!/usr/bin/env bash
# Runs the host's WebSocket test program (host/internal/server/testdata/sockets) in workerd through wrangler dev
# with the shim and this wrangler.toml's bindings, and drives it with testdata/sockets/workerd-check.cjs: the
# workerd half of TestWebSockets (CONTRACT.md §7), eviction aside. Needs `make deps` (wrangler, ws). Usage:
#   scripts/ws-workerd-check.sh [PORT]        (EVMLB_WS_LOG=1 shows workerd's log even when it passes)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
port=${1:-18931}
tmp=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
GOOS=js GOARCH=wasm go -C "$root" build -o "$tmp/app.wasm" ./host/internal/server/testdata/sockets
cp "$root/worker/shim/worker.mjs" "$tmp/worker.mjs"
cp "$(go env GOROOT)/lib/wasm/wasm_exec.js" "$tmp/"
sed 's|^main = "build/worker.mjs"|main = "worker.mjs"|' "$root/wrangler.toml" >"$tmp/wrangler.toml"
WRANGLER_SEND_METRICS=false CI=true NO_COLOR=1 BROWSER=none "$root/node_modules/.bin/wrangler" dev \
  --config "$tmp/wrangler.toml" --ip 127.0.0.1 --port "$port" --inspector-port $((port + 1)) \
  --persist-to "$tmp/state" --show-interactive-dev-session=false --live-reload=false >"$tmp/wrangler.log" 2>&1 &
pid=$!
for _ in $(seq 60); do curl -sf -m 1 "http://127.0.0.1:$port/obj/c1/list" >/dev/null && break; sleep 1; done
status=0
WS_MODULE="$root/node_modules/ws" node "$root/host/internal/server/testdata/sockets/workerd-check.cjs" "$port" || status=$?
if grep -E 'Uncaught|Cannot perform I/O|hanging Promise|evmlb: .* failed' "$tmp/wrangler.log"; then status=1; fi
[ "$status" = 0 ] && [ -z "${EVMLB_WS_LOG:-}" ] || cat "$tmp/wrangler.log"
exit "$status"
