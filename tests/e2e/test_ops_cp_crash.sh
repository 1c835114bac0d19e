#!/usr/bin/env bash
# Issue 7.3: kill -9 of portcullisd under load costs no connection; the
# proxy keeps serving; when the control plane is back the proxy reconnects,
# gets the same configuration version and keeps its listening sockets.
# pc-timeout: 120
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/certs.sh"
source "$(dirname "$0")/lib_ops.sh"

pc_web_stack
port=$PC_WEB_PORT
pc_api GET /v1/status
version=$(pc_json .config_version)
inode_before=$(ss -Htlnpe "sport = :$port" | grep -o 'ino:[0-9]*' | sort | tr '\n' ' ')
[ -n "$inode_before" ] || pc_fail "no listening socket found on $port"

"$PC_BIN_DIR/pc_load" -c "127.0.0.1:$port" -t 4 -n 200000 -d 5 -s web.test -r $'GET / HTTP/1.0\r\n\r\n' \
  -l "$PC_TMP/load.log" >"$PC_TMP/load.out" &
load=$!
PC_PIDS+=("$load")
sleep 1
kill -9 "$PC_CP_PID"
wait "$PC_CP_PID" 2>/dev/null || true
sleep 1.5
# Start it again on the same data dir and control socket.
pc_start_cp
pc_wait_applied 10
pc_api GET /v1/status
pc_assert_eq "$(pc_json .config_version)" "$version" "config version after restart"
pc_assert_eq "$(pc_json '[.dataplanes[] | select(.connected)] | length')" 1 "proxy reconnected"
wait "$load" || true
cat "$PC_TMP/load.out" >&2

inode_after=$(ss -Htlnpe "sport = :$port" | grep -o 'ino:[0-9]*' | sort | tr '\n' ' ')
pc_assert_eq "$inode_after" "$inode_before" "listening sockets kept (same inodes)"
total=$(wc -l <"$PC_TMP/load.log")
fails=$(grep -c ' fail ' "$PC_TMP/load.log" || true)
echo "control-plane crash: handshakes=$total failures=$fails" >&2
pc_assert_eq "$fails" 0 "failed connections across the control-plane crash"
[ "$total" -gt 50 ] || pc_fail "too little load ($total)"
grep -q 'reconnect\|connected' "$PC_DP_LOG" || pc_fail "proxy log shows no reconnect"
pc_pass
