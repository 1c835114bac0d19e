#!/usr/bin/env bash
# bench/run.sh - HAProxy, NGINX and Portcullis side by side in one run of
# ../shared/bench/anchors.sh (results under ./bench-runs/<stamp>/).
# Env is passed through (WORKLOADS="W1 W2", OUT_DIR=..., PORT_BASE=...).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
ANCHORS=${ANCHORS:-$ROOT/../shared/bench/anchors.sh}
[ -f "$ANCHORS" ] || { echo "bench/run.sh: $ANCHORS not found (set ANCHORS=)" >&2; exit 1; }
"$ROOT/scripts/deps.sh"
cmake -S "$ROOT" -B "$ROOT/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$ROOT/build" -j2 >/dev/null
export PC_ROOT=$ROOT
SUT_EXTRA=$ROOT/bench/portcullis-sut.sh exec bash "$ANCHORS"
