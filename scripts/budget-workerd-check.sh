#!/usr/bin/env bash
# Runs the budget object's check program (host/internal/server/testdata/budget: durable.Budgets behind the shim,
# with this wrangler.toml's bindings and migrations) in workerd through wrangler dev, and checks through its
# Worker that a BudgetDurableObject answers /lease, /status and /clear, refuses an unknown budget, and keeps the
# day's count across a restart of workerd (storage persisted). Needs `make deps` (wrangler). Usage:
#   scripts/budget-workerd-check.sh [PORT]        (EVMLB_BUDGET_LOG=1 shows workerd's log even when it passes)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
port=${1:-18941}
tmp=$(mktemp -d)
pid=
stop() { [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; pid=; }
cleanup() { stop || true; rm -rf "$tmp"; }
trap cleanup EXIT
GOOS=js GOARCH=wasm go -C "$root" build -o "$tmp/app.wasm" ./host/internal/server/testdata/budget
cp "$root/worker/shim/worker.mjs" "$tmp/worker.mjs"
cp "$(go env GOROOT)/lib/wasm/wasm_exec.js" "$tmp/"
sed 's|^main = "build/worker.mjs"|main = "worker.mjs"|' "$root/wrangler.toml" >"$tmp/wrangler.toml"
start() {
  WRANGLER_SEND_METRICS=false CI=true NO_COLOR=1 BROWSER=none "$root/node_modules/.bin/wrangler" dev \
    --config "$tmp/wrangler.toml" --ip 127.0.0.1 --port "$port" --inspector-port $((port + 1)) \
    --persist-to "$tmp/state" --show-interactive-dev-session=false --live-reload=false >>"$tmp/wrangler.log" 2>&1 &
  pid=$!
  for _ in $(seq 60); do curl -s -m 2 -o /dev/null "http://127.0.0.1:$port/status/client:smoke" && return; sleep 1; done
  echo "wrangler dev did not start"; return 1
}
status=0
fail() { echo "FAIL: $*"; status=1; }
get() { curl -s -m 10 -w ' %{http_code}' "http://127.0.0.1:$port$1"; }
expect() { # path, then words the answer must hold
  local path=$1 got; shift
  got=$(get "$path")
  echo "GET $path -> $got"
  for w in "$@"; do [[ "$got" == *"$w"* ]] || fail "$path: no $w in $got"; done
}
start
expect /lease/client:smoke?used=3 '"rate":5' '"left":' ' 200'
expect /lease/client:smoke?used=2 '"rate":5' ' 200'
expect /status/client:smoke '"name":"client:smoke"' '"day_used":5' ' 200'
expect /lease/client:nobody 'HTTP 404' '-32062' ' 502'
stop
start # a new workerd: new instances, the same storage
expect /status/client:smoke '"day_used":5' ' 200'
expect /clear/client:smoke '{}' ' 200'
expect /status/client:smoke '"day_used":0' ' 200'
if grep -E 'Uncaught|Cannot perform I/O|hanging Promise|evmlb: .* failed|budget: budget object' "$tmp/wrangler.log"; then status=1; fi
[ "$status" = 0 ] && [ -z "${EVMLB_BUDGET_LOG:-}" ] || cat "$tmp/wrangler.log"
exit "$status"
