#!/usr/bin/env bash
# Draining through the real stack: a long-lived connection to a target that
# is removed (deregistration_delay_s 2) keeps transferring until the delay
# ends, then the proxy closes it ("drained"); new connections go to the
# remaining target at once. The same for a target set to weight 0.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_ops.sh"
source "$(dirname "$0")/lib_dp.sh"

read -r pa pb l1 <<<"$(dp_ports 3 | tr '\n' ' ')"
dp_backend echo "$pa"   # target A: names tool sees "x"
dp_backend name "$pb" B # target B

# A client that echoes a byte every 50 ms until the proxy closes it (or
# 20 s), then prints "<unix time of the last echo> <unix time closed> <echoes>".
LONG=$PC_TMP/long.py
cat >"$LONG" <<'PY'
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
s.sendall(b"z")
assert s.recv(10) == b"z"
open(sys.argv[2], "w").close()
last, n, end = time.time(), 0, time.time() + 20
try:
    while time.time() < end:
        s.sendall(b"z")
        if s.recv(10) != b"z":
            break
        last, n = time.time(), n + 1
        time.sleep(0.05)
except OSError:
    pass
print("%.3f %.3f %d" % (last, time.time(), n), flush=True)
PY

body() { # 'PORT:WEIGHT ...'
  local t
  t=$(printf '%s\n' $1 | jq -R 'split(":") | {host:"127.0.0.1", port:(.[0]|tonumber), weight:(.[1]|tonumber)}' | jq -s .)
  jq -n --argjson t "$t" '{name:"g", protocol:"tcp", deregistration_delay_s:2, targets:$t}'
}

pc_stack
pc_post /v1/target-groups "$(body "$pa:1")"
pc_post /v1/listeners "$(jq -n --argjson p "$l1" '{name:"web", bind:"127.0.0.1", port:$p, protocol:"tcp", default_target_group_id:"g"}')"
pc_wait_applied 10

# drain_case N 'NEW TARGETS' WHAT
drain_case() {
  local n=$1 targets=$2 what=$3 tput t0 out last closed
  rm -f "$PC_TMP/up$n"
  pc_spawn "$PC_TMP/long$n.log" python3 -u "$LONG" "$l1" "$PC_TMP/up$n"
  pc_wait_for 10 test -e "$PC_TMP/up$n" || pc_fail "$what: long-lived client did not connect"
  # tput <= the switch <= t0: the drain deadline is the switch + 2 s.
  tput=$(date +%s.%N)
  pc_api PUT /v1/target-groups/g "$(body "$targets")"
  pc_expect_status 200
  pc_wait_applied 10
  t0=$(date +%s.%N)
  # New connections go elsewhere at once.
  pc_assert_eq "$(dp_tool names "$l1" 10)" "B:10" "$what: new connections"
  pc_wait_for 15 grep -q . "$PC_TMP/long$n.log" || pc_fail "$what: not closed within 15 s"
  read -r last closed out <"$PC_TMP/long$n.log"
  pc_log "$what: applied $t0, last echo $last, closed $closed, $out echoes"
  # Kept transferring for most of the delay, closed not long after it.
  awk -v l="$last" -v t="$t0" 'BEGIN { exit !(l > t + 1.0) }' \
    || pc_fail "$what: stopped transferring $(awk -v l="$last" -v t="$t0" 'BEGIN{print l-t}') s after the change"
  awk -v c="$closed" -v t="$tput" 'BEGIN { exit !(c > t + 1.5) }' \
    || pc_fail "$what: closed $(awk -v c="$closed" -v t="$tput" 'BEGIN{print c-t}') s after the PUT (delay 2 s): too early"
  awk -v c="$closed" -v t="$t0" 'BEGIN { exit !(c < t + 4.0) }' \
    || pc_fail "$what: closed $(awk -v c="$closed" -v t="$t0" 'BEGIN{print c-t}') s after the change (delay 2 s): too late"
}

drain_case 1 "$pb:1" "removed target"
pc_assert_eq "$(dp_count 'closed: drained')" 1 "drained close logged"
# Back to A alone, then A at weight 0.
pc_api PUT /v1/target-groups/g "$(body "$pa:1")"
pc_expect_status 200
pc_wait_applied 10
pc_assert_eq "$(dp_tool names "$l1" 3)" "x:3" "A serves again"
drain_case 2 "$pa:0 $pb:1" "weight 0"
pc_assert_eq "$(dp_count 'closed: drained')" 2 "drained close logged (weight 0)"

pc_stop "$PC_DP_PID"
pc_assert_eq "$PC_RC" 0 "proxy exit status"
pc_pass
