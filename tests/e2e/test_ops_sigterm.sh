#!/usr/bin/env bash
# Issue 7.7: SIGTERM on the proxy: it stops accepting at once, lets an open
# connection finish within the grace period, and exits 0.
# pc-timeout: 60
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/certs.sh"
source "$(dirname "$0")/lib_ops.sh"

pc_web_stack
port=$PC_WEB_PORT

pc_spawn "$PC_TMP/hold.out" python3 "$PC_TOOLS/hold.py" 127.0.0.1 "$port" 2 web.test
hold=$PC_LAST_PID
pc_wait_for 10 grep -q " ok " "$PC_TMP/hold.out" || pc_fail "long-lived connection did not start"
kill -TERM "$PC_DP_PID"
t_term=$(date +%s%3N)
sleep 0.2
if curl -sk --max-time 2 --resolve web.test:$port:127.0.0.1 "https://web.test:$port/" >/dev/null 2>&1; then
  pc_fail "still accepting after SIGTERM"
fi
pc_wait_exit "$hold" 15
pc_assert_eq "$PC_RC" 0 "open connection finished cleanly during the grace period"
after=$(awk -v t="$t_term" '$1 > t && $2 == "ok"' "$PC_TMP/hold.out" | wc -l)
[ "$after" -gt 0 ] || pc_fail "open connection did not transfer after SIGTERM"
pc_stop "$PC_DP_PID" 30
pc_assert_eq "$PC_RC" 0 "proxy exit status after SIGTERM"
pc_pass
