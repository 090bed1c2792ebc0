#!/usr/bin/env bash
# Rate-limit decisions per second through bellhop_ratelimit (bench/ratelimit_bench.cpp; checks
# made together share one script call, docs/ratelimit.md) next to rate-limiter-flexible's
# RateLimiterRedis.consume() (bench/ratelimit_flexible_bench.mjs, ioredis) and to
# redis-benchmark -P 16 running EVALSHA of the same script one decision per call, against one
# private redis-server on a free loopback port, in one run.
#   bench/run_ratelimit_bench.sh [build-dir]     (default build/release)
#   REPEAT=3 bench/run_ratelimit_bench.sh        (three fresh runs, medians, verdicts on them)
#
# Policy LIMIT per WINDOW_MS, default 1000000 per 1000 ms, so nearly every check is allowed
# (sliding_window needs LIMIT <= 100000); one key per check, subject drawn from KEYS = 1000000.
#   0. rate-limiter-flexible, points = LIMIT per WINDOW_MS / 1000 s (its fixed window), keys of
#      the same form: each of FLEX_CONCURRENCY (default 64,256,1024) consumes outstanding, with
#      ioredis auto-pipelining off and on, FLEX_SWEEP_S (3) each; the best for DURATION_S.
#      `npm ci` runs in bench/ first when bench/node_modules is missing.
# Then for each algorithm (ALGORITHMS, default "fixed_window gcra"):
#   1. the library at saturation: DURATION_S (10) after a 1 s warm-up, IN_FLIGHT (1024) checks
#      outstanding from THREADS (1) caller threads, all on the broker's one connection (the
#      limiter's batching: its defaults, or CALLS_IN_FLIGHT, BATCH_DECISIONS, BATCH_KEYS);
#   2. redis-benchmark -P 16 -c 50 -n RB_REQUESTS (200000) -r KEYS, EVALSHA of ratelimit/lua/
#      check.lua with its fragments inlined exactly as cmake/embed_lua.cmake does (the SHA is
#      checked against the one the library loaded), one decision per call, same policy, key
#      names of the same form: Redis alone at one script call per decision, for reference;
#   3. the library at a fixed offered RATE (10000/s, open loop, latency from the scheduled send
#      time) for DURATION_S.
# Before each phase Redis is emptied (FLUSHALL) and its command stats reset. Prints every
# result line, the CPU of redis-server (/proc/<pid>/stat) and of the client per decision, and a
# summary: library and rate-limiter-flexible decisions/s, their ratio, p99 at RATE offered and
# PASS/FAIL against the issue's targets (ratio >= 3; p99 < 2 ms at RATE offered, all of it
# decided without errors).
#
# PERSISTENCE=none (default: --save '' --appendonly no) or aof (appendonly yes, appendfsync
# everysec, rewrites from 256 MB, as bellhop's embedded Redis). REPEAT=N: N fresh runs (a new
# redis-server each), then the medians and the verdicts on them. Exit status: 0, or 1 if something could not run or a
# check failed; with STRICT=1 also 1 when a target is missed. Loopback only, no password (the
# server lives in a temporary dir for this run only); redis-server is stopped on every exit path.
set -euo pipefail
self=$(cd "$(dirname "$0")" && pwd)/$(basename "$0")
cd "$(dirname "$0")/.."

build=${1:-build/release}
bench=${RATELIMIT_BENCH:-$build/bench/ratelimit_bench}
algorithms=${ALGORITHMS:-fixed_window gcra}
duration=${DURATION_S:-10}
warmup=${WARMUP_S:-1}
rate=${RATE:-10000}
in_flight=${IN_FLIGHT:-1024}
threads=${THREADS:-1}
keys=${KEYS:-1000000}
limit=${LIMIT:-1000000}
window_ms=${WINDOW_MS:-1000}
rb_requests=${RB_REQUESTS:-200000}
persistence=${PERSISTENCE:-none}
flex_concurrency=${FLEX_CONCURRENCY:-64,256,1024}
flex_sweep=${FLEX_SWEEP_S:-3}
batching=()
[ -n "${CALLS_IN_FLIGHT:-}" ] && batching+=(--calls-in-flight "$CALLS_IN_FLIGHT")
[ -n "${BATCH_DECISIONS:-}" ] && batching+=(--batch-decisions "$BATCH_DECISIONS")
[ -n "${BATCH_KEYS:-}" ] && batching+=(--batch-keys "$BATCH_KEYS")
[ -x "$bench" ] || { echo "missing $bench (ninja ratelimit_bench in $build)" >&2; exit 1; }
for tool in redis-server redis-cli redis-benchmark awk sha1sum node npm; do
  command -v "$tool" >/dev/null || { echo "$tool not found (apt-get install redis-server redis-tools)" >&2; exit 1; }
done
for a in $algorithms; do
  case $a in fixed_window | sliding_window | gcra) ;; *) echo "unknown algorithm $a" >&2; exit 2 ;; esac
done
case $persistence in
  none) persist_args=(--save '' --appendonly no)
        persist_text="no persistence (--save '' --appendonly no)" ;;
  aof) persist_args=(--save '' --appendonly yes --appendfsync everysec --auto-aof-rewrite-min-size 256mb)
       persist_text="AOF, appendfsync everysec, rewrites from 256 MB (as bellhop's embedded Redis)" ;;
  *) echo "PERSISTENCE is none or aof" >&2; exit 2 ;;
esac
if [ ! -d bench/node_modules ]; then
  echo "== npm ci in bench/ (rate-limiter-flexible, ioredis)"
  (cd bench && npm ci --no-audit --no-fund) >&2 || { echo "npm ci in bench/ failed" >&2; exit 1; }
fi

# free_port, bench_repeat, bench_median (its bellhop cleanup is replaced below).
# shellcheck source=bench/bench_lib.sh
. bench/bench_lib.sh

# The median of FIELD over the lines of $repeat_out matching REGEX (empty if none).
median_value() {
  echo "$repeat_out" | { grep -E "$1" || true; } | tr ' ' '\n' | sed -n "s/^$2=//p" | sort -g |
    awk '{ v[NR] = $1 } END { if (NR) print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
# PASS/FAIL lines of the targets: verdicts RATIO P99 ACCEPTED ERRORS ALGORITHM SUFFIX
missed=0
verdicts() {
  local ratio=$1 p99=$2 acc=$3 errs=$4 algo=$5 suffix=$6 v
  if [ -n "$ratio" ] && awk -v r="$ratio" 'BEGIN { exit !(r >= 3) }'; then v=PASS; else v=FAIL; missed=1; fi
  echo "$v  $algo: library/rate-limiter-flexible decisions per second = ${ratio:-?} (target >= 3)$suffix"
  if [ -n "$p99" ] && awk -v p="$p99" -v a="$acc" -v r="$rate" -v e="$errs" \
       'BEGIN { exit !(p < 2 && a >= 0.98 * r && e == 0) }'; then v=PASS; else v=FAIL; missed=1; fi
  echo "$v  $algo: p99 at $rate/s offered = ${p99:-?} ms (target < 2 ms); decided $acc/s, $errs errors$suffix"
}

if [ "${REPEAT:-1}" -gt 1 ] && [ -z "${BENCH_REPEATING:-}" ]; then
  bench_repeat "$REPEAT" "$self" "$@"
  echo "== summary of $REPEAT runs (medians)"
  bench_median "^flexible_bench " decisions_per_s "rate-limiter-flexible consume() (decisions/s)"
  bench_median "^flexible_bench " p99_ms "rate-limiter-flexible p99 at saturation (ms)"
  bench_median "^cpu algorithm=flexible phase=flexible " redis_us "redis-server CPU per decision, rate-limiter-flexible (us)"
  bench_median "^cpu algorithm=flexible phase=flexible " client_us "node CPU per decision, rate-limiter-flexible (us)"
  for a in $algorithms; do
    bench_median "^ratelimit_bench mode=saturation algorithm=$a " decisions_per_s "$a library at saturation (decisions/s)"
    bench_median "^ratio algorithm=$a " ratio "$a ratio library/rate-limiter-flexible"
    bench_median "^redis_benchmark algorithm=$a " rps "$a redis-benchmark -P 16, one decision per call (requests/s)"
    bench_median "^ratio_redis_benchmark algorithm=$a " ratio "$a ratio library/redis-benchmark"
    bench_median "^ratelimit_bench_broker mode=saturation algorithm=$a " checks_per_call "$a checks per script call at saturation"
    bench_median "^ratelimit_bench mode=rate algorithm=$a " p50_ms "$a p50 at $rate/s (ms)"
    bench_median "^ratelimit_bench mode=rate algorithm=$a " p99_ms "$a p99 at $rate/s (ms)"
    bench_median "^ratelimit_bench mode=rate algorithm=$a " p999_ms "$a p99.9 at $rate/s (ms)"
    bench_median "^cpu algorithm=$a phase=library_saturation " redis_us "$a redis-server CPU per decision, library saturation (us)"
    bench_median "^cpu algorithm=$a phase=redis_benchmark " redis_us "$a redis-server CPU per decision, redis-benchmark (us)"
    bench_median "^cpu algorithm=$a phase=library_saturation " client_us "$a ratelimit_bench CPU per decision at saturation (us)"
  done
  echo "== verdicts on the medians"
  for a in $algorithms; do
    verdicts "$(median_value "^ratio algorithm=$a " ratio)" \
      "$(median_value "^ratelimit_bench mode=rate algorithm=$a " p99_ms)" \
      "$(median_value "^ratelimit_bench mode=rate algorithm=$a " decisions_per_s)" \
      "$(echo "$repeat_out" | grep -E "^ratelimit_bench mode=rate algorithm=$a " | tr ' ' '\n' |
         sed -n 's/^errors=//p' | awk '{ s += $1 } END { print s + 0 }')" "$a" " (median of $REPEAT)"
  done
  if [ "${STRICT:-0}" = 1 ] && [ "$missed" = 1 ]; then exit 1; fi
  exit 0
fi

# ---- one run ------------------------------------------------------------------------------

dir=$(mktemp -d "${TMPDIR:-/tmp}/bellhop-ratelimit-bench.XXXXXX")
redis_pid=""
# shellcheck disable=SC2317  # (run by the trap)
cleanup_redis() {
  local rc=$?
  if [ -n "$redis_pid" ] && kill -0 "$redis_pid" 2>/dev/null; then
    kill -TERM "$redis_pid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$redis_pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$redis_pid" 2>/dev/null; then kill -KILL "$redis_pid" 2>/dev/null || true; fi
    wait "$redis_pid" 2>/dev/null || true
  fi
  rm -rf "$dir"
  exit "$rc"
}
trap cleanup_redis EXIT

# A port taken between the check and the bind makes redis-server exit: retry on new ports.
for attempt in 1 2 3 4 5; do
  port=$(free_port)
  redis-server --port "$port" --bind 127.0.0.1 --protected-mode yes "${persist_args[@]}" \
    --dir "$dir" --daemonize no --logfile "$dir/redis.log" &
  redis_pid=$!
  up=""
  for _ in $(seq 100); do
    if redis-cli -p "$port" PING 2>/dev/null | grep -q PONG; then up=1; break; fi
    kill -0 "$redis_pid" 2>/dev/null || break
    sleep 0.05
  done
  [ -n "$up" ] && break
  kill "$redis_pid" 2>/dev/null || true
  wait "$redis_pid" 2>/dev/null || true
  redis_pid=""
  echo "redis-server did not start on port $port (attempt $attempt)" >&2
done
[ -n "$redis_pid" ] || { echo "redis-server did not start" >&2; exit 1; }
rcli() { redis-cli -p "$port" "$@"; }
echo "== redis-server $(redis-server --version | sed -E 's/.* v=([^ ]+).*/\1/') on 127.0.0.1:$port, $persist_text"
echo "== $(nproc) cpus; load before: $(cut -d' ' -f1-3 /proc/loadavg)"

# The script exactly as cmake/embed_lua.cmake embeds it: each `--#include NAME` line becomes the
# text of lua/fragments/NAME followed by that line's own newline. Written to a file (command
# substitution would drop trailing newlines) and loaded with redis-cli -x, byte for byte.
bench_lua_script ratelimit check.lua >"$dir/check.lua"
sha=$(sha1sum "$dir/check.lua" | cut -d' ' -f1)

reset_redis() { rcli FLUSHALL >/dev/null; rcli CONFIG RESETSTAT >/dev/null; }
evalsha_usec() { rcli INFO commandstats | tr -d '\r' | sed -n 's/^cmdstat_evalsha:.*usec_per_call=\([0-9.]*\).*/\1/p'; }
# cpu ALGO PHASE REDIS_TICKS CLIENT_TIME("user sys") DECISIONS
cpu_line() {
  awk -v a="$1" -v p="$2" -v r="$3" -v t="$4" -v n="$5" -v hz="$hz" -v e="$(evalsha_usec)" 'BEGIN {
    split(t, c, " "); g = c[1] + c[2]; r /= hz; if (n < 1) n = 1
    printf "cpu algorithm=%s phase=%s decisions=%d redis_s=%.2f client_s=%.2f redis_us=%.2f client_us=%.2f evalsha_usec_per_call=%s\n",
           a, p, n, r, g, r * 1e6 / n, g * 1e6 / n, (e == "" ? "?" : e) }'
}

# Runs ratelimit_bench with "$@"; prints its lines and the CPU line. Failures print "note:".
run_lib() {
  local algo=$1 phase=$2 r0 r1 out rc=0
  shift 2
  reset_redis
  r0=$(ticks "$redis_pid")
  out=$( { TIMEFORMAT='%3U %3S'; time "$bench" --redis "redis://127.0.0.1:$port" --algorithm "$algo" \
         --limit "$limit" --window-ms "$window_ms" --keys "$keys" --duration-s "$duration" \
         --warmup-s "$warmup" ${batching[@]+"${batching[@]}"} "$@" 2>"$dir/bench.err"; } 2>"$dir/time" ) || rc=$?
  r1=$(ticks "$redis_pid")
  echo "$out"
  [ "$rc" = 0 ] || echo "note: ratelimit_bench ($phase) exited with $rc:" "$(head -3 "$dir/bench.err")"
  if [ -n "$(field "$out" ratelimit_bench checks_total)" ]; then
    cpu_line "$algo" "$phase" $((r1 - r0)) "$(tail -1 "$dir/time")" \
      "$(field "$out" ratelimit_bench checks_total)"
  fi
}

all_out=""
say() { echo "$1"; all_out+="$1"$'\n'; }
script_checked=""

echo "== rate-limiter-flexible RateLimiterRedis.consume(), ioredis: concurrency $flex_concurrency," \
     "auto-pipelining off/on, ${flex_sweep} s each, then the best for ${duration} s"
reset_redis
r0=$(ticks "$redis_pid")
flex_rc=0
flex=$( { TIMEFORMAT='%3U %3S'; time node bench/ratelimit_flexible_bench.mjs --port "$port" \
          --limit "$limit" --window-ms "$window_ms" --keys "$keys" --duration-s "$duration" \
          --sweep-s "$flex_sweep" --warmup-s "$warmup" --concurrency "$flex_concurrency" \
          2>"$dir/flex.err"; } 2>"$dir/time" ) || flex_rc=$?
r1=$(ticks "$redis_pid")
echo "$flex" | grep '^flexible_sweep ' || true
flex_line=$(echo "$flex" | grep '^flexible_bench ' || true)
if [ -z "$flex_line" ] || [ "$flex_rc" != 0 ]; then
  say "note: ratelimit_flexible_bench exited with $flex_rc: $(echo "$flex" | grep first_error) $(head -3 "$dir/flex.err")"
fi
if [ -n "$flex_line" ]; then
  say "$flex_line"
  # The CPU of the whole node run (sweep included) over every decision it made.
  flex_all=$(echo "$flex" | grep -E '^flexible_(sweep|bench) ' | tr ' ' '\n' | sed -n 's/^decisions=//p' |
             awk '{ s += $1 } END { print s + 0 }')
  say "$(cpu_line flexible flexible $((r1 - r0)) "$(tail -1 "$dir/time")" "$flex_all")"
fi
flex_rps=$(field "$all_out" flexible_bench decisions_per_s)
for algo in $algorithms; do
  echo "== $algo: library at saturation, $in_flight in flight from $threads thread(s), ${duration} s"
  say "$(run_lib "$algo" library_saturation --mode saturation --in-flight "$in_flight" --threads "$threads")"

  # The library has loaded its embedded script by now: the text built here must be that one.
  if [ -z "$script_checked" ] && echo "$all_out" | grep -q "^ratelimit_bench mode=saturation algorithm=$algo "; then
    if [ "$(rcli SCRIPT EXISTS "$sha" | tr -d '\r')" = 1 ]; then
      say "script: SHA $sha, the one the library loaded (same text)"
    else
      say "note: the script built here (SHA $sha) is not the library's embedded one"
    fi
    script_checked=1
  fi
  loaded=$(rcli -x SCRIPT LOAD <"$dir/check.lua" | tr -d '\r')
  [ "$loaded" = "$sha" ] || { echo "SCRIPT LOAD returned $loaded, expected $sha" >&2; exit 1; }

  burst=$limit  # the library sends burst = limit when the policy's burst is 0
  echo "== $algo: redis-benchmark -P 16 -c 50 -n $rb_requests -r $keys EVALSHA (one key per call)"
  reset_redis
  r0=$(ticks "$redis_pid")
  rb=$( { TIMEFORMAT='%3U %3S'; time redis-benchmark -h 127.0.0.1 -p "$port" -P 16 -c 50 \
          -n "$rb_requests" -r "$keys" -q \
          EVALSHA "$sha" 1 "bench:ratelimit:bench_$algo:__rand_int__" "" 1 "$algo" "$limit" \
          "$window_ms" "$burst" "bench:ratelimit:bench_$algo:" 1 1 1 1 2>"$dir/rb.err" | tr '\r' '\n' | grep 'requests per second' | tail -1; } \
        2>"$dir/time" ) || true
  r1=$(ticks "$redis_pid")
  rb_rps=$(echo "$rb" | grep -o '[0-9.]* requests per second' | cut -d' ' -f1 || true)
  rb_p50=$(echo "$rb" | sed -n 's/.*p50=\([0-9.]*\) msec.*/\1/p')
  # Failed calls (script errors) would make the rate meaningless.
  rb_failed=$(rcli INFO commandstats | tr -d '\r' |
              sed -n 's/^cmdstat_evalsha:.*failed_calls=\([0-9]*\).*/\1/p')
  if [ -z "$rb_rps" ]; then
    say "note: redis-benchmark did not report a rate: $(head -3 "$dir/rb.err")"
  else
    say "redis_benchmark algorithm=$algo requests=$rb_requests pipeline=16 clients=50 rps=$rb_rps p50_ms=${rb_p50:-?} failed_calls=${rb_failed:-?}"
    say "$(cpu_line "$algo" redis_benchmark $((r1 - r0)) "$(tail -1 "$dir/time")" "$rb_requests")"
    [ "${rb_failed:-0}" = 0 ] || say "note: $rb_failed EVALSHA calls of redis-benchmark failed"
  fi

  echo "== $algo: library at $rate/s offered (open loop, latency from the scheduled send time), ${duration} s"
  say "$(run_lib "$algo" library_rate --mode rate --rate "$rate")"

  lib_rps=$(field "$all_out" "ratelimit_bench mode=saturation algorithm=$algo" decisions_per_s)
  if [ -n "$lib_rps" ] && [ -n "$flex_rps" ]; then
    say "$(awk -v a="$algo" -v b="$lib_rps" -v f="$flex_rps" 'BEGIN {
      printf "ratio algorithm=%s library_per_s=%.0f flexible_per_s=%.0f ratio=%.2f\n", a, b, f, b / f }')"
  fi
  if [ -n "$lib_rps" ] && [ -n "$rb_rps" ]; then
    say "$(awk -v a="$algo" -v b="$lib_rps" -v r="$rb_rps" 'BEGIN {
      printf "ratio_redis_benchmark algorithm=%s library_per_s=%.0f redis_benchmark_per_s=%.0f ratio=%.2f\n", a, b, r, b / r }')"
  fi
done
echo "== load after: $(cut -d' ' -f1-3 /proc/loadavg)"

echo "== summary ($persist_text; $(nproc) cpus)"
for algo in $algorithms; do
  sat=$(echo "$all_out" | grep -E "^ratelimit_bench mode=saturation algorithm=$algo " || true)
  fixed=$(echo "$all_out" | grep -E "^ratelimit_bench mode=rate algorithm=$algo " || true)
  ratio=$(field "$all_out" "ratio algorithm=$algo" ratio)
  printf '%s: library %s decisions/s at saturation (p50 %s ms, p99 %s ms, %s checks per call); rate-limiter-flexible %s/s (ratio %s); redis-benchmark one decision per call %s/s; at %s/s offered p50 %s ms, p99 %s ms, p99.9 %s ms\n' \
    "$algo" "$(field "$sat" ratelimit_bench decisions_per_s)" "$(field "$sat" ratelimit_bench p50_ms)" \
    "$(field "$sat" ratelimit_bench p99_ms)" \
    "$(field "$all_out" "ratelimit_bench_broker mode=saturation algorithm=$algo" checks_per_call)" \
    "${flex_rps:-?}" "${ratio:-?}" \
    "$(field "$all_out" "redis_benchmark algorithm=$algo" rps)" "$rate" \
    "$(field "$fixed" ratelimit_bench p50_ms)" "$(field "$fixed" ratelimit_bench p99_ms)" \
    "$(field "$fixed" ratelimit_bench p999_ms)"
  verdicts "$ratio" "$(field "$fixed" ratelimit_bench p99_ms)" \
    "$(field "$fixed" ratelimit_bench decisions_per_s)" "$(field "$fixed" ratelimit_bench errors)" "$algo" ""
done

if echo "$all_out" | grep -q '^note: '; then exit 1; fi
if [ "${STRICT:-0}" = 1 ] && [ "$missed" = 1 ]; then exit 1; fi
exit 0
