#!/usr/bin/env bash
# Ingest benchmark of POST /v1/messages/inbound against a fresh `bellhop serve` with its
# embedded Redis, in a temporary data dir on free loopback ports.
#   bench/run_ingest_bench.sh [path/to/bellhop]      (default build/release/gateway/bellhop)
# ingest_bench is taken from the same build tree (<build>/bench/ingest_bench) unless
# INGEST_BENCH=/path/to/ingest_bench is set.
#
# Runs: fixed offered rate (RATE, default 5000/s) for DURATION_S (default 10 s), then
# saturation for DURATION_S; prints both result lines, a summary against the targets
# (p99 < 5 ms at 5,000/s offered; saturation > 15,000/s), and checks that
# LLEN inbound:messages equals the number of 202 answers.
# Exit status: 0, or 1 if the LLEN check fails or something could not run; with STRICT=1 also 1
# when a target is missed. REPEAT=N: N fresh runs, then the medians. Other knobs: RATE, DURATION_S, CONNECTIONS (fixed rate, default 32),
# SAT_CONNECTIONS (saturation, default 128), TIMELINE_MS (> 0: print
# ingest_bench_timeline lines, answers and worst latency per interval, to locate stalls). Loopback only; bellhop gets SIGTERM on every exit path.
set -euo pipefail
self=$(cd "$(dirname "$0")" && pwd)/$(basename "$0")
cd "$(dirname "$0")/.."

bellhop=${1:-build/release/gateway/bellhop}
bench=${INGEST_BENCH:-$(dirname "$bellhop")/../bench/ingest_bench}
rate=${RATE:-5000}
duration=${DURATION_S:-10}
connections=${CONNECTIONS:-32}          # fixed-rate phase (open loop: enough to carry RATE)
sat_connections=${SAT_CONNECTIONS:-128}  # saturation phase (closed loop: enough to saturate)
[ -x "$bellhop" ] || { echo "missing $bellhop (build the bellhop target)" >&2; exit 1; }
[ -x "$bench" ] || { echo "missing $bench (build the ingest_bench target, or set INGEST_BENCH)" >&2; exit 1; }
for tool in curl redis-cli; do
  command -v "$tool" >/dev/null || { echo "$tool not found" >&2; exit 1; }
done

# shellcheck source=bench/bench_lib.sh
. bench/bench_lib.sh
if [ "${REPEAT:-1}" -gt 1 ] && [ -z "${BENCH_REPEATING:-}" ]; then
  bench_repeat "$REPEAT" "$self" "$@"
  echo "== summary of $REPEAT runs"
  bench_median '^ingest_bench mode=rate' p99_ms "p99 at the fixed rate (ms, target < 5)"
  bench_median '^ingest_bench mode=saturation' accepted_per_s "saturation (accepted/s, target > 15000)"
  bench_median '^ref ' share "bellhop's saturation as a share of Redis alone"
  exit 0
fi
bench_start_bellhop ingest-bench ""
echo "== bellhop $("$bellhop" version 2>/dev/null | head -1) on $url (embedded Redis on $redis_port, data $data)"
echo "== load before: $(uptime)"

# Machine-wide busy (user+nice+system+irq+softirq) and steal ticks, summed over all CPUs.
machine() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8, $9 }' /proc/stat; }
ncpu=$(nproc)
redis_pid=$(echo "$children" | head -1)

# Runs ingest_bench with "$@"; prints its output and the CPU it and the server side used.
run() {
  local b0 r0 b1 r1 m0 m1 t0 t1 out sent
  b0=$(ticks "$bellhop_pid"); r0=$(ticks "${redis_pid:-0}"); m0=$(machine); t0=$(date +%s.%N)
  if ! out=$( { TIMEFORMAT='%3U %3S'; time "$bench" --url "$url" --key "$key" \
           --duration-s "$duration" \
           ${TIMELINE_MS:+--timeline-ms "$TIMELINE_MS"} "$@" 2>"$dir/bench.err"; } \
           2>"$dir/time" ); then
    echo "ingest_bench failed:" >&2
    cat "$dir/bench.err" >&2
    return 1
  fi
  b1=$(ticks "$bellhop_pid"); r1=$(ticks "${redis_pid:-0}"); m1=$(machine); t1=$(date +%s.%N)
  echo "$out"
  sent=$(field "$out" ingest_bench_totals sent)
  awk -v b=$((b1 - b0)) -v r=$((r1 - r0)) -v hz="$hz" -v n="${sent:-0}" \
      -v t="$(tail -1 "$dir/time")" -v m0="$m0" -v m1="$m1" -v w="$t0 $t1" -v ncpu="$ncpu" 'BEGIN {
    split(t, c, " "); g = c[1] + c[2]; b /= hz; r /= hz; if (n < 1) n = 1;
    split(m0, x, " "); split(m1, y, " "); split(w, z, " ");
    busy = (y[1] - x[1]) / hz; steal = (y[2] - x[2]) / hz; wall = z[2] - z[1];
    printf "cpu_s bellhop=%.2f redis=%.2f ingest_bench=%.2f  us_per_request bellhop=%.1f redis=%.1f ingest_bench=%.1f\n",
           b, r, g, b * 1e6 / n, r * 1e6 / n, g * 1e6 / n
    other = busy - b - r - g; if (other < 0) other = 0
    printf "machine: %d cpus x %.1f s wall; busy %.2f cpu_s, of which other processes %.2f, steal %.2f\n",
           ncpu, wall, busy, other, steal }'
}

echo "== rate ${rate}/s for ${duration} s, $connections connections"
rate_out=$(run --rate "$rate" --connections "$connections") || exit 1
echo "$rate_out"
echo "== load: $(uptime)"
echo "== saturation for ${duration} s, $sat_connections connections"
sat_out=$(run --rate 0 --connections "$sat_connections") || exit 1
echo "$sat_out"
# Group commit: messages per call of the ingest script, over both phases.
curl -fsS "$url/metrics" 2>/dev/null | awk '
  /^bellhop_inbound_batch_messages_sum / { s = $2 } /^bellhop_inbound_batch_messages_count / { c = $2 }
  END { if (c > 0) printf "ingest script calls: %d for %d messages, %.2f messages per call\n", c, s, s / c }'
echo "== load after: $(uptime)"

rate_p99=$(field "$rate_out" ingest_bench p99_ms)
rate_acc=$(field "$rate_out" ingest_bench accepted_per_s)
sat_rps=$(field "$sat_out" ingest_bench accepted_per_s)
sat_p99=$(field "$sat_out" ingest_bench p99_ms)
issues=0
for out in "$rate_out" "$sat_out"; do
  e=$(field "$out" ingest_bench errors)
  n=$(field "$out" ingest_bench non_202)
  if [ "$e" != 0 ] || [ "$n" != 0 ]; then
    issues=1
    echo "note: errors=$e non_202=$n ($(field "$out" ingest_bench non_202_codes)," \
      "kinds $(field "$out" ingest_bench_totals error_kinds))"
  fi
done

echo "== summary"
missed=0
# The latency target only counts if the offered rate was really accepted, without failures.
rate_bad=$(( $(field "$rate_out" ingest_bench errors) + $(field "$rate_out" ingest_bench non_202) ))
if awk -v p="$rate_p99" -v a="$rate_acc" -v r="$rate" -v bad="$rate_bad" \
     'BEGIN { exit !(p < 5 && a >= 0.98 * r && bad == 0) }'; then
  verdict=PASS
else
  verdict=FAIL; missed=1
fi
printf '%s  p99 at %s/s offered = %s ms (target < 5 ms); accepted %s/s, %s errors/non-202\n' \
  "$verdict" "$rate" "$rate_p99" "$rate_acc" "$rate_bad"
if awk -v r="$sat_rps" 'BEGIN { exit !(r > 15000) }'; then verdict=PASS; else verdict=FAIL; missed=1; fi
printf '%s  saturation = %s accepted/s (target > 15,000/s); p99 %s ms\n' "$verdict" "$sat_rps" "$sat_p99"

# Every 202 must be in the queue (no consumer runs during the benchmark).
s202=$(( $(field "$rate_out" ingest_bench_totals status_202) + $(field "$sat_out" ingest_bench_totals status_202) ))
llen=$(redis-cli -s "$data/redis.sock" -a "$(cat "$data/redis.password")" --no-auth-warning \
  LLEN inbound:messages)
if [ "$llen" = "$s202" ]; then
  echo "PASS  LLEN inbound:messages = $llen = 202 answers ($s202)"
  llen_ok=1
else
  echo "FAIL  LLEN inbound:messages = $llen, but $s202 answers were 202" \
    "(client-side timeouts can leave queued messages without a 202 seen)"
  llen_ok=0
fi
# Reference in the same run, on the same machine and Redis: Redis alone running the same
# ingest.lua (EVALSHA, pipelined -P 16, 50 clients) with an envelope of the generator's size,
# on keys of its own. Bellhop's saturation over this rate is the share of Redis's own ceiling
# that the whole HTTP path keeps; unlike absolute rates it varies little with machine load.
if command -v redis-benchmark >/dev/null; then
  envelope='{"id":"01KBREF0000000__rand_int__","property_id":"bench-1","channel":"whatsapp","external_id":"bench-ref-__rand_int__","from":"+491500000001","to":"+4930123456","guest_name":null,"text":"Hello, is a late checkout possible tomorrow? Request 00000001.","content_type":"text","attachments":[],"sent_at":null,"metadata":{},"conversation_id":"c_0123456789abcdef0123456789abcdef","received_at":"2026-11-27T21:00:00.123Z","direction":"inbound"}'
  rcli() { redis-cli -s "$data/redis.sock" -a "$(cat "$data/redis.password")" --no-auth-warning "$@"; }
  script=$(bench_lua_script inbound ingest.lua)
  sha=$(rcli SCRIPT LOAD "$script")
  # One message per call (the script's layout: KEYS inbound + 8 per message, ARGV 6 common +
  # 10 per message).
  ref_rps=$(redis-benchmark -s "$data/redis.sock" -a "$(cat "$data/redis.password")" \
      -n 200000 -P 16 -c 50 -r 1000000000 -q \
      EVALSHA "$sha" 9 refbench:inbound "refbench:dedup:bench-1:__rand_int__" "refbench:message:__rand_int__" \
      refbench:seq refbench:events refbench:conversation_index "refbench:conversation:__rand_int__" \
      "refbench:conversation:__rand_int__:messages" "refbench:dedup:__rand_int__" \
      604800 604800 10000 2592000 50 refbench:message: \
      "01KBREF__rand_int__" "$envelope" refbench:conversations bench-1 whatsapp \
      c_0123456789abcdef0123456789abcdef 2026-11-27T21:00:00.123Z 1795824000123 +491500000001 "" \
      2>/dev/null | tr '\r' '\n' | grep -o '[0-9.]* requests per second' | tail -1 | cut -d' ' -f1)
  if [ -n "$ref_rps" ]; then
    awk -v b="$sat_rps" -v r="$ref_rps" 'BEGIN {
      printf "ref   Redis alone, same ingest.lua, one message per call, same run (redis-benchmark -P 16): %.0f/s; " \
             "bellhop end to end at saturation: %.0f/s share=%.2f of it\n", r, b, b / r }'
  else
    echo "note: the redis-benchmark reference did not run"
  fi
fi
warnings=$(grep -ciE '\b(warn|warning|error|critical)\b' "$dir/bellhop.log" || true)
if [ "$warnings" != 0 ]; then
  echo "note: bellhop logged $warnings warning/error lines:"
  grep -iE '\b(warn|warning|error|critical)\b' "$dir/bellhop.log" | head -10
fi

[ "$llen_ok" = 1 ] || exit 1
if [ "${STRICT:-0}" = 1 ] && { [ "$missed" = 1 ] || [ "$issues" = 1 ]; }; then exit 1; fi
exit 0
