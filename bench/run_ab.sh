#!/usr/bin/env bash
# Two bellhop builds side by side in one run: the ingest, fan-out and outbound benchmarks,
# alternating A and B for ROUNDS rounds (default 3) so that both see the same machine, then the
# median of each figure for A and B and their ratio B/A.
#   bench/run_ab.sh A_BUILD_DIR B_BUILD_DIR        e.g. ../before/build/release build/release
# Each build dir needs gateway/bellhop and bench/{ingest_bench,fanout_bench,provider_fake}.
# The runs take the scripts' defaults except DURATION_S (default 5 s per phase here), and
# OUTBOUND COUNT (10000), BULK (5000) and no BullMQ beside it. Machines like this one are noisy: read the ratios of the medians.
# Loopback only (the scripts it runs).
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -eq 2 ] || { echo "usage: bench/run_ab.sh A_BUILD_DIR B_BUILD_DIR" >&2; exit 2; }
a=$1 b=$2
rounds=${ROUNDS:-3}
for dir in "$a" "$b"; do
  for f in gateway/bellhop bench/ingest_bench bench/fanout_bench bench/provider_fake; do
    [ -x "$dir/$f" ] || { echo "missing $dir/$f" >&2; exit 1; }
  done
done
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
export DURATION_S=${DURATION_S:-5}

run_all() {  # BUILD_DIR LOG
  local dir=$1 log=$2
  bench/run_ingest_bench.sh "$dir/gateway/bellhop" >>"$log" 2>&1 || echo "ingest run failed" >>"$log"
  bench/run_fanout_bench.sh "$dir/gateway/bellhop" >>"$log" 2>&1 || echo "fanout run failed" >>"$log"
  COUNT=${COUNT:-10000} REPEAT=1 BULLMQ=0 BULK=${BULK:-5000} bench/run_outbound_bench.sh "$dir/gateway/bellhop" >>"$log" 2>&1 ||
    echo "outbound run failed" >>"$log"
}

for round in $(seq "$rounds"); do
  echo "round $round of $rounds: A ($a)"
  run_all "$a" "$out/a.log"
  echo "round $round of $rounds: B ($b)"
  run_all "$b" "$out/b.log"
done

median() {  # LOG LINE_REGEX FIELD
  grep -E "$2" "$1" | tr ' ' '\n' | sed -n "s/^$3=//p" | sed 's/[^0-9.]*$//' | sort -g |
    awk '{ v[NR] = $1 } END { if (!NR) print "-"; else if (NR % 2) print v[(NR + 1) / 2];
                              else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
printf '\n%-44s %12s %12s %8s\n' "median of $rounds runs" "A" "B" "B/A"
row() {  # LABEL LINE_REGEX FIELD
  local va vb
  va=$(median "$out/a.log" "$2" "$3")
  vb=$(median "$out/b.log" "$2" "$3")
  printf '%-44s %12s %12s %8s\n' "$1" "$va" "$vb" \
    "$(awk -v x="$va" -v y="$vb" 'BEGIN { if (x + 0 > 0 && y != "-") printf "%.2f", y / x; else print "-" }')"
}
row "ingest: accepted/s at saturation" '^ingest_bench mode=saturation' accepted_per_s
row "ingest: p50 ms at saturation" '^ingest_bench mode=saturation' p50_ms
row "ingest: p99 ms at saturation" '^ingest_bench mode=saturation' p99_ms
row "ingest: p50 ms at the fixed rate" '^ingest_bench mode=rate' p50_ms
row "ingest: p99 ms at the fixed rate" '^ingest_bench mode=rate' p99_ms
row "fan-out: deliveries/s" '^fanout_bench ' deliveries_per_s
row "fan-out: publish-to-receive p50 ms" '^fanout_bench ' p50_ms
row "fan-out: publish-to-receive p99 ms" '^fanout_bench ' p99_ms
row "outbound: sends/s (provider side)" '^outbound_bench sends_per_s' sends_per_s
row "outbound: recorded sent/s" '^outbound_bench sends_per_s' recorded_per_s
if grep -q "run failed" "$out/a.log" "$out/b.log"; then
  echo "some runs failed:"
  grep -h "run failed" "$out/a.log" "$out/b.log" | sort | uniq -c
  exit 1
fi
