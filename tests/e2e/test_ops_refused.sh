#!/usr/bin/env bash
# Issue 7.5: a listener on a port another process holds is refused by the
# proxy (NACK): the API answers 503 with the reason, nothing is written,
# and the existing listener's traffic is untouched.
# pc-timeout: 90
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/certs.sh"
source "$(dirname "$0")/lib_ops.sh"

pc_web_stack
port=$PC_WEB_PORT
pc_api GET /v1/status
version=$(pc_json .config_version)

# Another process holds this port.
taken=$(pc_free_port)
pc_spawn "$PC_TMP/squatter.log" python3 -c "
import socket, time
s = socket.socket(); s.bind(('127.0.0.1', $taken)); s.listen(1); print('ready', flush=True)
time.sleep(300)"
pc_wait_for 10 grep -q ready "$PC_TMP/squatter.log" || pc_fail "squatter did not start"

"$PC_BIN_DIR/pc_load" -c "127.0.0.1:$port" -t 2 -n 100000 -d 3 -s web.test -r $'GET / HTTP/1.0\r\n\r\n' \
  -l "$PC_TMP/load.log" >"$PC_TMP/load.out" &
load=$!
PC_PIDS+=("$load")
sleep 0.5

pc_api POST /v1/listeners "$(jq -n --argjson p "$taken" '{name:"clash", bind:"127.0.0.1", port:$p,
  protocol:"tcp", default_target_group_id:"origin"}')"
pc_expect_status 503
pc_assert_eq "$(pc_json .error.code)" dataplane_rejected "error code"
pc_json .error.message | grep -qi "in use\|$taken" || pc_fail "reason not passed on: $PC_BODY"

pc_api GET /v1/listeners/clash
pc_expect_status 404
pc_api GET /v1/listeners
pc_assert_eq "$(pc_json '.listeners | length')" 1 "listeners after the refused change"
n=$(sqlite3 "file:$PC_DATA/portcullis.db?mode=ro" "select count(*) from listeners" 2>/dev/null || echo "?")
pc_assert_eq "$n" 1 "listener rows in the database"

# The proxy still serves the previous configuration, and the API keeps working.
pc_assert_eq "$(curl -sk --resolve web.test:$port:127.0.0.1 "https://web.test:$port/")" origin "existing listener"
pc_api GET /v1/status
[ "$(pc_json .config_version)" -ge "$version" ] || pc_fail "config_version went backwards"
wait "$load" || true
cat "$PC_TMP/load.out" >&2
fails=$(grep -c ' fail ' "$PC_TMP/load.log" || true)
pc_assert_eq "$fails" 0 "failures on the existing listener"
pc_pass
