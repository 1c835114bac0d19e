# lib_hc.sh - health-check e2e helpers, sourced after lib.sh and lib_ops.sh.
#
#   hc_backend MODE PORT [CERT KEY]   # tools/hc_backend.py; sets HC_BE_PID
#   hc_state TG PORT                  # HC_STATE="state|reason" of the target on PORT
#   hc_wait TG PORT STATE [SECONDS]   # until GET /health says STATE for it

# hc_backend MODE PORT [ARGS...]: a health-check backend (see hc_backend.py),
# logging to $PC_TMP/hc-PORT.log (appended across restarts).
hc_backend() {
  local mode=$1 port=$2; shift 2
  local log=$PC_TMP/hc-$port.log before=0
  [ -f "$log" ] && before=$(grep -c ready "$log" || true)
  python3 "$PC_TOOLS/hc_backend.py" "$mode" "$port" "$@" >>"$log" 2>&1 &
  HC_BE_PID=$!
  PC_PIDS+=("$HC_BE_PID")
  _hc_ready() { [ "$(grep -c ready "$log" || true)" -gt "$before" ]; }
  pc_wait_for 20 _hc_ready || pc_fail "hc backend $mode on $port did not start"
}

# hc_conns PORT [pp2=yes|pp2=no]: connections the backend on PORT logged.
hc_conns() { grep -c "conn ${2:-}" "$PC_TMP/hc-$1.log" || true; }

# hc_conns_over PORT N [pp2=...]: more than N such connections (for pc_wait_for).
hc_conns_over() { [ "$(hc_conns "$1" "${3:-}")" -gt "$2" ]; }

# hc_state TG PORT: sets HC_STATE to "state|reason" of the target of TG on
# 127.0.0.1:PORT ("" when not listed).
hc_state() {
  pc_api GET "/v1/target-groups/$1/health"
  [ "$PC_STATUS" = 200 ] || pc_fail "GET health: $PC_STATUS $PC_BODY"
  HC_STATE=$(printf '%s' "$PC_BODY" | jq -r --argjson p "$2" \
    '.targets[] | select(.port == $p) | "\(.state)|\(.reason)"')
}

# hc_wait TG PORT STATE [SECONDS]: poll GET /health (bounded) until the
# target on PORT is in STATE; leaves "state|reason" in HC_STATE.
hc_wait() {
  local tg=$1 port=$2 want=$3 secs=${4:-15} deadline
  deadline=$((SECONDS + secs))
  while :; do
    hc_state "$tg" "$port"
    case $HC_STATE in "$want|"*) return 0 ;; esac
    [ $SECONDS -lt $deadline ] || pc_fail "target on port $port of $tg: '$HC_STATE', want $want within ${secs}s"
    sleep 0.1
  done
}
