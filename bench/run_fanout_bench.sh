#!/usr/bin/env bash
# Fan-out benchmark of GET /v1/realtime against a fresh `bellhop serve` with its embedded Redis.
#   bench/run_fanout_bench.sh [path/to/bellhop]      (default build/release/gateway/bellhop)
# fanout_bench comes from the same build tree (<build>/bench/fanout_bench) unless
# FANOUT_BENCH=/path/to/fanout_bench is set.
#
# CONNECTIONS dashboards (default 5000) over PROPERTIES properties (100), RATE events/s (1000)
# for DURATION_S seconds (10). Prints fanout_bench's line and a summary against the targets:
# publish-to-receive p99 < 10 ms at that load, at most 16 KiB of bellhop memory per idle
# dashboard. Exit status 1 if the run failed (dashboards not all subscribed, failed posts); with
# STRICT=1 also when a target is missed. REPEAT=N: N fresh runs, then the medians. Loopback only.
set -euo pipefail
self=$(cd "$(dirname "$0")" && pwd)/$(basename "$0")
cd "$(dirname "$0")/.."

bellhop=${1:-build/release/gateway/bellhop}
bench=${FANOUT_BENCH:-$(dirname "$bellhop")/../bench/fanout_bench}
connections=${CONNECTIONS:-5000}
properties=${PROPERTIES:-100}
rate=${RATE:-1000}
duration=${DURATION_S:-10}
[ -x "$bellhop" ] || { echo "missing $bellhop (build the bellhop target)" >&2; exit 1; }
[ -x "$bench" ] || { echo "missing $bench (build the fanout_bench target)" >&2; exit 1; }
command -v curl >/dev/null || { echo "curl not found" >&2; exit 1; }
# Both ends need a file descriptor per dashboard.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt $((connections + 200)) ]; then
  echo "open-file limit $(ulimit -n) is below $((connections + 200)); lower CONNECTIONS" >&2
  exit 1
fi

# shellcheck source=bench/bench_lib.sh
. bench/bench_lib.sh
if [ "${REPEAT:-1}" -gt 1 ] && [ -z "${BENCH_REPEATING:-}" ]; then
  bench_repeat "$REPEAT" "$self" "$@"
  echo "== summary of $REPEAT runs"
  bench_median '^fanout_bench ' p99_ms "publish-to-receive p99 (ms, target < 10)"
  bench_median '^fanout_bench ' p50_ms "publish-to-receive p50 (ms)"
  bench_median '^fanout_bench ' deliveries_per_s "deliveries/s"
  bench_median '^fanout_bench ' bytes_per_idle_connection "bytes per idle dashboard (target <= 16384)"
  exit 0
fi
bench_start_bellhop fanout-bench \
  "\"realtime\": { \"max_connections\": $((connections + 100)) }, \"http\": { \"max_connections\": $((connections + 100)), \"max_connections_per_ip\": $((connections + 100)) }"
token=$("$bellhop" gen-token --config "$dir/config.json" --sub fanout-bench --properties '*' --ttl 1h)
echo "== bellhop $("$bellhop" version 2>/dev/null | head -1) on $url (embedded Redis on $redis_port)"
echo "== $connections dashboards over $properties properties, $rate events/s for $duration s"
echo "== load before: $(uptime)"
out=$("$bench" --port "$http_port" --token "$token" --key "$key" --bellhop-pid "$bellhop_pid" \
      --connections "$connections" --properties "$properties" --rate "$rate" \
      --duration-s "$duration") && rc=0 || rc=$?
echo "$out"
echo "== load after: $(uptime)"
field() { echo "$out" | tr ' ' '\n' | sed -n "s/^$1=//p"; }
p99=$(field p99_ms)
per_conn=$(field bytes_per_idle_connection)
missed=0
if awk -v p="$p99" 'BEGIN { exit !(p < 10) }'; then v=PASS; else v=FAIL; missed=1; fi
echo "$v  publish-to-receive p99 = $p99 ms (target < 10 ms); $(field deliveries_per_s) deliveries/s, missing $(field missing)"
if awk -v b="$per_conn" 'BEGIN { exit !(b >= 0 && b <= 16384) }'; then v=PASS; else v=FAIL; missed=1; fi
echo "$v  memory per idle dashboard = $per_conn bytes (target <= 16384)"
warnings=$(grep -ciE '\b(warn|warning|error)\b' "$dir/bellhop.log" || true)
[ "$warnings" = 0 ] || { echo "note: bellhop logged $warnings warning/error lines:"; grep -iE '\b(warn|warning|error)\b' "$dir/bellhop.log" | head -5; }
[ "$rc" = 0 ] || exit 1
if [ "${STRICT:-0}" = 1 ] && [ "$missed" = 1 ]; then exit 1; fi
exit 0
