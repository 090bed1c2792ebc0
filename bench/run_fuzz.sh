#!/usr/bin/env bash
# Long runs of the libFuzzer targets (fuzz/README.md), one target after the other.
#   bench/run_fuzz.sh [TARGET ...]        (default: every fuzz/fuzz_*.cpp)
#
# Builds BUILD (default build/fuzz: clang++, -DBELLHOP_FUZZ=ON, ASan + UBSan) when it is missing
# or older than the sources (ninja decides), then runs each target on a working corpus that
# starts as a copy of fuzz/corpus/<target>/ (the seeds in the repo are never written to):
#   SECONDS_PER_TARGET  time per target (default 120), or
#   RUNS                executions per target instead of a time (per job)
#   JOBS                parallel libFuzzer processes per target (-jobs=JOBS -workers=JOBS,
#                       default 1); each job runs the whole time or RUNS
#   MAX_LEN             -max_len (default: libFuzzer's, from the corpus, at least 4096)
#   NICE                nice level of the fuzzers (default 10: a shared machine)
#   OUT                 where logs, grown corpora and crash artifacts go
#                       (default build/fuzz-runs/<UTC time>)
# Writes OUT/<target>.log (libFuzzer's output; OUT/<target>/fuzz-N.log with JOBS > 1),
# OUT/corpus/<target>/ and OUT/artifacts/<target>/ (crash-*, leak-*, timeout-*, oom-*), then
# prints one line per target: executions, executions per second (wall clock), corpus files
# after the run, crashes. libFuzzer stops a job at its first crash: reproduce it with
# `BUILD/fuzz/TARGET ARTIFACT`. Exit status 1 if any target crashed or could not run.
set -euo pipefail
cd "$(dirname "$0")/.."

build=${BUILD:-build/fuzz}
seconds=${SECONDS_PER_TARGET:-120}
runs=${RUNS:-}
jobs=${JOBS:-1}
max_len=${MAX_LEN:-}
nice_level=${NICE:-10}
out=${OUT:-build/fuzz-runs/$(date -u +%Y%m%dT%H%M%SZ)}

command -v clang++ >/dev/null || { echo "clang++ not found (install.sh --deps-only --with-test-deps)" >&2; exit 1; }
if [[ ! -f $build/build.ninja ]]; then
  cmake -S . -B "$build" -G Ninja -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_C_COMPILER=clang \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBELLHOP_FUZZ=ON >/dev/null
fi
nice -n 5 cmake --build "$build" --parallel "${BUILD_JOBS:-2}" >/dev/null

if [[ $# -gt 0 ]]; then
  targets=("$@")
else
  targets=()
  for src in fuzz/fuzz_*.cpp; do targets+=("$(basename "$src" .cpp)"); done
fi

mkdir -p "$out"
out=$(cd "$out" && pwd)
args=(-print_final_stats=1)
if [[ -n $runs ]]; then args+=("-runs=$runs"); else args+=("-max_total_time=$seconds"); fi
[[ -z $max_len ]] || args+=("-max_len=$max_len")
[[ $jobs -le 1 ]] || args+=("-jobs=$jobs" "-workers=$jobs")

failed=0
rows=()
for t in "${targets[@]}"; do
  bin=$PWD/$build/fuzz/$t
  if [[ ! -x $bin ]]; then
    echo "run_fuzz.sh: no target $t in $build/fuzz" >&2
    rows+=("$t - - - missing")
    failed=1
    continue
  fi
  corpus=$out/corpus/$t
  artifacts=$out/artifacts/$t
  mkdir -p "$corpus" "$artifacts" "$out/$t"
  cp -n fuzz/corpus/"$t"/* "$corpus"/ 2>/dev/null || true
  dict=()
  [[ ! -f fuzz/$t.dict ]] || dict=("-dict=$PWD/fuzz/$t.dict")
  echo "==> $t (${runs:+$runs runs}${runs:-${seconds}s} x $jobs job(s))" >&2
  t0=$(date +%s.%N)
  rc=0
  (cd "$out/$t" && nice -n "$nice_level" "$bin" "${args[@]}" "${dict[@]}" \
     "-artifact_prefix=$artifacts/" "$corpus") >"$out/$t.log" 2>&1 || rc=$?
  t1=$(date +%s.%N)
  # Executions: libFuzzer's "Done N runs" per process (its own log with -jobs), else the last
  # "#N" status line of a process that stopped at a crash.
  execs=0
  for log in "$out/$t.log" "$out/$t"/fuzz-*.log; do
    [[ -f $log ]] || continue
    n=$(grep -oE '^Done [0-9]+ runs' "$log" | awk '{ s += $2 } END { print s + 0 }')
    if [[ $n -eq 0 ]]; then
      n=$(grep -oE '^#[0-9]+' "$log" | tail -n 1 | tr -d '#')
    fi
    execs=$((execs + ${n:-0}))
  done
  crashes=$(find "$artifacts" -type f \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' \
            -o -name 'oom-*' \) | wc -l)
  files=$(find "$corpus" -type f | wc -l)
  rate=$(awk -v n="$execs" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", n / (b - a) }')
  rows+=("$t $execs $rate $files $crashes")
  if [[ $crashes -gt 0 || $rc -ne 0 ]]; then
    failed=1
    echo "    $t: exit status $rc, $crashes artifact(s) in $artifacts (log $out/$t.log)" >&2
  fi
done

echo
echo "fuzz run: ${runs:+$runs runs}${runs:-${seconds}s} per target, $jobs job(s) each; logs in $out"
printf '%-24s %14s %10s %8s %8s\n' target executions exec/s corpus crashes
total=0
for row in "${rows[@]}"; do
  read -r name execs rate files crashes <<<"$row"
  printf '%-24s %14s %10s %8s %8s\n' "$name" "$execs" "$rate" "$files" "$crashes"
  [[ $execs == - ]] || total=$((total + execs))
done
printf '%-24s %14s\n' total "$total"
exit "$failed"
