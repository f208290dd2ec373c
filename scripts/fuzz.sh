#!/usr/bin/env bash
# Runs every Fuzz* target of the module for the given time each (default 20s). Bounded: CI uses it.
set -euo pipefail
cd "$(dirname "$0")/.."
time=${1:-20s}
found=0
for pkg in $(go list ./...); do
  for name in $(go test -list '^Fuzz' "$pkg" 2>/dev/null | grep '^Fuzz' || true); do
    found=1
    echo "fuzz: $pkg $name for $time"
    go test -run '^$' -fuzz "^${name}\$" -fuzztime "$time" "$pkg"
  done
done
[ "$found" = 1 ] || { echo "fuzz: no fuzz targets found"; exit 1; }
