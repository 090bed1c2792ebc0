#!/usr/bin/env bash
# Runs Bellhop's whole test suite on a fresh Debian 12 machine: installs what the build and
# the tests need (through install.sh, with sudo if not root and a package is missing),
# then builds and tests two configurations:
#   build/release  Release, tests and benchmarks built
#   build/asan     AddressSanitizer + UndefinedBehaviorSanitizer, at -O1 with line tables
#                  only (-g1): it builds in less than half the time of -O2 -g, and the
#                  sanitizers' reports still name file and line
#   build/fuzz     the libFuzzer targets of fuzz/ (clang++, ASan + UBSan), each run briefly on
#                  its seed corpus: FUZZ_RUNS inputs (default 100000) or FUZZ_SECONDS (default
#                  10) per target, whichever ends first; a crash fails the phase
# Exit status is non-zero if any build or test failed.
# Functions below are called through phase "$@", which shellcheck cannot follow:
# shellcheck disable=SC2317
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")"
umask 022

usage() {
  cat <<'EOF'
Usage: ./test.sh [--quick] [--label unit|integration|e2e] [--no-deps]

  --quick          Release configuration only (skip the ASan/UBSan build and the fuzz targets)
  --label LABEL    run only the tests with this ctest label (and not the fuzz targets)
  --no-deps        do not check/install packages (offline machine that has them)
  -h, --help       show this help

Integration and e2e tests start their own redis-server and bellhop processes on free
loopback ports; nothing else needs to be running.
EOF
}

QUICK=0
LABEL=""
DEPS=1
while [[ $# -gt 0 ]]; do
  case "$1" in
    --quick) QUICK=1 ;;
    --label)
      [[ $# -ge 2 ]] || { echo "test.sh: --label needs unit, integration or e2e" >&2; exit 2; }
      LABEL=$2; shift ;;
    --label=*) LABEL=${1#*=} ;;
    --no-deps) DEPS=0 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "test.sh: unknown option: $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
case "$LABEL" in
  ""|unit|integration|e2e) ;;
  *) echo "test.sh: --label must be unit, integration or e2e (got '$LABEL')" >&2; exit 2 ;;
esac

step() { printf '==> %s\n' "$*"; }

START=$SECONDS
SUMMARY=()
FAILED=0
TOTAL_PASSED=0
TOTAL_FAILED=0
FAILED_TESTS=()   # "<build dir>: <test name>", for the summary

# Runs one phase, prints its duration, records it; returns the command's status.
phase() {
  local name=$1 t0=$SECONDS rc=0
  shift
  step "$name"
  "$@" || rc=$?
  local dt=$((SECONDS - t0))
  if [[ $rc -eq 0 ]]; then
    step "$name: ok (${dt}s)"
    SUMMARY+=("$name: ok (${dt}s)")
  else
    step "$name: FAILED with status $rc (${dt}s)"
    SUMMARY+=("$name: FAILED (${dt}s)")
    FAILED=1
  fi
  return "$rc"
}

build_jobs() {
  local cpus
  cpus=$(nproc 2>/dev/null || echo 1)
  if [[ ${CI:-} == true ]] || (( cpus <= 2 )); then cpus=2; fi
  echo "$cpus"
}
JOBS=$(build_jobs)

# ctest's closing line "N% tests passed, F tests failed out of T" feeds the final summary.
count_ctest() {
  local log=$1 line total failed
  line=$(grep -E '^[0-9]+% tests passed, [0-9]+ tests? failed out of [0-9]+' "$log" | tail -n 1 || true)
  [[ -n $line ]] || return 0
  failed=$(sed -E 's/.* ([0-9]+) tests? failed out of.*/\1/' <<<"$line")
  total=$(sed -E 's/.* out of ([0-9]+).*/\1/' <<<"$line")
  TOTAL_FAILED=$((TOTAL_FAILED + failed))
  TOTAL_PASSED=$((TOTAL_PASSED + total - failed))
}

# The names in ctest's closing "The following tests FAILED:" list.
failed_ctest_names() {
  sed -n '/^The following tests FAILED:/,$p' "$1" | sed -nE 's/^[[:space:]]+[0-9]+ - ([^ ]+) .*/\1/p'
}

# What ctest printed for one failed test (--output-on-failure): its result line and its output,
# up to the next test's line. The last lines of it, so a CI log's tail names the cause.
failed_ctest_excerpt() {
  local log=$1 name=$2
  awk -v name="$name" '
    /Test +#[0-9]+: / && index($0, ": " name " ") { grab = 1; print; next }
    grab && (/^ *[0-9]+\/[0-9]+ Test +#/ || /^ +Start +[0-9]+: / || /^[0-9]+% tests passed/) { grab = 0 }
    grab { print }
  ' "$log" | tail -n 40
}

run_ctest() {
  local dir=$1 log=$1/test-output.log rc=0 name
  local -a args=(--test-dir "$dir" --output-on-failure --no-tests=error -j2)
  [[ -z $LABEL ]] || args+=(-L "^${LABEL}\$")
  ctest "${args[@]}" 2>&1 | tee "$log" || rc=$?
  count_ctest "$log"
  while read -r name; do
    [[ -n $name ]] && FAILED_TESTS+=("$dir: $name")
  done < <(failed_ctest_names "$log")
  return "$rc"
}

check_build_dir() {
  local dir=$1
  if [[ -e $dir && ! -w $dir ]]; then
    echo "test.sh: $dir is not writable by $(id -un) (built by root?): sudo chown -R $(id -un) build" >&2
    return 1
  fi
}

configure_and_build() {
  local dir=$1
  shift
  check_build_dir "$dir" || return 1
  cmake -S . -B "$dir" -G Ninja "$@" || return 1
  cmake --build "$dir" --parallel "$JOBS"
}

# Runs one configuration: configure+build, then tests (skipped if the build failed).
run_config() {
  local name=$1 dir=$2
  shift 2
  if phase "$name: configure and build ($dir, $JOBS jobs)" configure_and_build "$dir" "$@"; then
    phase "$name: tests${LABEL:+ (label $LABEL)}" run_ctest "$dir" || true
  else
    SUMMARY+=("$name: tests not run (build failed)")
  fi
}

# Builds the fuzz targets (fuzz/README.md) and runs each on its seeds plus mutations of them.
# New inputs go to a scratch corpus, never into fuzz/corpus/; crash artifacts and each
# target's log stay in build/fuzz.
run_fuzz_targets() {
  local dir=build/fuzz runs=${FUZZ_RUNS:-100000} seconds=${FUZZ_SECONDS:-10} rc=0 src t log
  check_build_dir "$dir" || return 1
  command -v clang++ >/dev/null || { echo "test.sh: clang++ not found (install.sh --with-test-deps)" >&2; return 1; }
  cmake -S . -B "$dir" -G Ninja -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_C_COMPILER=clang \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBELLHOP_FUZZ=ON >/dev/null || return 1
  cmake --build "$dir" --parallel "$JOBS" || return 1
  for src in fuzz/fuzz_*.cpp; do
    t=$(basename "$src" .cpp)
    log=$dir/$t.log
    rm -rf "$dir/scratch/$t" "$dir/artifacts/$t"
    mkdir -p "$dir/scratch/$t" "$dir/artifacts/$t"
    local -a dict=()
    [[ ! -f fuzz/$t.dict ]] || dict=("-dict=fuzz/$t.dict")
    if "$dir/fuzz/$t" "-runs=$runs" "-max_total_time=$seconds" "${dict[@]}" \
         "-artifact_prefix=$dir/artifacts/$t/" "$dir/scratch/$t" "fuzz/corpus/$t" >"$log" 2>&1; then
      printf '    %-24s ok: %s\n' "$t" "$(grep -oE '^Done [0-9]+ runs in [0-9]+ second' "$log" | tail -n 1)"
    else
      printf '    %-24s FAILED (log %s, artifacts in %s)\n' "$t" "$log" "$dir/artifacts/$t"
      grep -E 'ERROR|runtime error|invariant failed|SUMMARY|Test unit written' "$log" | head -n 10 || true
      rc=1
    fi
  done
  return "$rc"
}

if [[ $DEPS -eq 1 ]]; then
  phase "packages (install.sh --deps-only --with-test-deps)" \
    bash ./install.sh --deps-only --with-test-deps || { echo "test.sh: cannot continue without the packages" >&2; exit 1; }
fi

# npm packages, pinned by their package-lock.json: the Node.js example consumer's ioredis, and
# playwright-core, which drives Debian's Chromium in the browser tests (it downloads no browser),
# and axe-core, the console pages' accessibility check (a checkout installed before it came needs it).
if [[ $DEPS -eq 1 || ! -d examples/node/node_modules || ! -d tests/browser/node_modules/axe-core ]]; then
  phase "npm packages of examples/node (npm ci)" \
    bash -c 'cd examples/node && npm ci --no-audit --no-fund' || { echo "test.sh: npm ci failed in examples/node" >&2; exit 1; }
  phase "npm packages of tests/browser (npm ci)" \
    bash -c 'cd tests/browser && npm ci --no-audit --no-fund' || { echo "test.sh: npm ci failed in tests/browser" >&2; exit 1; }
fi

run_config release build/release -DCMAKE_BUILD_TYPE=Release -DBELLHOP_SANITIZE=OFF \
  -DBELLHOP_BUILD_TESTS=ON -DBELLHOP_BUILD_BENCH=ON
# The module graph docs/architecture.md draws is the one the build links.
phase "architecture: docs/architecture.md draws the build's module graph" \
  /usr/bin/python3 scripts/check_architecture.py build/release || true

if [[ $QUICK -eq 0 ]]; then
  # Set for the build too: gtest_discover_tests runs the instrumented test binaries.
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
  export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
  run_config asan build/asan -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -g1 -DNDEBUG" -DBELLHOP_SANITIZE=ON \
    -DBELLHOP_BUILD_TESTS=ON -DBELLHOP_BUILD_BENCH=OFF
  if [[ -z $LABEL ]]; then
    phase "fuzz targets: build (build/fuzz, clang++) and a short run of each on its corpus" \
      run_fuzz_targets || true
  fi
fi

# The failed tests' own output once more, the first few of them, just above the summary:
# a CI log is often read from its tail.
shown=0
for entry in "${FAILED_TESTS[@]}"; do
  (( shown < 3 )) || break
  echo
  step "failed test ${entry} (its output's last lines; all of it in ${entry%%:*}/test-output.log)"
  failed_ctest_excerpt "${entry%%:*}/test-output.log" "${entry#*: }"
  shown=$((shown + 1))
done

echo
step "Summary ($((SECONDS - START))s in total)"
for line in "${SUMMARY[@]}"; do
  printf '    %s\n' "$line"
done
for entry in "${FAILED_TESTS[@]}"; do
  printf '    failed: %s\n' "$entry"
done
if [[ $FAILED -eq 0 ]]; then
  echo "test.sh: all phases passed"
else
  echo "test.sh: SOME PHASES FAILED"
fi
echo "total: ${TOTAL_PASSED} passed, ${TOTAL_FAILED} failed"
exit "$FAILED"
