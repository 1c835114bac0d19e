#!/usr/bin/env bash
# The control channel, with the fake control plane: listeners added,
# changed (socket kept, open connections untouched) and removed; a bind
# failure and a bad certificate are NACKed with the reason while the old
# configuration keeps serving; malformed and oversized frames are a NACK
# and a reset, then a resync; the control plane going away does not stop
# traffic and the proxy reconnects; SIGTERM drains and exits 0.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/certs.sh"
source "$(dirname "$0")/lib_dp.sh"

pc_mkca ca
pc_mkcert a ca "DNS:a.test"
pc_mkcert b ca "DNS:b.test"
C=$PC_CERTS
read -r na nb taken la lb lc <<<"$(dp_ports 6 | tr '\n' ' ')"
dp_backend name "$na" A
dp_backend name "$nb" B
dp_backend hold "$taken" # a port held by another process (no SO_REUSEPORT)

TGS="{\"id\": \"tg-a\", \"targets\": [{\"host\": \"127.0.0.1\", \"port\": $na}]},
     {\"id\": \"tg-b\", \"targets\": [{\"host\": \"127.0.0.1\", \"port\": $nb}]}"
CERTS="{\"id\": \"cert-a\", \"cert\": \"$C/a.crt\", \"key\": \"$C/a.key\"}"
conf() { dp_write_conf "{\"certificates\": [$CERTS], \"target_groups\": [$TGS], \"listeners\": [$1]}"; }
lsn() { echo "{\"id\": \"$1\", \"port\": $2, \"default_target_group_id\": \"$3\"}"; }
refused() { ! timeout 5 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null; }

conf "$(lsn lsn-a "$la" tg-a)"
dp_start_cp
dp_start_dp
dp_wait_ack 1
pc_assert_eq "$(dp_tool names "$la" 2)" "A:2" "v1"

# Added.
conf "$(lsn lsn-a "$la" tg-a), $(lsn lsn-b "$lb" tg-b)"
dp_push; dp_wait_ack 2
pc_assert_eq "$(dp_tool names "$lb" 2)" "B:2" "listener added"

# Changed (same address, other target group): an open connection keeps its
# configuration and target; new ones take the new route; no re-bind.
dp_tool echo-loop "$la" 2 "$PC_TMP/loop.up" >"$PC_TMP/loop.out" &
loop_pid=$!
pc_wait_for 10 test -e "$PC_TMP/loop.up" || pc_fail "echo loop did not connect"
conf "$(lsn lsn-a "$la" tg-b), $(lsn lsn-b "$lb" tg-b)"
dp_push; dp_wait_ack 3
pc_assert_eq "$(dp_tool names "$la" 2)" "B:2" "listener changed"
wait $loop_pid
n=$(cat "$PC_TMP/loop.out")
[ "$n" -ge 5 ] || pc_fail "open connection disturbed by a change: $n echoes"
pc_assert_eq "$(grep -c "bound on 127.0.0.1:$la" "$PC_DP_LOG")" 1 "changed listener kept its sockets"

# Removed.
conf "$(lsn lsn-a "$la" tg-b)"
dp_push; dp_wait_ack 4
refused "$lb" || pc_fail "removed listener still accepts"

# Bind failure: NACK with the reason; the previous configuration serves.
conf "$(lsn lsn-a "$la" tg-b), $(lsn lsn-c "$taken" tg-a)"
dp_push
reason=$(dp_wait_nack 5)
[[ "$reason" == *"in use"* ]] || pc_fail "bind failure reason: $reason"
pc_assert_eq "$(dp_tool names "$la" 1)" "B:1" "old config serves after a bind NACK"
refused "$lb" || pc_fail "half-applied config after a NACK"

# A certificate whose key does not match: NACK, nothing applied.
CERTS="{\"id\": \"cert-a\", \"cert\": \"$C/a.crt\", \"key\": \"$C/b.key\"}"
conf "$(lsn lsn-a "$la" tg-b), {\"id\": \"lsn-t\", \"port\": $lc, \"protocol\": \"tls\", \"default_target_group_id\": \"tg-a\", \"certificate_ids\": [\"cert-a\"]}"
dp_push
reason=$(dp_wait_nack 6)
[[ "$reason" == *cert-a* ]] || pc_fail "bad certificate reason: $reason"
refused "$lc" || pc_fail "listener of a NACKed snapshot accepts"

# Back to good (v7), then malformed and oversized frames: NACK 0, reset, resync.
CERTS="{\"id\": \"cert-a\", \"cert\": \"$C/a.crt\", \"key\": \"$C/a.key\"}"
conf "$(lsn lsn-a "$la" tg-a)"
dp_push; dp_wait_ack 7
kill -USR1 "$DP_CP_PID"
pc_wait_for 10 grep -q "nack 0: malformed" "$DP_CP_LOG" || pc_fail "no nack for a malformed frame"
pc_wait_for 10 bash -c "[ \$(grep -c 'ack 7\$' '$DP_CP_LOG') -ge 2 ]" || pc_fail "no resync after a malformed frame"
kill -USR2 "$DP_CP_PID"
pc_wait_for 10 bash -c "[ \$(grep -c 'nack 0:' '$DP_CP_LOG') -ge 2 ]" || pc_fail "no nack for an oversized frame"
pc_wait_for 10 bash -c "[ \$(grep -c 'ack 7\$' '$DP_CP_LOG') -ge 3 ]" || pc_fail "no resync after an oversized frame"
pc_assert_eq "$(dp_tool names "$la" 1)" "A:1" "serving after bad frames"

# The control plane goes away: traffic goes on; it comes back: the proxy
# reconnects, reports version 7 and ACKs it at once.
pc_stop "$DP_CP_PID"
pc_assert_eq "$(dp_tool names "$la" 2)" "A:2" "serving without a control plane"
sleep 1
DP_VERSION=7 dp_start_cp
pc_wait_for 15 grep -q "hello node=.* applied=7" "$DP_CP_LOG" || pc_fail "no reconnect"
dp_wait_ack 7
grep -q "snapshot 7 already served" "$PC_DP_LOG" || pc_fail "same version rebuilt"

# SIGTERM: new connections refused at once, the open one finishes, exit 0.
dp_tool echo-loop "$la" 1.2 "$PC_TMP/loop2.up" >"$PC_TMP/loop2.out" &
loop_pid=$!
pc_wait_for 10 test -e "$PC_TMP/loop2.up" || pc_fail "echo loop did not connect"
kill -TERM "$PC_DP_PID"
pc_wait_for 5 refused "$la" || pc_fail "accepting after SIGTERM"
wait $loop_pid
n=$(cat "$PC_TMP/loop2.out")
[ "$n" -ge 3 ] || pc_fail "open connection cut by SIGTERM: $n echoes"
pc_stop "$PC_DP_PID" 5
pc_assert_eq "$PC_RC" 0 "exit status after drain"
pc_pass
