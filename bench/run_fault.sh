#!/usr/bin/env bash
# Fault runs: SIGKILL of bellhop and of its embedded Redis, repeatedly, under inbound load and
# under outbound load (bench/fault_run.py does the work; its docstring says what is checked).
#   bench/run_fault.sh [path/to/bellhop]     (default build/release/gateway/bellhop)
# Knobs (environment): KILLS (per phase and target, default 10), INTERVAL (mean seconds between
# kills, default 2), WORKERS (posting threads, default 8), CONCURRENCY (outbound.concurrency,
# default 8), OUTBOUND_RATE (new outbound messages/s, default 300), TARGETS (default "bellhop redis"), PHASES (default "inbound outbound poison"; poison: the restarts are its kills,
# TARGETS do not apply).
# Prints one fault_run line per run; exit status 1 if any check failed. Loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."
bellhop=${1:-build/release/gateway/bellhop}
[ -x "$bellhop" ] || { echo "missing $bellhop (build the bellhop target)" >&2; exit 1; }
command -v pgrep >/dev/null || { echo "pgrep not found (procps)" >&2; exit 1; }
rc=0
for phase in ${PHASES:-inbound outbound poison}; do
  targets=${TARGETS:-bellhop redis}
  [ "$phase" = poison ] && targets=bellhop
  for target in $targets; do
    /usr/bin/python3 bench/fault_run.py --bellhop "$bellhop" --phase "$phase" --target "$target" \
      --kills "${KILLS:-10}" --interval "${INTERVAL:-2}" --workers "${WORKERS:-8}" \
      --concurrency "${CONCURRENCY:-8}" --outbound-rate "${OUTBOUND_RATE:-300}" | grep -v '^fault_run result=' || rc=1
  done
done
echo "run_fault: $([ $rc -eq 0 ] && echo ok || echo FAILED)"
exit $rc
