#!/usr/bin/env bash
# Soak: a steady mixed load (inbound, an AI engine's replies, outbound, dashboards) on a fresh
# bellhop with its embedded Redis for DURATION_S (default 1800), resident memory sampled every
# SAMPLE_S (default 30); bench/soak.py does the work and its docstring says what is measured.
#   bench/run_soak.sh [path/to/bellhop]     (default build/release/gateway/bellhop)
# Knobs: DURATION_S, WARMUP_S (default 300), SAMPLE_S, INBOUND (guest messages/s, default 100),
# OUTBOUND (extra outbound/s, default 50), DASHBOARDS (default 20). Loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."
bellhop=${1:-build/release/gateway/bellhop}
[ -x "$bellhop" ] || { echo "missing $bellhop (build the bellhop target)" >&2; exit 1; }
exec /usr/bin/python3 bench/soak.py --bellhop "$bellhop" --duration "${DURATION_S:-1800}" \
  --warmup "${WARMUP_S:-300}" --sample "${SAMPLE_S:-30}" --inbound "${INBOUND:-100}" \
  --outbound "${OUTBOUND:-50}" --dashboards "${DASHBOARDS:-20}"
