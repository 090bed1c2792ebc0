# Shared by the bench/run_*_bench.sh scripts (sourced): a temporary data dir, a fresh
# `bellhop serve` with its embedded Redis on free loopback ports, and cleanup on every exit path.
#   bench_start_bellhop NAME EXTRA_CONFIG   EXTRA_CONFIG: more top-level JSON members (may be "")
# Sets: dir data key jwt_secret http_port redis_port bellhop_pid children url.
# Needs: $bellhop (the binary), curl.

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
free_port() {
  local p
  for _ in $(seq 50); do
    p=$((10000 + RANDOM % 22000))  # below the ephemeral range (32768-), where connect() picks
    if port_free "$p" && [ "$p" != "${2:-}" ]; then echo "$p"; return 0; fi
  done
  echo "no free port found" >&2
  return 1
}
# nap SECONDS: sleeps without starting a process (read's timeout on a pipe this shell holds both
# ends of, so nothing ever arrives): a wait loop then takes no CPU from what a bench measures.
exec {nap_fd}<> <(:)
nap() { read -r -t "$1" -u "$nap_fd" _ || true; }
# rcli CMD ARG…: one redis-cli call on the embedded Redis (after bench_start_bellhop); the
# password goes in REDISCLI_AUTH, never on a command line `ps` shows.
rcli() { REDISCLI_AUTH=$(cat "$data/redis.password") redis-cli -s "$data/redis.sock" "$@"; }
# redis_session: one redis-cli on the embedded Redis (a coprocess, after bench_start_bellhop) for
# a run's polls, so a poll starts no process; `rask CMD ARG…` sets $reply to the answer's first
# line ('' for nil); redis_session_end closes it (before bellhop stops).
redis_session() {
  coproc RSESSION { REDISCLI_AUTH=$(cat "$data/redis.password") exec redis-cli -s "$data/redis.sock" 2>&1; }
}
# shellcheck disable=SC2034  # reply: read by the caller
rask() { echo "$*" >&"${RSESSION[1]}"; IFS= read -r -u "${RSESSION[0]}" reply; }
redis_session_end() {
  local pid=$RSESSION_PID fd=${RSESSION[1]}
  exec {fd}>&-  # redis-cli reads the end of its input and exits
  wait "$pid" 2>/dev/null || true
}
secret() { od -An -tx1 -N24 /dev/urandom | tr -d ' \n'; }  # 48 hex characters

# CPU time (clock ticks, user + system) of a process; 0 once it is gone.
ticks() {
  local s
  s=$(cat "/proc/$1/stat" 2>/dev/null) || { echo 0; return; }
  s=${s##*) }  # after "pid (comm) ": field 12 is utime, 13 stime
  set -- $s
  echo $(( ${12} + ${13} ))
}
hz=$(getconf CLK_TCK)
# field TEXT PREFIX NAME: the value of NAME=… on the first line of TEXT starting "PREFIX ".
field() { echo "$1" | grep -E "^$2 " | head -1 | tr ' ' '\n' | sed -n "s/^$3=//p"; }
# bench_lua_script MODULE SCRIPT: MODULE/lua/SCRIPT as cmake/embed_lua.cmake embeds it (each
# `--#include NAME` line replaced by core/lua/fragments/NAME, else ratelimit/lua/fragments/NAME,
# for the modules, or by MODULE/lua/fragments/NAME for ratelimit), byte for byte.
bench_lua_script() {
  local fragments="core/lua/fragments/ ratelimit/lua/fragments/"
  [ -d "$1/lua/fragments" ] && fragments=$1/lua/fragments/
  awk -v dirs="$fragments" '/^--#include [A-Za-z0-9_]+\.lua$/ { n = split(dirs, d, " ")
         for (i = 1; i <= n; i++) { f = d[i] $2; if ((getline l < f) > 0) break; close(f) }
         do print l; while ((getline l < f) > 0); close(f); print ""; next }
       { print }' "$1/lua/$2"
}

bellhop_pid=""
children=""
dir=""
cleanup() {
  local rc=$?
  if [ -n "$bellhop_pid" ] && kill -0 "$bellhop_pid" 2>/dev/null; then
    kill -TERM "$bellhop_pid" 2>/dev/null || true
    for _ in $(seq 150); do kill -0 "$bellhop_pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$bellhop_pid" 2>/dev/null; then
      echo "bellhop did not stop within 15 s of SIGTERM; killing it" >&2
      kill -KILL "$bellhop_pid" 2>/dev/null || true
    fi
    wait "$bellhop_pid" 2>/dev/null || true
  fi
  # The embedded redis-server is bellhop's child; bellhop stops it, but not if it was killed.
  for child in $children; do
    kill -0 "$child" 2>/dev/null && kill -TERM "$child" 2>/dev/null || true
  done
  [ -n "$dir" ] && rm -rf "$dir"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

bench_start_bellhop() {
  local name=$1 extra=${2:-} ready="" attempt
  dir=$(mktemp -d "${TMPDIR:-/tmp}/bellhop-$name.XXXXXX")
  data="$dir/data"
  mkdir -m 700 "$data"
  key=$(secret)
  jwt_secret=$(secret)
  # A port taken between the check and the bind makes bellhop exit: retry on new ports.
  for attempt in 1 2 3 4 5; do
    http_port=$(free_port)
    redis_port=$(free_port "$http_port")
    {
      echo "{"
      echo "  \"listen\": \"127.0.0.1:$http_port\","
      echo "  \"data_dir\": \"$data\","
      echo "  \"redis\": { \"url\": \"embedded\", \"embedded\": { \"port\": $redis_port } },"
      echo "  \"auth\": { \"adapter_keys\": [ { \"name\": \"$name\", \"key\": \"$key\", \"properties\": [\"*\"] } ],"
      echo "            \"jwt_secret\": \"$jwt_secret\", \"admin_token\": \"$(secret)\" }${extra:+,}"
      [ -n "$extra" ] && echo "  $extra"
      echo "}"
    } >"$dir/config.json"
    chmod 600 "$dir/config.json"
    "$bellhop" serve --config "$dir/config.json" >"$dir/bellhop.log" 2>&1 &
    bellhop_pid=$!
    for _ in $(seq 300); do  # up to 30 s
      if curl -fsS -o /dev/null --max-time 1 "http://127.0.0.1:$http_port/readyz" 2>/dev/null; then
        ready=1
        break
      fi
      kill -0 "$bellhop_pid" 2>/dev/null || break
      sleep 0.1
    done
    [ -n "$ready" ] && break
    if kill -0 "$bellhop_pid" 2>/dev/null; then
      echo "bellhop did not become ready within 30 s; log:" >&2
      cat "$dir/bellhop.log" >&2
      exit 1
    fi
    wait "$bellhop_pid" 2>/dev/null || true
    bellhop_pid=""
    echo "bellhop exited during startup (attempt $attempt, ports $http_port/$redis_port):" >&2
    tail -5 "$dir/bellhop.log" >&2
  done
  [ -n "$ready" ] || { echo "bellhop did not start" >&2; exit 1; }
  children=$(pgrep -P "$bellhop_pid" || true)
  url="http://127.0.0.1:$http_port"
}

# REPEAT=N: a runner calls `bench_repeat N SELF ARGS…` to run itself N times, one fresh bellhop
# each (BENCH_REPEATING=1 in the children), printing every run; then `bench_median REGEX FIELD
# LABEL` prints the median (and all values, sorted) of FIELD=value over the output lines that
# match REGEX. On a noisy machine the median of alternating runs says more than one run.
repeat_out=""
bench_repeat() {
  local n=$1 self=$2 i out
  shift 2
  for ((i = 1; i <= n; i++)); do
    echo "== run $i of $n"
    out=$(BENCH_REPEATING=1 "$self" "$@" 2>&1) || true
    echo "$out"
    repeat_out+="$out"$'\n'
  done
}
bench_median() {
  local vals count
  vals=$(echo "$repeat_out" | { grep -E "$1" || true; } | tr ' ' '\n' | sed -n "s/^$2=//p" | sort -g)
  count=$(echo "$vals" | grep -c . || true)
  [ "$count" -gt 0 ] || { echo "median $3: no values"; return; }
  echo "median $3 over $count runs: $(echo "$vals" | awk -v c="$count" '{ v[NR] = $1 }
    END { if (c % 2) print v[(c + 1) / 2]; else print (v[c / 2] + v[c / 2 + 1]) / 2 }')" \
       "(all: $(echo $vals))"
}
