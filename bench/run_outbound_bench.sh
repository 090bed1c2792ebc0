#!/usr/bin/env bash
# Outbound benchmark: a fresh `bellhop serve` (embedded Redis, free loopback ports) sending on
# the WhatsApp lane to bench/provider_fake, a local provider that answers at once. The guests
# never wrote, so the customer-service window is off (BELLHOP_CHANNELS_WHATSAPP_SERVICE_WINDOW_S=0,
# from the environment: a build from before the window only warns about the variable, so
# bench/run_ab.sh can compare the two).
#   bench/run_outbound_bench.sh [path/to/bellhop]     (default build/release/gateway/bellhop)
# 1. Throughput: COUNT (default 20000) messages to distinct guests filed while the channel is
#    paused (the intake done first, as BullMQ's addBulk is before its Worker starts), then
#    resumed, with the provider policies raised out of the way (the limiter still runs for
#    every message): sends/s from the first to the last request the provider saw, side by side
#    with bench/bullmq_bench.mjs (a BullMQ 5 Worker with a no-op job on its own redis-server,
#    the same persistence; the best of BULLMQ_CONCURRENCY, default 50,100,200), alternating,
#    REPEAT runs each, medians, the ratio and PASS/FAIL against the issue's target (2x).
#    With BULLMQ_HTTP=1 (default) each run also times a BullMQ Worker whose job makes the same
#    send to a provider_fake of its own (bench/bullmq_bench.mjs --provider-url): what a Node
#    team's outbound worker would do per message, for reference next to the no-op figure (the
#    verdict stays against the no-op one).
#    With SENDS_ALONE=1 (default) each run also times the sends alone: bench/send_bench makes the
#    same WhatsApp requests with Bellhop's provider client to a provider_fake of its own, with no
#    Redis and no queue (the HTTP exchange only): the ceiling of any outbound design on this
#    machine, and the CPU a send costs before the queue's work.
#    Each Bellhop run also prints the script calls Redis ran while sending (evalsha), the
#    commands it ran (redis_commands: those inside scripts, without the script calls), the CPU seconds of bellhop, its Redis and the fake provider, and the line bench/run_ab.sh reads
#    ("outbound_bench sends_per_s=… recorded_per_s=…": recorded from the provider's first
#    request to the last send recorded); the summary adds each side's CPU µs per message.
# 2. Pacing: PACED (default 400) messages under the built-in whatsapp_business_number policy
#    (gcra 80/s, burst 80): the provider's busiest second and the rate after the burst.
# 3. Priority: BULK (default 50000) bulk messages (priority 10) queued at once, then REPLIES
#    (default 10) replies (priority 3) behind them: the time from the replies' push until the
#    provider has all of them (target: 200 ms), and the bulk messages it saw before the last;
#    with the limits raised and with the built-in policies, REPEAT runs each, median.
# Knobs: COUNT, PACED, CONCURRENCY (outbound.concurrency, default 512, the best measured of
# 256/512/1024 (docs/outbound.md), as BullMQ gets the best of its; the provider client keeps
# as many idle connections per origin), BULK, REPLIES, REPEAT (default 3), BULLMQ_CONCURRENCY,
# PHASES (default "throughput pacing priority"), BULLMQ=0 (throughput without BullMQ),
# SENDS_ALONE=0 (without the sends alone), PROVIDER_FAKE and SEND_BENCH (the binaries),
# BULLMQ_HTTP=0 (without the BullMQ Worker that sends), COMMANDSTATS=1 (each throughput run also
# lists, per Redis command, its calls and Redis µs per message while sending, then the same per
# script from SLOWLOG, every command logged meanwhile, to stderr).
# bench/node_modules is installed (npm ci) when missing. Loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."
bellhop=${1:-build/release/gateway/bellhop}
export BELLHOP_CHANNELS_WHATSAPP_SERVICE_WINDOW_S=0
fake=${PROVIDER_FAKE:-$(dirname "$bellhop")/../bench/provider_fake}
send_bench=${SEND_BENCH:-$(dirname "$fake")/send_bench}
count=${COUNT:-20000}
paced=${PACED:-400}
concurrency=${CONCURRENCY:-512}
[ -x "$bellhop" ] || { echo "missing $bellhop (build the bellhop target)" >&2; exit 1; }
[ -x "$fake" ] || { echo "missing $fake (build the provider_fake target)" >&2; exit 1; }
[ "${SENDS_ALONE:-1}" != 1 ] || [ -x "$send_bench" ] ||
  { echo "missing $send_bench (build the send_bench target, or SENDS_ALONE=0)" >&2; exit 1; }
command -v redis-cli >/dev/null || { echo "redis-cli not found" >&2; exit 1; }
# shellcheck source=bench/bench_lib.sh
. bench/bench_lib.sh

fake_pid=""
stop_fake() { [ -n "$fake_pid" ] && kill -TERM "$fake_pid" 2>/dev/null && wait "$fake_pid" 2>/dev/null; fake_pid=""; }
trap 'stop_fake; cleanup' EXIT

# start_fake [provider_fake options…]: a provider_fake on a free port. Sets port_file (the port;
# the fake's report goes to $port_file.out when it stops) and fake_pid.
start_fake() {
  port_file=$(mktemp "${TMPDIR:-/tmp}/provider-fake.XXXXXX")
  "$fake" --port-file "$port_file" "$@" >"$port_file.out" &
  fake_pid=$!
  for _ in $(seq 50); do [ -s "$port_file" ] && break; sleep 0.1; done
}

# start_lane POLICIES [provider_fake options…]: a provider_fake and a bellhop sending to it.
# Sets port_file (the fake's port; its report goes to $port_file.out when it stops).
start_lane() {
  local policies=$1
  shift
  start_fake "$@"
  bench_start_bellhop outbound-bench "\"outbound\": {\"concurrency\": $concurrency},
  \"ratelimit\": {\"policies\": {$policies}},
  \"channels\": {\"whatsapp\": {\"app_secret\": \"s\", \"verify_token\": \"v\", \"access_token\": \"t\",
    \"phone_number_id\": \"1000\", \"property_id\": \"bench-1\",
    \"api_base_url\": \"http://127.0.0.1:$(cat "$port_file")/v21.0\"}}"
}
stop_lane() {
  kill -TERM "$bellhop_pid"; wait "$bellhop_pid" 2>/dev/null || true; bellhop_pid=""
  stop_fake
  rm -rf "$dir"; dir=""  # its embedded Redis's files (a campaign's AOF is tens of MB)
}
# command_table BEFORE N (INFO commandstats after on stdin): per command, calls and Redis µs per
# message over the run (COMMANDSTATS=1).
command_table() {
  awk -F'[:,=]' -v n="$2" 'NR == FNR { if ($1 ~ /^cmdstat_/) { c0[$1] = $3; u0[$1] = $5 } next }
    $1 ~ /^cmdstat_/ && $3 > c0[$1] { printf "  %-28s calls/msg %6.2f  usec/msg %6.2f\n", substr($1, 9), ($3 - c0[$1]) / n, ($5 - u0[$1]) / n }' "$1" - | sort -k5 -n -r
  rm -f "$1"
}
# script_table N (SLOWLOG GET -1 as JSON on stdin, every command logged while sending): per
# script, its calls and Redis µs per message (the script's own time, its commands included).
script_table() {
  local names="" f
  for f in */lua/*.lua channels/transport/lua/*.lua; do
    [ -f "$f" ] || continue
    local module=${f%%/lua/*}
    names+="$(bench_lua_script "$module" "$(basename "$f")" | sha1sum | cut -c1-40) $(basename "$f")"$'\n'
  done
  NAMES=$names /usr/bin/python3 -c '
import json, os, sys
n = int(sys.argv[1])
names = dict(line.split(" ", 1) for line in os.environ["NAMES"].splitlines() if line)
calls, usec = {}, {}
for entry in json.load(sys.stdin):
    args = entry[3]
    name = args[0].lower()
    if name in ("evalsha", "evalsha_ro") and len(args) > 1:
        name = names.get(args[1], "script " + args[1][:8])
    calls[name] = calls.get(name, 0) + 1
    usec[name] = usec.get(name, 0) + entry[2]
for name in sorted(usec, key=usec.get, reverse=True)[:12]:
    print("  %-28s calls/msg %6.3f  usec/msg %6.2f  usec/call %8.1f" % (name, calls[name] / n, usec[name] / n, usec[name] / calls[name]))
' "$1"
}
# commands: from INFO commandstats, the commands Redis ran (those of scripts included), but the
# script calls themselves and this script's INFO and AUTH (its HGET polls, one per 50 ms, count).
commands() {
  awk -F'[:=,]' '/^cmdstat_/ && $1 !~ /^cmdstat_(evalsha|eval|info|auth)$/ { n += $3 } END { print n + 0 }'
}
# push FROM TO PRIORITY TEXT: messages FROM..TO to distinct guests, pushed by Redis itself.
push() {
  rcli EVAL "for i = ARGV[1], ARGV[2] do redis.call('LPUSH', KEYS[1], '{\"property_id\":\"bench-1\",\"channel\":\"whatsapp\",\"to\":\"+49151' .. (10000000 + i) .. '\",\"text\":\"' .. ARGV[4] .. '\",\"priority\":' .. ARGV[3] .. '}') end" \
    1 outbound:whatsapp "$1" "$2" "$3" "$4" >/dev/null
}

# run_phase N POLICIES: prints "sent=… recorded_s=… provider_fake …"
run_phase() {
  local n=$1 t0 t1 sent=0
  start_lane "$2"
  t0=$(date +%s.%N)
  # In chunks: the intake starts on the first one.
  for ((from = 0; from < n; from += 5000)); do
    push "$from" "$(( (from + 5000 < n ? from + 5000 : n) - 1 ))" 5 "Your room is ready."
  done
  for _ in $(seq 1200); do  # up to 120 s
    sent=$(rcli HGET outbound:whatsapp:stats sent)
    [ "${sent:-0}" -ge "$n" ] && break
    sleep 0.1
  done
  t1=$(date +%s.%N)
  stop_lane
  echo "sent=${sent:-0} of $n recorded_s=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }') $(cat "$port_file.out")"
  rm -f "$port_file" "$port_file.out"
}

big='{"algorithm": "fixed_window", "limit": 100000000, "window_ms": 1000}'
# run_sends N: N messages filed while the channel is paused (the intake done, as BullMQ's
# addBulk is before its Worker starts), then resumed: prints "sent=… filed_s=… evalsha=…
# provider_fake …" (evalsha: the script calls Redis ran while sending).
run_sends() {
  local n=$1 t0 t1 sent=0 filed=0 calls0 calls1 mark_file
  # Every request marked: the fake writes the wall time of the first (and the last).
  mark_file=$(mktemp -u "${TMPDIR:-/tmp}/provider-fake-mark.XXXXXX")
  start_lane "\"whatsapp_business_number\": $big, \"whatsapp_recipient\": $big" \
    --mark "Your room is ready." --mark-count "$n" --mark-file "$mark_file"
  rcli SET outbound:whatsapp:paused 1 >/dev/null
  t0=$(date +%s.%N)
  for ((from = 0; from < n; from += 5000)); do
    push "$from" "$(( (from + 5000 < n ? from + 5000 : n) - 1 ))" 5 "Your room is ready."
  done
  for _ in $(seq 1200); do  # up to 120 s
    filed=$(rcli ZCARD outbound:whatsapp:ready)
    [ "${filed:-0}" -ge "$n" ] && break
    sleep 0.1
  done
  t1=$(date +%s.%N)
  local filed_s
  filed_s=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
  calls0=$(rcli INFO commandstats | sed -n 's/^cmdstat_evalsha:calls=\([0-9]*\).*/\1/p')
  commands0=$(rcli INFO commandstats | commands)
  if [ "${COMMANDSTATS:-0}" = 1 ]; then
    rcli INFO commandstats | tr -d '\r' >"$port_file.stats0"
    rcli CONFIG SET slowlog-max-len 1000000 >/dev/null
    rcli CONFIG SET slowlog-log-slower-than 0 >/dev/null
    rcli SLOWLOG RESET >/dev/null
  fi
  local redis_pid b0 r0 f0
  redis_pid=$(echo "$children" | head -1)
  b0=$(ticks "$bellhop_pid") r0=$(ticks "$redis_pid") f0=$(ticks "$fake_pid")
  rcli DEL outbound:whatsapp:paused >/dev/null
  # While sending, the wait starts no process (a redis-cli and a sleep every 50 ms took some 7 %
  # of the two cores from what is measured; the BullMQ bench polls nothing): the provider's
  # report of the last request first, then the recording of the outcomes.
  for _ in $(seq 2400); do [ -s "$mark_file" ] && break; nap 0.05; done  # up to 120 s
  for _ in $(seq 1200); do
    sent=$(rcli HGET outbound:whatsapp:stats sent)
    [ "${sent:-0}" -ge "$n" ] && break
    nap 0.05
  done
  # From the first request the provider saw until every send was recorded (to this poll's 50 ms).
  local recorded_s=0 done_ms
  done_ms=$(date +%s%3N)
  [ -s "$mark_file" ] && recorded_s=$(awk -v end="$done_ms" '{ for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] } }
    END { printf "%.3f", (end - v["first_marked_ms"]) / 1000 }' "$mark_file")
  rm -f "$mark_file"
  calls1=$(rcli INFO commandstats | sed -n 's/^cmdstat_evalsha:calls=\([0-9]*\).*/\1/p')
  commands1=$(rcli INFO commandstats | commands)
  if [ "${COMMANDSTATS:-0}" = 1 ]; then
    rcli INFO commandstats | tr -d '\r' | command_table "$port_file.stats0" "$n" >&2
    rcli -2 --json SLOWLOG GET -1 | script_table "$n" >&2
  fi
  local cpu
  cpu="cpu_s_bellhop=$(( $(ticks "$bellhop_pid") - b0 )) redis=$(( $(ticks "$redis_pid") - r0 )) fake=$(( $(ticks "$fake_pid") - f0 ))"
  cpu=$(echo "$cpu" | awk -v hz="$hz" '{ for (i = 1; i <= NF; i++) { split($i, kv, "="); printf "%s%s=%.2f", (i > 1 ? " " : ""), kv[1], kv[2] / hz } }')
  stop_lane
  echo "sent=${sent:-0} of $n filed_s=$filed_s recorded_s=$recorded_s evalsha=$((calls1 - calls0)) redis_commands=$((commands1 - commands0)) $cpu $(cat "$port_file.out")"
  rm -f "$port_file" "$port_file.out"
}

# sends_alone N: bench/send_bench's N sends to a provider_fake of its own at `concurrency`, no
# Redis: prints send_bench's line and the fake's CPU seconds (fake_cpu_s=…) and report.
sends_alone() {
  local out f0
  start_fake
  f0=$(ticks "$fake_pid")
  out=$("$send_bench" --url "http://127.0.0.1:$(cat "$port_file")/v21.0" --count "$1" \
          --concurrency "$concurrency" || true)
  local f1
  f1=$(ticks "$fake_pid")
  stop_fake
  echo "$out fake_cpu_s=$(awk -v t=$((f1 - f0)) -v hz="$hz" 'BEGIN { printf "%.2f", t / hz }') $(cat "$port_file.out")"
  rm -f "$port_file" "$port_file.out"
}

repeat=${REPEAT:-3}
with_sends_alone=${SENDS_ALONE:-1}
alone_rates=()
alone_cpus=()
phases=" ${PHASES:-throughput pacing priority} "
with_bullmq=${BULLMQ:-1}
with_bullmq_http=${BULLMQ_HTTP:-1}
bullmq_concurrency=${BULLMQ_CONCURRENCY:-50,100,200}
if [[ $phases == *" throughput "* ]]; then
if [ "$with_bullmq" = 1 ] && [ ! -d bench/node_modules ]; then
  (cd bench && npm ci --no-audit --no-fund >/dev/null) || { echo "npm ci in bench/ failed" >&2; exit 1; }
fi
echo "== throughput: $count messages filed, then sent at concurrency $concurrency (limits raised, the limiter runs for each), side by side with a BullMQ 5 Worker (no-op job, $count jobs queued by addBulk, concurrency the best of $bullmq_concurrency), alternating, $repeat runs"
bellhop_rates=()
bullmq_rates=()
bellhop_cpus=()
bullmq_cpus=()
bullmq_http_rates=()
for ((run = 1; run <= repeat; run++)); do
  out=$(run_sends "$count")
  echo "run $run bellhop: $out"
  rate=$(echo "$out" | awk -v n="$count" '{ for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] } }
    END { if (v["first_to_last_s"] > 0 && v["sent"] >= n) printf "%.0f", (v["requests"] - 1) / v["first_to_last_s"] }')
  [ -n "$rate" ] && bellhop_rates+=("$rate")
  cpu=$(echo "$out" | awk -v n="$count" '{ for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] } }
    END { printf "%.1f", (v["cpu_s_bellhop"] + v["redis"] + v["fake"]) * 1e6 / n }')
  bellhop_cpus+=("$cpu")
  split=$(echo "$out" | awk -v n="$count" '{ for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] } }
    END { printf "bellhop %.1f, redis %.1f, fake %.1f; redis commands per message %.1f, script calls %.2f",
          v["cpu_s_bellhop"] * 1e6 / n, v["redis"] * 1e6 / n, v["fake"] * 1e6 / n,
          v["redis_commands"] / n, v["evalsha"] / n }')
  echo "run $run bellhop sends_per_s=${rate:-none} cpu_us_per_message=$cpu ($split)"
  # The line bench/run_ab.sh reads, one per run.
  echo "$out" | awk -v n="$count" '{ for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] } }
    END { if (v["first_to_last_s"] > 0 && v["recorded_s"] > 0)
            printf "outbound_bench sends_per_s=%.0f (provider side) recorded_per_s=%.0f (first request to last sent recorded)\n",
                   (v["requests"] - 1) / v["first_to_last_s"], v["sent"] / v["recorded_s"] }'
  if [ "$with_sends_alone" = 1 ]; then
    out=$(sends_alone "$count")
    echo "run $run alone: $out"
    rate=$(field "$out" send_bench sends_per_s)
    [ -n "$rate" ] && alone_rates+=("$rate")
    alone_cpus+=("$(echo "$out" | awk -v n="$count" '{ for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] } }
      END { printf "%.1f", (v["cpu_s"] + v["fake_cpu_s"]) * 1e6 / n }')")
  fi
  [ "$with_bullmq" = 1 ] || continue
  out=$(node bench/bullmq_bench.mjs --count "$count" --concurrency "$bullmq_concurrency")
  echo "$out" | sed "s/^/run $run /"
  rate=$(echo "$out" | sed -n 's/^bullmq_bench best_jobs_per_s=\([0-9]*\).*/\1/p')
  [ -n "$rate" ] && bullmq_rates+=("$rate")
  cpu=$(echo "$out" | grep '^bullmq_bench best' | awk -v n="$count" '{ for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] } }
    END { printf "%.1f", (v["cpu_s_node"] + v["redis"]) * 1e6 / n }')
  bullmq_cpus+=("$cpu")
  [ "$with_bullmq_http" = 1 ] || continue
  # The same Worker sending each job to a provider_fake, as Bellhop does.
  start_fake
  out=$(node bench/bullmq_bench.mjs --count "$count" --concurrency "$bullmq_concurrency" \
          --provider-url "http://127.0.0.1:$(cat "$port_file")/v21.0")
  stop_fake
  echo "$out" | sed "s/^/run $run http: /"
  echo "run $run http: $(cat "$port_file.out")"
  rm -f "$port_file" "$port_file.out"
  rate=$(echo "$out" | sed -n 's/^bullmq_bench best_jobs_per_s=\([0-9]*\).*/\1/p')
  [ -n "$rate" ] && bullmq_http_rates+=("$rate")
done
median() { printf '%s\n' "$@" | sort -n | awk 'NF { a[++n] = $1 } END { if (n) print a[int((n + 1) / 2)] }'; }
b=$(median "${bellhop_rates[@]}")
q=$(median "${bullmq_rates[@]}")
if [ "$with_bullmq" != 1 ]; then
  echo "outbound_bench throughput bellhop_sends_per_s_median=${b:-0} cpu_us_per_message_median=$(median "${bellhop_cpus[@]}") (BULLMQ=0: no comparison)"
  if [ "$with_sends_alone" = 1 ]; then
    echo "outbound_bench throughput (ceiling) sends_alone_per_s_median=$(median "${alone_rates[@]}") cpu_us_per_send=$(median "${alone_cpus[@]}") (sender + fake provider, no Redis, no queue)"
  fi
else
awk -v b="${b:-0}" -v q="${q:-0}" -v nb="${#bellhop_rates[@]}" -v nq="${#bullmq_rates[@]}" -v runs="$repeat" 'BEGIN {
  ratio = q > 0 ? b / q : 0
  printf "outbound_bench throughput bellhop_sends_per_s_median=%d bullmq_jobs_per_s_median=%d ratio=%.2f (target >= 2) %s (runs: bellhop %d, bullmq %d of %d)\n",
         b, q, ratio, (ratio >= 2 ? "PASS" : "FAIL"), nb, nq, runs }'
# The CPU each side spent per message, all its processes together: steadier than the rates on a
# busy machine (what the rates would be on an idle one depends on how it splits across cores).
echo "outbound_bench throughput cpu_us_per_message_median bellhop=$(median "${bellhop_cpus[@]}") (bellhop, its Redis, the fake provider) bullmq=$(median "${bullmq_cpus[@]}") (node, its Redis)"
if [ "$with_sends_alone" = 1 ]; then
  # 2x the no-op Worker's rate on two cores busy all the time leaves 2 / (2 x its rate) = 1 / its
  # rate of CPU per send, for everything: what is left once the HTTP exchange is paid is the most
  # the queue's work (the claim, the limits, the record, the event) may cost, Redis's and
  # bellhop's together.
  a=$(median "${alone_rates[@]}")
  ac=$(median "${alone_cpus[@]}")
  qc=$(median "${bullmq_cpus[@]}")
  awk -v a="${a:-0}" -v q="${q:-0}" -v ac="${ac:-0}" -v qc="${qc:-0}" -v bc="$(median "${bellhop_cpus[@]}")" -v n="${#alone_rates[@]}" -v runs="$repeat" 'BEGIN {
    printf "outbound_bench throughput (ceiling) sends_alone_per_s_median=%d ratio_to_bullmq=%.2f cpu_us_per_send=%.1f (sender + fake provider, no Redis, no queue; runs: %d of %d)\n",
           a, (q > 0 ? a / q : 0), ac, n, runs
    budget = q > 0 ? 1e6 / q : 0
    printf "outbound_bench throughput (budget) 2x the no-op Worker on two cores busy all the time: %.1f us of CPU per send, of which the HTTP exchange takes %.1f: %.1f us for the queue work in Redis and bellhop together (Bellhop spends %.1f in all; the no-op Worker %.1f per job)\n",
           budget, ac, budget - ac, bc, qc }'
fi
if [ "$with_bullmq_http" = 1 ]; then
  h=$(median "${bullmq_http_rates[@]}")
  awk -v b="${b:-0}" -v h="${h:-0}" -v n="${#bullmq_http_rates[@]}" -v runs="$repeat" 'BEGIN {
    printf "outbound_bench throughput (reference) bullmq_http_jobs_per_s_median=%d ratio=%.2f: a BullMQ Worker whose job sends to the fake provider as Bellhop does (runs: %d of %d)\n",
           h, (h > 0 ? b / h : 0), n, runs }'
fi
fi
fi

if [[ $phases == *" pacing "* ]]; then
echo "== pacing: $paced messages under whatsapp_business_number (gcra 80/s, burst 80)"
out=$(run_phase "$paced" "")
echo "$out"
echo "$out" | awk '{ for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] } }
  END { steady = (v["requests"] - 80) / v["first_to_last_s"];
        printf "outbound_bench paced_max_in_any_1s=%d (bound 160: burst 80 + 80/s) rate_after_burst_per_s=%.1f (policy 80)\n",
        v["max_in_any_1s"], steady }'
fi

# run_priority POLICIES: BULK bulk messages (priority 10) queued at once, then REPLIES
# conversational replies (priority 3) right behind them; prints "reply_first_ms=…
# reply_last_ms=… (from the replies' push to the provider) bulk_before_last=…".
run_priority() {
  local t0 mark_file
  mark_file=$(mktemp -u "${TMPDIR:-/tmp}/provider-fake-mark.XXXXXX")
  start_lane "$1" --mark "conversational reply" --mark-count "$replies" --mark-file "$mark_file"
  push 0 $((bulk - 1)) 10 "Our spring offer"
  t0=$(date +%s%N)
  push "$bulk" $((bulk + replies - 1)) 3 "conversational reply"
  for _ in $(seq 600); do [ -s "$mark_file" ] && break; nap 0.05; done  # up to 30 s
  stop_lane
  [ -s "$mark_file" ] || { echo "replies_not_all_sent $(cat "$port_file.out")"; return; }
  awk -v t0="$t0" '{ for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] } }
    END { printf "reply_first_ms=%.1f reply_last_ms=%.1f bulk_before_last=%d\n",
          v["first_marked_ms"] - t0 / 1e6, v["last_marked_ms"] - t0 / 1e6, v["others_before_last"] }' "$mark_file"
  rm -f "$port_file" "$port_file.out" "$mark_file"
}

bulk=${BULK:-50000}
replies=${REPLIES:-10}
[[ $phases == *" priority "* ]] || exit 0
for policies in raised default; do
  if [ "$policies" = raised ]; then
    p="\"whatsapp_business_number\": $big, \"whatsapp_recipient\": $big"
    what="limits raised: the bulk flows as fast as it can"
  else
    p=""
    what="built-in policies: the bulk is paced at 80/s"
  fi
  echo "== priority: $bulk bulk messages queued, then $replies replies ($what), $repeat runs"
  lasts=()
  for ((run = 1; run <= repeat; run++)); do
    out=$(run_priority "$p")
    echo "run $run: $out"
    last=$(echo "$out" | sed -n 's/.*reply_last_ms=\([0-9.]*\).*/\1/p')
    [ -n "$last" ] && lasts+=("$last")  # a run that lost a reply has no figure, and says so
  done
  printf '%s\n' "${lasts[@]}" | sort -n | awk -v w="$policies" -v runs="$repeat" -v bulk="$bulk" 'NF { a[++n] = $1 }
    END { if (n) printf "outbound_bench priority_%s bulk=%d reply_last_ms_median=%.1f (max %.1f; target <= 200) %s runs_with_every_reply=%d of %d\n", w, bulk, a[int((n + 1) / 2)], a[n], (a[int((n + 1) / 2)] <= 200 && n == runs ? "PASS" : "FAIL"), n, runs
          else printf "outbound_bench priority_%s bulk=%d no run sent every reply FAIL\n", w, bulk }'
done
