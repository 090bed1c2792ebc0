#!/usr/bin/env bash
# The staff inbox under load: one property with CONVERSATIONS conversations (default 500), then
# RATE guest messages a second (default 20) for DURATION_S seconds (default 60), into an inbox
# open in Debian's Chromium (bench/console_bench.mjs). Prints the page's main-thread CPU and
# JavaScript heap, and bellhop's CPU and memory, as one JSON line (docs/console.md).
#   bench/run_console_bench.sh [BELLHOP_BINARY]       (default build/release/gateway/bellhop)
# Needs redis-server, chromium and `npm ci` in tests/browser. Loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."
bellhop=${1:-build/release/gateway/bellhop}
[ -x "$bellhop" ] || { echo "no $bellhop" >&2; exit 1; }
dir=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$dir"' EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
redis_port=$(port) http_port=$(port)
redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no >"$dir/redis.log" 2>&1 &
pids+=($!)
until redis-cli -p "$redis_port" ping >/dev/null 2>&1; do sleep 0.1; done
key="console-bench-adapter-key-0123456789"
cat >"$dir/config.json" <<JSON
{"listen": "127.0.0.1:$http_port", "data_dir": "$dir/data",
 "redis": {"url": "redis://127.0.0.1:$redis_port"},
 "properties": [{"id": "hotel-berlin", "name": "Hotel Berlin", "time_zone": "Europe/Berlin"}],
 "ratelimit": {"inbound_api": ""},
 "auth": {"adapter_keys": [{"name": "bench", "key": "$key", "properties": ["*"]}],
          "jwt_secret": "console-bench-jwt-secret-0123456789abcdef"}}
JSON
"$bellhop" serve --config "$dir/config.json" >"$dir/bellhop.log" 2>&1 &
bellhop_pid=$!
pids+=($bellhop_pid)
until curl -sf "http://127.0.0.1:$http_port/readyz" >/dev/null; do sleep 0.1; done
password="console bench password"
printf '%s\n' "$password" | "$bellhop" user add ana --role staff --properties hotel-berlin \
  --config "$dir/config.json" >/dev/null
node bench/console_bench.mjs --bellhop "http://127.0.0.1:$http_port" --adapter-key "$key" \
  --password "$password" --bellhop-pid "$bellhop_pid" --conversations "${CONVERSATIONS:-500}" \
  --rate "${RATE:-20}" --duration-s "${DURATION_S:-60}"
