#!/usr/bin/env bash
# Health and balancing through the real stack, http health checks against
# backends that answer 503 on demand or die: once GET /health says a target
# is unhealthy no new client is sent to it, traffic comes back when it
# recovers (also after a kill and restart by pid); with every target
# unhealthy, fail_open true still serves and fail_open false refuses.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_ops.sh"
source "$(dirname "$0")/lib_dp.sh"

# A backend for both: "GET ..." gets an HTTP answer, 503 while the control
# file holds "503", else 200; any other first byte: the backend's name, then
# an echo (dp_tool names), logged as one "client" line.
LBB=$PC_TMP/lbb.py
cat >"$LBB" <<'PY'
import os, socket, sys, threading
port, name, ctl = int(sys.argv[1]), sys.argv[2], sys.argv[3]
lock = threading.Lock()
def handle(c):
    try:
        c.settimeout(5)
        first = c.recv(4, socket.MSG_PEEK)
        if first.startswith(b"GET"):
            req = b""
            while b"\r\n\r\n" not in req and len(req) < 8192:
                d = c.recv(4096)
                if not d:
                    break
                req += d
            try:
                bad = open(ctl).read().strip() == "503"
            except OSError:
                bad = False
            st = b"503 Service Unavailable" if bad else b"200 OK"
            c.sendall(b"HTTP/1.1 " + st + b"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            return
        if not first:
            return
        with lock:
            print("client", flush=True)
        c.sendall((name + "\n").encode())
        while True:
            d = c.recv(65536)
            if not d:
                c.shutdown(socket.SHUT_WR)
                return
            c.sendall(d)
    except OSError:
        pass
    finally:
        c.close()
ls = socket.socket()
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("127.0.0.1", port))
ls.listen(128)
print("ready", flush=True)
while True:
    c, _ = ls.accept()
    threading.Thread(target=handle, args=(c,), daemon=True).start()
PY
read -r pa pb l1 <<<"$(dp_ports 3 | tr '\n' ' ')"
start_be() { # NAME PORT
  : >"$PC_TMP/be$1.log"
  pc_spawn "$PC_TMP/be$1.log" python3 -u "$LBB" "$2" "$1" "$PC_TMP/ctl$1"
  eval "PID_$1=$PC_LAST_PID"
  pc_wait_for 10 grep -q ready "$PC_TMP/be$1.log" || pc_fail "backend $1 did not start"
}
clients() { grep -c '^client' "$PC_TMP/be$1.log" || true; }
start_be A "$pa"
start_be B "$pb"

body() { # FAIL_OPEN [INTERVAL_MS]
  jq -n --argjson pa "$pa" --argjson pb "$pb" --argjson fo "$1" --argjson iv "${2:-200}" '{name:"g", protocol:"tcp",
    targets:[{host:"127.0.0.1", port:$pa}, {host:"127.0.0.1", port:$pb}],
    health_check:{protocol:"http", path:"/hc", interval_ms:$iv, timeout_ms:150,
                  healthy_threshold:2, unhealthy_threshold:2, fail_open:$fo}}'
}
# state PORT: the target's state in GET /health.
state() {
  pc_api GET /v1/target-groups/g/health
  pc_json ".targets[] | select(.port == $1) | .state"
}
wait_state() { # PORT STATE WHAT
  local i
  for i in $(seq 100); do
    [ "$(state "$1")" = "$2" ] && return 0
    sleep 0.1
  done
  pc_fail "$3: target on $1 never $2 (GET /health: $PC_BODY)"
}
count() { local x; for x in $2; do [ "${x%%:*}" = "$1" ] && { echo "${x#*:}"; return; }; done; echo 0; }

pc_stack
pc_post /v1/target-groups "$(body true)"
pc_post /v1/listeners "$(jq -n --argjson p "$l1" '{name:"web", bind:"127.0.0.1", port:$p, protocol:"tcp", default_target_group_id:"g"}')"
pc_wait_applied 10
wait_state "$pa" healthy "start"
wait_state "$pb" healthy "start"
out=$(dp_tool names "$l1" 20)
[ "$(count A "$out")" -gt 0 ] && [ "$(count B "$out")" -gt 0 ] || pc_fail "both healthy: $out"

# B answers 503: once unhealthy, no client reaches it.
echo 503 >"$PC_TMP/ctlB"
wait_state "$pb" unhealthy "http 503"
pc_api GET /v1/target-groups/g/health
[[ "$(pc_json ".targets[] | select(.port == $pb) | .reason")" == *503* ]] || pc_fail "reason: $PC_BODY"
nb=$(clients B)
pc_assert_eq "$(dp_tool names "$l1" 20)" "A:20" "unhealthy B gets no clients"
pc_assert_eq "$(clients B)" "$nb" "no connection reached unhealthy B"

# B recovers: traffic comes back.
rm -f "$PC_TMP/ctlB"
wait_state "$pb" healthy "recovered"
out=$(dp_tool names "$l1" 20)
[ "$(count B "$out")" -gt 0 ] || pc_fail "recovered B gets no clients: $out"

# B killed: unhealthy, then no connect attempt at all goes to it.
# Within unhealthy_threshold x interval + timeout + 2.5 s of slack.
t_kill=$(date +%s%3N)
pc_stop "$PID_B"
wait_state "$pb" unhealthy "killed"
took=$(($(date +%s%3N) - t_kill))
pc_log "B unhealthy ${took} ms after the kill"
[ "$took" -le $((2 * 200 + 150 + 2500)) ] || pc_fail "B unhealthy only ${took} ms after the kill (bound 3050 ms)"
before=$(dp_count "connect to 127.0.0.1:$pb")
pc_assert_eq "$(dp_tool names "$l1" 20)" "A:20" "killed B gets no clients"
pc_assert_eq "$(dp_count "connect to 127.0.0.1:$pb")" "$before" "no connect attempt to unhealthy B"
# A new interval_ms keeps the verdict: B stays unhealthy and out of rotation.
pc_api PUT /v1/target-groups/g "$(body true 250)"
pc_expect_status 200
pc_wait_applied 10
pc_assert_eq "$(state "$pb")" unhealthy "B after an interval_ms change"
pc_assert_eq "$(dp_tool names "$l1" 20)" "A:20" "B after an interval_ms change gets no clients"
pc_assert_eq "$(dp_count "connect to 127.0.0.1:$pb")" "$before" "no connect attempt to B after an interval_ms change"
# Restarted by pid on the same port: back in rotation.
start_be B "$pb"
wait_state "$pb" healthy "restarted"
out=$(dp_tool names "$l1" 20)
[ "$(count B "$out")" -gt 0 ] || pc_fail "restarted B gets no clients: $out"

# Every target unhealthy. fail_open true (the default): still served.
echo 503 >"$PC_TMP/ctlA"
echo 503 >"$PC_TMP/ctlB"
wait_state "$pa" unhealthy "all down"
wait_state "$pb" unhealthy "all down"
out=$(dp_tool names "$l1" 10)
pc_assert_eq "$(( $(count A "$out") + $(count B "$out") ))" 10 "fail_open true serves: $out"
# fail_open false: refused, with the reason logged.
pc_api PUT /v1/target-groups/g "$(body false)"
pc_expect_status 200
pc_wait_applied 10
wait_state "$pa" unhealthy "fail_open false"
wait_state "$pb" unhealthy "fail_open false"
na=$(clients A); nb=$(clients B)
out=$(dp_tool raw "$l1" x)
[[ "$out" == "b'' "* ]] || pc_fail "fail_open false: client got $out"
pc_assert_eq "$(clients A) $(clients B)" "$na $nb" "fail_open false: no backend reached"
pc_wait_for 5 grep -q "closed: no_target - no healthy target" "$PC_DP_LOG" || pc_fail "refusal not logged"
# ... and recovery serves again.
rm -f "$PC_TMP/ctlA" "$PC_TMP/ctlB"
wait_state "$pa" healthy "recovered from all down"
out=$(dp_tool names "$l1" 10)
[ "$(( $(count A "$out") + $(count B "$out") ))" = 10 ] || pc_fail "after recovery: $out"

pc_stop "$PC_DP_PID"
pc_assert_eq "$PC_RC" 0 "proxy exit status"
pc_pass
