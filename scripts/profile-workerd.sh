#!/usr/bin/env bash
# Profiles the balancer in workerd: builds an unstripped app.wasm (Go's function names stay in it), starts anvil and
# wrangler dev with its inspector, loads it with eth_blockNumber (or, with PROFILE_CALLDATA_KIB, an eth_call with that
# much calldata) and prints where the time goes
# (scripts/profile-workerd.mjs). The raw profile is left in build/workerd.cpuprofile (open it in Chrome DevTools).
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$tmp"; rm -f build/app.wasm; make -s build/app.wasm >/dev/null; }
trap cleanup EXIT
GOOS=js GOARCH=wasm go build -trimpath -o build/app.wasm ./worker
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
anvil_port=$(free_port); port=$(free_port); inspector=$(free_port)
node_modules/.bin/anvil --port "$anvil_port" --silent >"$tmp/anvil.log" 2>&1 & pids+=($!)
printf "UPSTREAM_CONFIG='[{\"chain\":\"ethereum\",\"name\":\"anvil\",\"upstream\":\"http://127.0.0.1:%s\"}]'\n" "$anvil_port" >"$tmp/vars.env"
WRANGLER_SEND_METRICS=false node_modules/.bin/wrangler dev --ip 127.0.0.1 --port "$port" --inspector-port "$inspector" \
  --env-file "$tmp/vars.env" --persist-to "$tmp/state" --show-interactive-dev-session=false >"$tmp/wrangler.log" 2>&1 & pids+=($!)
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/" >/dev/null && break; sleep 0.2; done
node scripts/profile-workerd.mjs "$inspector" "http://127.0.0.1:$port/ethereum" "${PROFILE_REQUESTS:-3000}" \
  "${PROFILE_CONCURRENCY:-1}" build/workerd.cpuprofile
