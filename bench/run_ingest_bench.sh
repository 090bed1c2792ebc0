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
# when a target is missed. REPEAT=N: N fresh runs, then the medians.
# BASE=<build dir of an earlier build> (e.g. of the commit before a change, built with the
# bellhop and ingest_bench targets) and BASE_SRC=<its source tree> (default BASE/../..): the
# earlier build and this one alternate, REPEAT (default 3) runs each, then their medians side by
# side with the ratio this/earlier, each with the Redis-alone figure of its own ingest.lua.
# LIMIT=1: the inbound API's rate limit on (a policy no run reaches), to see what the check
# costs. Other knobs: RATE, DURATION_S, CONNECTIONS (fixed rate, default 32),
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
if [ -n "${BASE:-}" ] && [ -z "${BENCH_REPEATING:-}" ]; then
  base_src=${BASE_SRC:-$BASE/../..}
  [ -x "$BASE/gateway/bellhop" ] && [ -x "$BASE/bench/ingest_bench" ] ||
    { echo "missing $BASE/gateway/bellhop or $BASE/bench/ingest_bench" >&2; exit 1; }
  [ -f "$base_src/inbound/lua/ingest.lua" ] || { echo "missing $base_src/inbound/lua/ingest.lua" >&2; exit 1; }
  rounds=${REPEAT:-3}
  base_out="" this_out=""
  for ((round = 1; round <= rounds; round++)); do
    echo "== round $round of $rounds: earlier build ($BASE)"
    out=$(BENCH_REPEATING=1 INGEST_BENCH="$BASE/bench/ingest_bench" REF_SRC="$base_src" \
          "$self" "$BASE/gateway/bellhop" 2>&1) || true
    echo "$out"; base_out+="$out"$'\n'
    echo "== round $round of $rounds: this build ($bellhop)"
    out=$(BENCH_REPEATING=1 "$self" "$@" 2>&1) || true
    echo "$out"; this_out+="$out"$'\n'
  done
  median_of() {  # TEXT REGEX FIELD
    echo "$1" | { grep -E "$2" || true; } | tr ' ' '\n' | sed -n "s/^$3=//p" | sort -g |
      awk '{ v[NR] = $1 } END { if (!NR) print "-"; else if (NR % 2) print v[(NR + 1) / 2];
                                else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
  }
  echo "== summary: medians of $rounds alternating runs each"
  printf '%-52s %12s %12s %8s\n' "" "earlier" "this" "ratio"
  row() {  # LABEL REGEX FIELD
    local a b
    a=$(median_of "$base_out" "$2" "$3"); b=$(median_of "$this_out" "$2" "$3")
    printf '%-52s %12s %12s %8s\n' "$1" "$a" "$b" \
      "$(awk -v x="$a" -v y="$b" 'BEGIN { if (x + 0 > 0 && y != "-") printf "%.2f", y / x; else print "-" }')"
  }
  row "saturation, accepted/s" '^ingest_bench mode=saturation' accepted_per_s
  row "p99 ms at ${RATE:-5000}/s offered" '^ingest_bench mode=rate' p99_ms
  row "p50 ms at ${RATE:-5000}/s offered" '^ingest_bench mode=rate' p50_ms
  # With LIMIT=1 the earlier ingest.lua may not hold the check (it was a script call of its own).
  row "Redis alone, its ingest.lua, messages/s" '^ref ' redis_alone_per_s
  row "Redis CPU us per message at saturation" '^sat_cpu ' redis_us_per_request
  row "bellhop's saturation / Redis alone" '^ref ' share
  exit 0
fi
if [ "${REPEAT:-1}" -gt 1 ] && [ -z "${BENCH_REPEATING:-}" ]; then
  bench_repeat "$REPEAT" "$self" "$@"
  echo "== summary of $REPEAT runs"
  bench_median '^ingest_bench mode=rate' p99_ms "p99 at the fixed rate (ms, target < 5)"
  bench_median '^ingest_bench mode=saturation' accepted_per_s "saturation (accepted/s, target > 15000)"
  bench_median '^ref ' redis_alone_per_s "Redis alone running ingest.lua (messages/s)"
  bench_median '^ref ' share "bellhop's saturation as a share of Redis alone"
  exit 0
fi
limit_config=""
if [ "${LIMIT:-0}" = 1 ]; then
  limit_config='"ratelimit": { "inbound_api": "bench", "policies": { "bench": { "algorithm": "fixed_window", "limit": 100000000, "window_ms": 3600000 } } }'
fi
bench_start_bellhop ingest-bench "$limit_config"
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
    printf "cpu_s bellhop=%.2f redis=%.2f ingest_bench=%.2f  us_per_request bellhop=%.1f redis=%.1f ingest_bench=%.1f redis_us_per_request=%.1f\n",
           b, r, g, b * 1e6 / n, r * 1e6 / n, g * 1e6 / n, r * 1e6 / n
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
echo "$sat_out" | grep '^cpu_s ' | sed 's/^cpu_s /sat_cpu /'
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
llen=$(rcli LLEN inbound:messages)
if [ "$llen" = "$s202" ]; then
  echo "PASS  LLEN inbound:messages = $llen = 202 answers ($s202)"
  llen_ok=1
else
  echo "FAIL  LLEN inbound:messages = $llen, but $s202 answers were 202" \
    "(client-side timeouts can leave queued messages without a 202 seen)"
  llen_ok=0
fi
# Reference in the same run, on the same machine and Redis: Redis alone running the same
# ingest.lua (EVALSHA, redis-benchmark -P 4, 8 clients) with calls of 32 messages (what the
# batcher sends under load): envelopes of the generator's size, 32 conversations of 10
# properties that exist after the first call (as the generator's do), new ids and external ids
# each call, on keys of their own; with LIMIT=1 each message also carries the rate limit.
# Bellhop's saturation over this rate is the share of Redis's own ceiling that the whole HTTP
# path keeps; unlike absolute rates it varies little with machine load. REF_SRC: the source tree
# whose ingest.lua runs (default this one; the layout of its arguments is read from the script).
ref_batch=32
if command -v redis-benchmark >/dev/null; then
  envelope='{"id":"01KBREF0000000__rand_int__","property_id":"bench-1","channel":"whatsapp","external_id":"bench-ref-__rand_int__","from":"+491500000001","to":"+4930123456","guest_name":null,"text":"Hello, is a late checkout possible tomorrow? Request 00000001.","content_type":"text","attachments":[],"sent_at":null,"metadata":{},"conversation_id":"c_0123456789abcdef0123456789abcdef","received_at":"2026-11-27T21:00:00.123Z","direction":"inbound","conversation_mode":"ai"}'
  script=$(cd "${REF_SRC:-.}" && bench_lua_script inbound ingest.lua)
  sha=$(rcli SCRIPT LOAD "$script")
  # The layout: KEYS inbound, [rate-limit keys,] then 10 per message; ARGV 6 common, [the count
  # of limit keys and 4 per key,] then 11 per message [+ its limit key].
  limited=0
  grep -q 'local LIMITS = tonumber(ARGV\[7\])' <<<"$script" && limited=1
  ref_keys=(refbench:inbound) ref_args=(604800 604800 10000 2592000 50 refbench:message:)
  if [ "$limited" = 1 ]; then
    if [ "${LIMIT:-0}" = 1 ]; then
      ref_keys+=(refbench:ratelimit:bench:ref); ref_args+=(1 fixed_window 100000000 3600000 100000000)
    else
      ref_args+=(0)
    fi
  fi
  for ((j = 0; j < ref_batch; j++)); do
    p=bench-$((j % 10)) c=c_ref$j u=__rand_int____rand_int__
    ref_keys+=("refbench:dedup:$p:whatsapp:$u" "refbench:message:m$j-$u" "refbench:property:$p:seq"
      "refbench:property:$p:events" "refbench:property:$p:conversation_index"
      "refbench:conversation:$c" "refbench:conversation:$c:messages" "refbench:dedup:whatsapp:$u"
      "refbench:property:$p:unread" "refbench:property:$p:escalation")
    ref_args+=("m$j-$u" "$envelope" "refbench:property:$p:live" "$p" whatsapp "$c"
      2026-11-27T21:00:00.123Z 1795824000123 +491500000001 "" "")
    [ "$limited" = 1 ] && ref_args+=("${LIMIT:-0}")
  done
  ref_calls=${REF_CALLS:-4000}
  ref_rps=$(redis-benchmark -s "$data/redis.sock" -a "$(cat "$data/redis.password")" \
      -n "$ref_calls" -P 4 -c 8 -r 100000 -q EVALSHA "$sha" "${#ref_keys[@]}" "${ref_keys[@]}" \
      "${ref_args[@]}" 2>/dev/null | tr '\r' '\n' | grep -o '[0-9.]* requests per second' |
      tail -1 | cut -d' ' -f1)
  ref_stored=$(rcli LLEN refbench:inbound)
  if [ -n "$ref_rps" ] && [ "$ref_stored" -ge $((ref_calls * ref_batch * 99 / 100)) ]; then
    awk -v b="$sat_rps" -v r="$ref_rps" -v n="$ref_batch" 'BEGIN {
      printf "ref redis_alone_per_s=%.0f calls_per_s=%.0f messages_per_call=%d bellhop_saturation=%.0f share=%.2f\n", r * n, r, n, b, b / (r * n) }'
    printf 'ref   Redis alone running this ingest.lua (redis-benchmark EVALSHA, %d messages per call): %.0f messages/s; bellhop end to end at saturation: %s/s\n' \
      "$ref_batch" "$(awk -v r="$ref_rps" -v n="$ref_batch" 'BEGIN { print r * n }')" "$sat_rps"
  else
    echo "note: the redis-benchmark reference did not run (rate '$ref_rps', $ref_stored stored)"
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
