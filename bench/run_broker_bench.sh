#!/usr/bin/env bash
# Broker benchmark next to redis-benchmark, against one private redis-server, in one run.
#   bench/run_broker_bench.sh [build-dir]     (default build/release)
# Prints redis-benchmark's pipelined LPUSH rate (-P 16), the broker's rate and latency, and
# their ratio. Loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build/release}
bench="$build/bench/broker_bench"
[ -x "$bench" ] || { echo "missing $bench: build with -DBELLHOP_BUILD_BENCH=ON" >&2; exit 1; }
command -v redis-benchmark >/dev/null || { echo "redis-benchmark not found (apt-get install redis-tools)" >&2; exit 1; }

dir=$(mktemp -d)
port=$((20000 + RANDOM % 30000))
redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$dir" \
  --daemonize no >"$dir/redis.log" 2>&1 &
redis_pid=$!
trap 'kill $redis_pid 2>/dev/null; wait $redis_pid 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 100); do redis-cli -p "$port" PING >/dev/null 2>&1 && break; sleep 0.05; done

requests=${REQUESTS:-1000000}
echo "== redis-benchmark -P 16 -t lpush -n $requests (50 clients)"
rb=$(redis-benchmark -p "$port" -P 16 -t lpush -n "$requests" -q | tr '\r' '\n' | grep -E '^LPUSH' | tail -1)
echo "$rb"
rb_rps=$(echo "$rb" | sed -E 's/.*: ([0-9.]+) requests per second.*/\1/')
redis-cli -p "$port" DEL bench:broker >/dev/null

echo "== bellhop broker: 8 caller threads, 64 in flight each, $requests LPUSH"
out=$("$bench" --url "redis://127.0.0.1:$port" --threads 8 --window 64 --requests "$requests" | grep '^broker_bench')
echo "$out"
broker_rps=$(echo "$out" | sed -E 's/.* rps=([0-9.]+).*/\1/')
awk -v b="$broker_rps" -v r="$rb_rps" 'BEGIN { printf "ratio broker/redis-benchmark = %.2f\n", b / r }'
