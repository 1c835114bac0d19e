#!/usr/bin/env bash
# Running out of file descriptors: accept(2) fails with EMFILE; the proxy
# pauses accepting for a moment instead of spinning on a readable
# listening socket, keeps serving the connections it has, and accepts
# again once descriptors are free.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_dp.sh"

read -r ne le <<<"$(dp_ports 2 | tr '\n' ' ')"
dp_backend echo "$ne"
dp_write_conf "{\"target_groups\": [{\"id\": \"tg-e\", \"targets\": [{\"host\": \"127.0.0.1\", \"port\": $ne}]}],
  \"listeners\": [{\"id\": \"lsn-e\", \"port\": $le, \"default_target_group_id\": \"tg-e\"}]}"
dp_start_cp
PC_DP_LOG=$PC_TMP/proxy-0.log
PORTCULLIS_GRACE_MS=1000 pc_spawn "$PC_DP_LOG" bash -c "ulimit -n 48; exec \"\$0\" \"\$@\"" \
  "$PC_BIN_DIR/portcullis-proxy" --control-socket "$PC_SOCK" --workers 2 --log-level debug
PC_DP_PID=$PC_LAST_PID
dp_wait_ack 1

# 40 clients need 80 descriptors: some wait in the accept queue.
served=$(dp_tool many "$le" 40 2)
[ "$served" -ge 5 ] && [ "$served" -lt 40 ] || pc_fail "served $served of 40 with 48 descriptors"
grep -q "pausing accepts" "$PC_DP_LOG" || pc_fail "EMFILE not handled"
pauses=$(grep -c "pausing accepts" "$PC_DP_LOG")
[ "$pauses" -lt 100 ] || pc_fail "accept loop spinning: $pauses pauses in about 2 s"
# Descriptors free again: new clients are served.
pc_wait_for 10 bash -c "[ \"\$(timeout 10 python3 $DP_TOOL names $le 3)\" = 'x:3' ]" \
  || pc_fail "not accepting after descriptors were freed: $(dp_tool names "$le" 3)"
pc_stop "$PC_DP_PID"
pc_assert_eq "$PC_RC" 0 "proxy exit status"
pc_pass
