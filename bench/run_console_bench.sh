#!/usr/bin/env bash
# The operations console under load (docs/console.md, "Figures"): a fresh `bellhop serve` with
# its embedded Redis, a staff account of that property, CONVERSATIONS conversations (default 500) on one
# property, then RATE guest messages/s (20) for DURATION_S seconds (60) while the inbox is open
# in Debian's Chromium. Prints bench/console_bench.mjs's line: sign-in to first
# live message, post-to-shown latency p50/p99, the page's CPU and JS heap, Bellhop's CPU and
# RSS. REPEAT=N: N fresh runs, then the medians. Loopback only.
#   bench/run_console_bench.sh [path/to/bellhop]      (default build/release/gateway/bellhop)
# Needs the npm packages of tests/browser (test.sh installs them) and /usr/bin/chromium.
set -euo pipefail
self=$(cd "$(dirname "$0")" && pwd)/$(basename "$0")
cd "$(dirname "$0")/.."

bellhop=${1:-build/release/gateway/bellhop}
[ -x "$bellhop" ] || { echo "missing $bellhop (build the bellhop target)" >&2; exit 1; }
[ -d tests/browser/node_modules/playwright-core ] ||
  { echo "missing tests/browser/node_modules (cd tests/browser && npm ci)" >&2; exit 1; }
command -v curl >/dev/null || { echo "curl not found" >&2; exit 1; }

# shellcheck source=bench/bench_lib.sh
. bench/bench_lib.sh
if [ "${REPEAT:-1}" -gt 1 ] && [ -z "${BENCH_REPEATING:-}" ]; then
  bench_repeat "$REPEAT" "$self" "$@"
  echo "== summary of $REPEAT runs"
  for f in signin_to_first_live_ms p50_ms p99_ms page_cpu_pct page_js_heap_mb \
           bellhop_cpu_pct bellhop_rss_mb; do
    bench_median '^console_bench ' "$f" "$f"
  done
  exit 0
fi
bench_start_bellhop console-bench \
  "\"properties\": [ { \"id\": \"hotel-berlin\", \"name\": \"Hotel Berlin\", \"time_zone\": \"Europe/Berlin\" } ]"
secret >"$dir/password"
chmod 600 "$dir/password"
"$bellhop" user add bench-staff --role staff --properties hotel-berlin --config "$dir/config.json" \
  <"$dir/password" >/dev/null
echo "== bellhop $("$bellhop" version 2>/dev/null | head -1) on $url"
echo "== ${CONVERSATIONS:-500} conversations, ${RATE:-20} messages/s for ${DURATION_S:-60} s"
echo "== load before: $(uptime)"
node bench/console_bench.mjs --url "$url" --key "$key" --user bench-staff \
  --password-file "$dir/password" --property hotel-berlin --bellhop-pid "$bellhop_pid" \
  --conversations "${CONVERSATIONS:-500}" --rate "${RATE:-20}" --duration-s "${DURATION_S:-60}"
echo "== load after: $(uptime)"
