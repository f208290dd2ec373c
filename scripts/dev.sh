#!/usr/bin/env bash
# Runs the balancer in workerd (wrangler dev) on 127.0.0.1:$PORT. Settings come from .dev.vars, and environment
# variables of the same names (UPSTREAM_CONFIG, CLIENT_KEYS, ADMIN_PASSWORD, ADMIN_USER, METRICS_TOKEN, EVMLB_*) override it.
# The merged file is written with mode 600 to a temporary directory and removed on exit. The names are
# config.Environment's (internal/config/environment.go; TestDevScriptVariables holds this file to it).
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
envfile="$tmp/vars.env"
umask 077
touch "$envfile"
[ -f .dev.vars ] && cat .dev.vars >>"$envfile" && echo >>"$envfile"
quote() { # dotenv single quotes are literal; fall back to double quotes when the value has one
  case "$1" in *"'"*) printf '"%s"' "$(printf '%s' "$1" | sed 's/\\/\\\\/g; s/"/\\"/g')" ;; *) printf "'%s'" "$1" ;; esac
}
while IFS='=' read -r name _; do
  case "$name" in UPSTREAM_CONFIG|CLIENT_KEYS|ADMIN_PASSWORD|ADMIN_USER|METRICS_TOKEN|EVMLB_*) printf '%s=%s\n' "$name" "$(quote "${!name}")" >>"$envfile" ;; esac
done < <(env)
export WRANGLER_SEND_METRICS=false
node_modules/.bin/wrangler dev --ip 127.0.0.1 --port "${PORT:-8787}" --env-file "$envfile" --show-interactive-dev-session=false
