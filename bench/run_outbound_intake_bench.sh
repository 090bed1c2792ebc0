#!/usr/bin/env bash
# Outbound intake benchmark (docs/outbound.md, "Intake"): how fast `bellhop serve` files what
# engines LPUSH onto outbound:<channel>, and how soon a reply pushed behind a campaign is filed,
# with the channel paused so no send competes (the intake goes on while a channel is paused).
#   bench/run_outbound_intake_bench.sh [AFTER [BEFORE]]
#     AFTER  the bellhop to measure (default build/release/gateway/bellhop)
#     BEFORE another bellhop to compare with (e.g. a build of the base commit in build/base),
#            run alternately with AFTER, REPEAT times each
# Each run: a fresh bellhop (embedded Redis), BULK (default 50000) bulk messages (priority 10)
# pushed in one EVAL, then one reply (priority 3) right behind them. Reports per run:
#   reply_filed_ms   from the reply's push until it is in the ready set
#   filed_before     bulk messages filed before the reply (its arrival number in the ready set)
#   intake_per_s     elements filed per second, from the start of the bulk push to the last one
# then medians and AFTER/BEFORE ratios, and PASS/FAIL for the reply filed within 200 ms
# (issue 18: a reply behind a 50,000-message campaign reaches the provider within 200 ms; the
# send itself is bench/run_outbound_bench.sh's priority phase). Loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."
after=${1:-build/release/gateway/bellhop}
before=${2:-}
bulk=${BULK:-50000}
repeat=${REPEAT:-3}
command -v redis-cli >/dev/null || { echo "redis-cli not found" >&2; exit 1; }
for b in "$after" $before; do [ -x "$b" ] || { echo "missing $b" >&2; exit 1; }; done
# shellcheck source=bench/bench_lib.sh
. bench/bench_lib.sh

now_ms() { local t=${EPOCHREALTIME/./}; echo $((t / 1000)); }

# run_once BELLHOP: prints "reply_filed_ms=… filed_before=… intake_per_s=…"
run_once() {
  bellhop=$1
  bench_start_bellhop outbound-intake-bench "\"channels\": {\"whatsapp\": {\"app_secret\": \"s\",
    \"verify_token\": \"v\", \"access_token\": \"t\", \"phone_number_id\": \"1000\",
    \"property_id\": \"bench-1\", \"service_window_s\": 0,
    \"api_base_url\": \"http://127.0.0.1:9/v21.0\"}}"
  rcli SET outbound:whatsapp:paused 1 >/dev/null
  local t_start t0 t_reply="" t_all="" n=$((bulk + 1)) score accepted
  t_start=$(now_ms)
  rcli EVAL "for i = 1, tonumber(ARGV[1]) do redis.call('LPUSH', KEYS[1], '{\"property_id\":\"bench-1\",\"channel\":\"whatsapp\",\"to\":\"+49151' .. (10000000 + i) .. '\",\"text\":\"Our spring offer\",\"priority\":10}') end" \
    1 outbound:whatsapp "$bulk" >/dev/null
  t0=$(now_ms)
  rcli LPUSH outbound:whatsapp '{"property_id":"bench-1","channel":"whatsapp","to":"+4915200000001","text":"conversational reply","priority":3}' >/dev/null
  # The polls start no process (a redis-cli or two and a sleep each 10 ms took much of the two
  # cores from the intake measured).
  redis_session
  for _ in $(seq 12000); do  # up to about 2 minutes
    if [ -z "$t_reply" ]; then
      rask ZCOUNT outbound:whatsapp:ready 3000000000000 3999999999999
      [ "$reply" = 1 ] && t_reply=$(now_ms)
    fi
    rask HGET outbound:whatsapp:stats accepted
    accepted=$reply
    if [ "${accepted:-0}" -ge "$n" ]; then t_all=$(now_ms); break; fi
    nap 0.01
  done
  redis_session_end
  [ -n "$t_reply" ] || t_reply=$t_all
  score=$(rcli ZSCORE outbound:whatsapp:ready \
    "$(rcli ZRANGEBYSCORE outbound:whatsapp:ready 3000000000000 3999999999999 LIMIT 0 1)")
  # COMMANDSTATS=1: where Redis spent its time (to stderr)
  [ -n "${COMMANDSTATS:-}" ] && rcli INFO commandstats | grep -E "calls=[0-9]{3,}" >&2
  kill -TERM "$bellhop_pid"; wait "$bellhop_pid" 2>/dev/null || true; bellhop_pid=""
  rm -rf "$dir"; dir=""
  if [ -z "$t_all" ]; then echo "not_all_filed accepted=${accepted:-0} of $n"; return; fi
  awk -v s="$score" -v t0="$t0" -v tr="$t_reply" -v ts="$t_start" -v ta="$t_all" -v n="$n" 'BEGIN {
    printf "reply_filed_ms=%d filed_before=%d intake_per_s=%.0f\n", tr - t0, s - 3e12 - 1, n * 1000 / (ta - ts) }'
}

declare -A results
labels=(after)
[ -n "$before" ] && labels=(before after)
echo "== intake: $bulk bulk messages, then 1 reply behind them, channel paused; $repeat runs each"
for ((run = 1; run <= repeat; run++)); do
  for label in "${labels[@]}"; do
    bin=$after
    [ "$label" = before ] && bin=$before
    out=$(run_once "$bin")
    echo "run $run $label: $out"
    results[$label]+="$out"$'\n'
  done
done
# median LABEL FIELD
median() {
  echo "${results[$1]}" | tr ' ' '\n' | sed -n "s/^$2=//p" | sort -g |
    awk '{ v[++n] = $1 } END { if (n) print (n % 2) ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2 }'
}
for label in "${labels[@]}"; do
  echo "outbound_intake_bench $label reply_filed_ms_median=$(median "$label" reply_filed_ms)" \
       "filed_before_median=$(median "$label" filed_before)" \
       "intake_per_s_median=$(median "$label" intake_per_s)"
done
a_reply=$(median after reply_filed_ms)
if [ -n "$before" ]; then
  b_reply=$(median before reply_filed_ms)
  awk -v a="$(median after intake_per_s)" -v b="$(median before intake_per_s)" -v ar="$a_reply" -v br="$b_reply" 'BEGIN {
    if (b > 0 && ar > 0) printf "outbound_intake_bench ratio intake_per_s after/before=%.1fx reply_filed_ms before/after=%.1fx\n", a / b, br / ar }'
fi
awk -v r="$a_reply" 'BEGIN { if (r != "" && r <= 200) print "outbound_intake_bench PASS reply filed within 200 ms (median " r " ms)";
                             else print "outbound_intake_bench FAIL reply filed in " r " ms (target 200)" }'
