# lib.sh - sourced by every e2e test: temp dirs, free loopback ports, the
# real daemons started and always stopped by pid, and small assertions.
#
#   source "$(dirname "$0")/lib.sh"
#   pc_start_cp; pc_start_proxy
#   pc_api GET /v1/status; pc_expect_status 200
#   pc_pass
#
# Everything a test starts goes through pc_spawn, so the EXIT trap stops it
# whatever happens (failed assertion, timeout signal from ctest, Ctrl-C).
set -euo pipefail

PC_SRC_DIR=${PC_SRC_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
PC_BIN_DIR=${PC_BIN_DIR:-$PC_SRC_DIR/build/bin}
PC_TEST_NAME=$(basename "$0" .sh)
PC_TMP=$(mktemp -d "${TMPDIR:-/tmp}/pc-$PC_TEST_NAME.XXXXXX")
PC_PIDS=()
PC_TOKEN=${PC_TOKEN:-e2e-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')}
PC_STATUS=
PC_BODY=

pc_log() { printf '[%s] %s\n' "$PC_TEST_NAME" "$*" >&2; }

# Stop every process we started: TERM, a bounded wait, then KILL.
pc_cleanup() {
  local rc=$? pid i
  for pid in "${PC_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for i in $(seq 50); do
    local alive=0
    for pid in "${PC_PIDS[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [ $alive -eq 0 ] && break
    sleep 0.1
  done
  for pid in "${PC_PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
  if [ $rc -ne 0 ]; then
    pc_log "FAILED (exit $rc); logs follow"
    for f in "$PC_TMP"/*.log; do
      [ -f "$f" ] || continue
      echo "----- $f (last 40 lines)" >&2
      tail -n 40 "$f" >&2
    done
  fi
  [ -n "${PC_KEEP_TMP:-}" ] || rm -rf "$PC_TMP"
  exit $rc
}
trap pc_cleanup EXIT
trap 'exit 143' TERM
trap 'exit 130' INT

pc_fail() { pc_log "FAIL: $*"; exit 1; }
pc_pass() { pc_log "ok"; }

# A free TCP port on 127.0.0.1 (the kernel picks; a race is possible but rare).
# Ports already handed out in this test are never handed out again (the
# kernel may offer a port twice once the probing socket is closed).
pc_free_port() {
  local p i
  for i in $(seq 50); do
    p=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    if ! grep -qx "$p" "$PC_TMP/.ports" 2>/dev/null; then
      echo "$p" >>"$PC_TMP/.ports"
      echo "$p"
      return 0
    fi
  done
  pc_fail "no fresh free port"
}

# pc_spawn LOGFILE CMD... : start CMD in the background, output to LOGFILE,
# remember its pid in PC_LAST_PID and PC_PIDS.
pc_spawn() {
  local log=$1; shift
  "$@" >"$log" 2>&1 &
  PC_LAST_PID=$!
  PC_PIDS+=("$PC_LAST_PID")
}

# pc_wait_for SECONDS CMD... : poll CMD every 50 ms until it succeeds.
pc_wait_for() {
  local secs=$1; shift
  local deadline=$((SECONDS + secs))
  while ! "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || return 1
    sleep 0.05
  done
}

# pc_stop PID [SECONDS]: SIGTERM and wait; sets PC_RC to the exit status
# ("timeout" if it had to be killed). Call it directly, not in $(...): only
# the shell that started a process can wait for it.
pc_stop() {
  kill -TERM "$1" 2>/dev/null || true
  pc_wait_exit "$1" "${2:-10}"
}

# pc_wait_exit PID [SECONDS]: wait for PID to end by itself (KILL after the
# bound); sets PC_RC like pc_stop.
pc_wait_exit() {
  local pid=$1 secs=${2:-10} i
  for i in $(seq $((secs * 20))); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  if kill -0 "$pid" 2>/dev/null; then
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    PC_RC=timeout
    return
  fi
  PC_RC=0
  wait "$pid" 2>/dev/null || PC_RC=$?
}

# pc_start_cp [ARGS...]: portcullisd on a free API port with a fresh data
# dir. Sets PC_CP_PID, PC_API (http://host:port), PC_DATA, PC_SOCK, PC_CP_LOG.
pc_start_cp() {
  PC_DATA=${PC_DATA:-$PC_TMP/var}
  PC_SOCK=${PC_SOCK:-$PC_DATA/control.sock}
  PC_CP_LOG=$PC_TMP/portcullisd.log
  : >"$PC_CP_LOG.tmp"
  PORTCULLIS_ADMIN_TOKEN=$PC_TOKEN pc_spawn "$PC_CP_LOG.tmp" "$PC_BIN_DIR/portcullisd" \
    --data-dir "$PC_DATA" --api-listen 127.0.0.1:0 --control-socket "$PC_SOCK" \
    --log-level debug "$@"
  PC_CP_PID=$PC_LAST_PID
  # Keep appending to one log across restarts.
  pc_wait_for 10 grep -q 'api listening on' "$PC_CP_LOG.tmp" \
    || { cat "$PC_CP_LOG.tmp" >&2; pc_fail "portcullisd did not start"; }
  PC_API=http://$(sed -n 's/.*api listening on \([^ ]*\).*/\1/p' "$PC_CP_LOG.tmp" | tail -1)
  ln -sf "$PC_CP_LOG.tmp" "$PC_CP_LOG" 2>/dev/null || true
  pc_wait_for 10 curl -fsS "$PC_API/healthz" || pc_fail "portcullisd /healthz not answering"
}

# pc_start_proxy [ARGS...]: portcullis-proxy on the control socket. Sets
# PC_DP_PID, PC_DP_LOG. Waits until the control plane reports it connected
# when the status route exists.
pc_start_proxy() {
  PC_DP_LOG=$PC_TMP/proxy-${PC_DP_N:=0}.log
  PC_DP_N=$((PC_DP_N + 1))
  pc_spawn "$PC_DP_LOG" "$PC_BIN_DIR/portcullis-proxy" --control-socket "$PC_SOCK" \
    --workers "${PC_WORKERS:-2}" --node-id "${PC_NODE_ID:-e2e-$PC_DP_N}" --log-level debug "$@"
  PC_DP_PID=$PC_LAST_PID
  # A quieter --log-level among ARGS hides the start line: then only check
  # that it stays up (callers wait for the control plane to see it).
  if [[ " $* " == *" --log-level "* ]]; then
    sleep 0.2
    kill -0 "$PC_DP_PID" 2>/dev/null || pc_fail "proxy did not start"
  else
    pc_wait_for 10 grep -q 'starting' "$PC_DP_LOG" || pc_fail "proxy did not start"
  fi
}

# pc_api METHOD PATH [JSON-BODY | @FILE] [EXTRA CURL ARGS...]: call the API
# with the token. Sets PC_STATUS (HTTP code) and PC_BODY.
pc_api() {
  local method=$1 path=$2 body=${3:-}
  shift 2; [ $# -gt 0 ] && shift
  local args=(-sS -o "$PC_TMP/body" -w '%{http_code}' -X "$method"
              -H "Authorization: Bearer $PC_TOKEN" --max-time 30)
  if [ -n "$body" ]; then
    args+=(-H 'Content-Type: application/json' --data-binary "$body")
  fi
  PC_STATUS=$(curl "${args[@]}" "$@" "$PC_API$path" || echo 000)
  PC_BODY=$(cat "$PC_TMP/body" 2>/dev/null || true)
}

# pc_expect_status CODE: the last pc_api returned CODE.
pc_expect_status() {
  [ "$PC_STATUS" = "$1" ] || pc_fail "expected HTTP $1, got $PC_STATUS: $PC_BODY"
}

# pc_json FILTER: jq FILTER applied to the last body (raw output).
pc_json() { printf '%s' "$PC_BODY" | jq -r "$1"; }

# pc_assert_eq GOT WANT MESSAGE
pc_assert_eq() {
  [ "$1" = "$2" ] || pc_fail "$3: got '$1', want '$2'"
}
