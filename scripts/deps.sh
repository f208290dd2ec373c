#!/usr/bin/env bash
# make deps: everything the tests need, on a fresh machine, with no step by hand.
#   - the npm dev dependencies from package-lock.json (wrangler with its workerd, anvil), when the lock changed;
#   - the Go modules, verified against go.sum;
#   - a Chromium for the dashboard's browser tests (e2e/dashboard_test.go): Debian's package through apt-get, unless
#     one is on the PATH or EVMLB_CHROMIUM names one. apt-get needs root (or sudo); elsewhere install a Chromium
#     yourself and set EVMLB_CHROMIUM.
set -euo pipefail
cd "$(dirname "$0")/.."
step() { echo "make deps: $*"; }

if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ] || [ package.json -nt node_modules/.package-lock.json ]; then
  step "npm ci (wrangler and workerd, anvil)"
  npm ci --no-audit --no-fund
  touch node_modules/.package-lock.json
fi

step "Go modules"
${GO:-go} mod download
${GO:-go} mod verify >/dev/null

if [ -n "${EVMLB_CHROMIUM:-}" ] || command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  step "no chromium on the PATH and no apt-get: install a Chromium and set EVMLB_CHROMIUM for the dashboard's browser tests"
  exit 0
fi
step "installing Debian's chromium for the dashboard's browser tests (apt-get)"
sudo=()
if [ "$(id -u)" != 0 ]; then sudo=(sudo); fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -q
"${sudo[@]}" apt-get install -y -q chromium
