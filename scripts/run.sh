#!/usr/bin/env bash
# run.sh - install what is missing, build, and start the control plane and
# one proxy with working defaults (state in ./var). Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j2 2>&1 | grep -E 'error|warning' || true
[ -x build/bin/portcullisd ] || { echo "run.sh: build failed" >&2; exit 1; }

API=${PORTCULLIS_API_LISTEN:-127.0.0.1:9000}
mkdir -p var && chmod 700 var
CP_PID= DP_PID=
stop() {
  trap - INT TERM EXIT
  [ -n "$DP_PID" ] && kill -TERM "$DP_PID" 2>/dev/null
  [ -n "$CP_PID" ] && kill -TERM "$CP_PID" 2>/dev/null
  wait 2>/dev/null
  echo "run.sh: stopped"
}
trap stop INT TERM EXIT

build/bin/portcullisd --data-dir ./var --api-listen "$API" 2> >(tee -a var/portcullisd.log >&2) &
CP_PID=$!
for _ in $(seq 100); do
  curl -fsS "http://$API/healthz" >/dev/null 2>&1 && break
  kill -0 "$CP_PID" 2>/dev/null || { echo "run.sh: portcullisd did not start (see above)" >&2; exit 1; }
  sleep 0.1
done
build/bin/portcullis-proxy --control-socket ./var/control.sock 2> >(tee -a var/proxy.log >&2) &
DP_PID=$!

TOKEN=${PORTCULLIS_ADMIN_TOKEN:-$(cat var/admin.token 2>/dev/null || true)}
cat <<MSG

Portcullis is running: control plane pid $CP_PID, proxy pid $DP_PID.
  admin token: ${TOKEN:-<none yet>}
  try:  curl -H "Authorization: Bearer ${TOKEN:-\$TOKEN}" http://$API/v1/status
Press Ctrl-C to stop both.

MSG
wait -n "$CP_PID" "$DP_PID" || true
