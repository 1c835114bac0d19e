#!/usr/bin/env bash
# Balancing through the real stack: weights 1:3 split 400 short connections
# within a tolerance for round_robin and least_conn; least_conn sends new
# connections to the idle target while another holds long-lived ones;
# weight 0 takes no new connections; a dead target (connect refused, no
# health check) costs clients nothing: the connect is retried elsewhere.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_ops.sh"
source "$(dirname "$0")/lib_dp.sh"

read -r pa pb dead l1 <<<"$(dp_ports 4 | tr '\n' ' ')"
dp_backend name "$pa" A
dp_backend name "$pb" B

# tg_body ALGO 'PORT:WEIGHT ...': a target-group body named "g".
tg_body() {
  local t
  t=$(printf '%s\n' $2 | jq -R 'split(":") | {host:"127.0.0.1", port:(.[0]|tonumber), weight:(.[1]|tonumber)}' | jq -s .)
  jq -n --arg a "$1" --argjson t "$t" '{name:"g", protocol:"tcp", algorithm:$a, targets:$t}'
}
set_tg() {
  pc_api PUT /v1/target-groups/g "$(tg_body "$1" "$2")"
  pc_expect_status 200
  pc_wait_applied 10
}
# count NAME "A:n B:m": n for NAME (0 if absent).
count() { local x; for x in $2; do [ "${x%%:*}" = "$1" ] && { echo "${x#*:}"; return; }; done; echo 0; }

pc_stack
pc_post /v1/target-groups "$(tg_body round_robin "$pa:1 $pb:3")"
pc_post /v1/listeners "$(jq -n --argjson p "$l1" '{name:"web", bind:"127.0.0.1", port:$p, protocol:"tcp", default_target_group_id:"g"}')"
pc_wait_applied 10

# Weights 1:3 over 400 connections: A gets 25%. Smooth weighted round robin
# is exact per worker: +- 3 points (a 1:2.5 split fails). least_conn breaks
# ties the same way, but a connection still closing on the proxy when the
# next one is chosen shifts a few: +- 5 points.
for algo in round_robin least_conn; do
  if [ "$algo" = round_robin ]; then lo=88 hi=112; else lo=80 hi=120; fi
  set_tg "$algo" "$pa:1 $pb:3"
  out=$(dp_tool names "$l1" 400)
  a=$(count A "$out"); b=$(count B "$out")
  [ $((a + b)) = 400 ] || pc_fail "$algo: not every connection served: $out"
  [ "$a" -ge "$lo" ] && [ "$a" -le "$hi" ] || pc_fail "$algo 1:3: $out (A outside $lo..$hi)"
  pc_log "$algo 1:3 over 400: $out"
done

# Weight 0: no new connections.
set_tg round_robin "$pa:0 $pb:1"
pc_assert_eq "$(dp_tool names "$l1" 20)" "B:20" "weight 0 takes no new connections"

# A dead target (nothing listens) without health check: every client still
# reaches a live one through the retry.
set_tg round_robin "$dead:1 $pa:1 $pb:1"
out=$(dp_tool names "$l1" 30)
pc_assert_eq "$(( $(count A "$out") + $(count B "$out") ))" 30 "dead target retried: $out"
grep -q "connect to 127.0.0.1:$dead: Connection refused" "$PC_DP_LOG" || pc_fail "dead target never tried"

# least_conn under long-lived connections: A alone gets 6 held connections,
# then B joins: new connections go to the idle B, round robin would not.
set_tg least_conn "$pa:1"
HOLD=$PC_TMP/hold.py
cat >"$HOLD" <<'PY'
import socket, sys, time
port, n, secs = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
held = []
for _ in range(n):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(b"x")
    f = s.makefile("rb")
    held.append((s, f.readline().decode().strip()))
print("held", " ".join(name for _, name in held), flush=True)
time.sleep(secs)
PY
pc_spawn "$PC_TMP/hold.log" python3 -u "$HOLD" "$l1" 6 60
HOLD_PID=$PC_LAST_PID
pc_wait_for 10 grep -q "^held" "$PC_TMP/hold.log" || pc_fail "holder did not connect"
pc_assert_eq "$(cat "$PC_TMP/hold.log")" "held A A A A A A" "held connections on A"
set_tg least_conn "$pa:1 $pb:1"
pc_assert_eq "$(dp_tool names "$l1" 12)" "B:12" "least_conn prefers the idle target"
set_tg round_robin "$pa:1 $pb:1"
out=$(dp_tool names "$l1" 12)
[ "$(count A "$out")" -ge 4 ] || pc_fail "round robin with held connections: $out"
kill "$HOLD_PID"

pc_stop "$PC_DP_PID"
pc_assert_eq "$PC_RC" 0 "proxy exit status"
pc_pass
