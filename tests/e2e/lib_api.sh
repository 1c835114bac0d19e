# lib_api.sh - helpers for the control-plane API tests. Sourced after lib.sh.

# pc_expect_error STATUS CODE [FIELD]: the last pc_api failed as expected.
pc_expect_error() {
  pc_expect_status "$1"
  local code field
  code=$(pc_json '.error.code')
  [ "$code" = "$2" ] || pc_fail "expected error code $2 (HTTP $1), got '$code': $PC_BODY"
  if [ $# -ge 3 ]; then
    field=$(pc_json '.error.field')
    [ "$field" = "$3" ] || pc_fail "expected error field '$3' for $2, got '$field': $PC_BODY"
  fi
}

# pc_api_raw ARGS...: curl with the token; sets PC_STATUS and PC_BODY.
pc_api_raw() {
  PC_STATUS=$(curl -sS -o "$PC_TMP/body" -w '%{http_code}' --max-time 30 \
    -H "Authorization: Bearer $PC_TOKEN" "$@" || echo 000)
  PC_BODY=$(cat "$PC_TMP/body" 2>/dev/null || true)
}

# pc_fake_proxy NODE MODE [ARGS...]: a fake proxy (fake_proxy.py) on the
# control socket, frames logged to $PC_TMP/NODE.jsonl. Waits until the
# control plane lists it as connected. Sets PC_FAKE_PID.
pc_fake_proxy() {
  local node=$1 mode=$2; shift 2
  pc_spawn "$PC_TMP/$node.log" python3 "$PC_SRC_DIR/tests/e2e/fake_proxy.py" \
    --socket "$PC_SOCK" --node-id "$node" --mode "$mode" --log "$PC_TMP/$node.jsonl" "$@"
  PC_FAKE_PID=$PC_LAST_PID
  pc_wait_for 10 _pc_connected "$node" || pc_fail "fake proxy $node did not connect"
}

_pc_connected() {
  curl -sf -H "Authorization: Bearer $PC_TOKEN" "$PC_API/v1/status" \
    | jq -e --arg n "$1" '.dataplanes[] | select(.id == $n and .connected)' >/dev/null
}

# pc_frames NODE JQ-FILTER: apply a jq filter (with -s) to the frames NODE received.
pc_frames() {
  jq -s -r "$2" "$PC_TMP/$1.jsonl"
}

# pc_wait_frames NODE JQ-CONDITION: wait until the frames of NODE satisfy it.
pc_wait_frames() {
  pc_wait_for 10 jq -s -e "$2" "$PC_TMP/$1.jsonl"
}
