#!/usr/bin/env bash
# The relay: 100 MiB each way with matching SHA-256 (plain and through TLS
# offload), half-close, a dead target skipped, all targets dead closes the
# client promptly, connect / idle timeouts, a backend that never reads, the
# per-listener connection limit.
# pc-timeout: 400
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/certs.sh"
source "$(dirname "$0")/lib_dp.sh"

pc_mkca ca
pc_mkcert a ca "DNS:a.test"
C=$PC_CERTS
N=$((100 * 1024 * 1024))

read -r sha lsha gen echo_ live hold noacc dead1 dead2 l_up l_down l_tup l_tdown l_echo l_skip \
  l_dead l_noacc l_hold l_lim <<<"$(dp_ports 19 | tr '\n' ' ')"
dp_backend sha "$sha"
dp_backend lsha "$lsha"
dp_backend gen "$gen" "$N"
dp_backend echo "$echo_"
dp_backend name "$live" L
dp_backend hold "$hold"
dp_backend noaccept "$noacc"


tg() { local id=$1; shift; local t="" p
  for p in "$@"; do t="$t${t:+,}{\"host\": \"127.0.0.1\", \"port\": $p}"; done
  echo "{\"id\": \"$id\", \"targets\": [$t]}"; }
lsn() { echo "{\"id\": \"$1\", \"port\": $2, \"default_target_group_id\": \"$3\" ${4:+, $4}}"; }
tls="\"protocol\": \"tls\", \"certificate_ids\": [\"cert-a\"]"
dp_write_conf "{
  \"certificates\": [{\"id\": \"cert-a\", \"cert\": \"$C/a.crt\", \"key\": \"$C/a.key\"}],
  \"target_groups\": [$(tg tg-sha "$sha"), $(tg tg-lsha "$lsha"), $(tg tg-gen "$gen"), $(tg tg-echo "$echo_"),
     $(tg tg-skip "$dead1" "$live" "$dead2"), $(tg tg-dead "$dead1" "$dead2"), $(tg tg-noacc "$noacc"),
     $(tg tg-hold "$hold")],
  \"listeners\": [$(lsn lsn-up "$l_up" tg-sha), $(lsn lsn-down "$l_down" tg-gen),
     $(lsn lsn-tup "$l_tup" tg-lsha "$tls"), $(lsn lsn-tdown "$l_tdown" tg-gen "$tls"),
     $(lsn lsn-echo "$l_echo" tg-echo '"idle_timeout_ms": 1000'), $(lsn lsn-skip "$l_skip" tg-skip),
     $(lsn lsn-dead "$l_dead" tg-dead), $(lsn lsn-noacc "$l_noacc" tg-noacc '"connect_timeout_ms": 300'),
     $(lsn lsn-hold "$l_hold" tg-hold '"idle_timeout_ms": 1000'),
     $(lsn lsn-lim "$l_lim" tg-echo '"max_connections": 2')]}"
dp_start_cp
dp_start_dp
dp_wait_ack 1

want=$(dp_tool gen-sha "$N")
pc_assert_eq "$(dp_tool sha-upload "$l_up" "$N")" "$want" "100 MiB upload (tcp)"
pc_assert_eq "$(dp_tool download "$l_down")" "$want $N" "100 MiB download (tcp)"
pc_assert_eq "$(dp_tool sha-upload "$l_tup" "$N" tls)" "$want" "100 MiB upload (TLS offload)"
pc_assert_eq "$(dp_tool download "$l_tdown" tls)" "$want $N" "100 MiB download (TLS offload)"

# Half-close: the client stops writing, still reads the whole echo.
pc_assert_eq "$(dp_tool half-close "$l_echo")" ok "half-close"

# A dead target is skipped: every connection reaches the live one.
pc_assert_eq "$(dp_tool names "$l_skip" 6)" "L:6" "dead targets skipped"
# All targets dead: the client is closed at once.
out=$(dp_tool raw "$l_dead" "x")
t=${out##* }
awk -v t="$t" 'BEGIN { exit !(t < 2.0) }' || pc_fail "all dead: closed after $t s (connect timeout is 5 s)"
grep -q "listener lsn-dead .*closed: connect_failed" "$PC_DP_LOG" || pc_fail "connect_failed not logged"

# Connect timeout: a backend whose accept queue is full.
out=$(dp_tool raw "$l_noacc" "x")
t=${out##* }
awk -v t="$t" 'BEGIN { exit !(t >= 0.25 && t < 3) }' || pc_fail "connect timeout after $t s"
grep -q "listener lsn-noacc .*closed: connect_timeout" "$PC_DP_LOG" || pc_fail "connect_timeout not logged"

# Idle timeout: a connected client that sends nothing.
out=$(dp_tool idle "$l_echo")
t=${out%% *}
awk -v t="$t" 'BEGIN { exit !(t >= 0.9 && t < 4) }' || pc_fail "idle timeout after $t s"
grep -q "listener lsn-echo .*closed: idle_timeout" "$PC_DP_LOG" || pc_fail "idle_timeout not logged"

# A backend that never reads: buffers fill, reading stops, the idle
# timeout closes it; the proxy holds a bounded amount meanwhile.
out=$(dp_tool blast "$l_hold")
t=${out%% *}; sent=${out##* }
awk -v t="$t" 'BEGIN { exit !(t < 10) }' || pc_fail "never-reading backend: closed after $t s"
[ "$sent" -lt $((64 * 1024 * 1024)) ] || pc_fail "proxy accepted $sent bytes for a backend that never reads"
grep -q "listener lsn-hold .*closed: idle_timeout" "$PC_DP_LOG" || pc_fail "never-reading backend not closed by idle timeout"

# max_connections: two held, the third accepted and closed, counted.
pc_assert_eq "$(dp_tool limit "$l_lim" 2)" refused "max_connections"
pc_wait_for 5 grep -q "listener lsn-lim conn - client .* closed: max_connections" "$PC_DP_LOG" || pc_fail "limit not logged"
# ... and once they are gone, new ones are served.
pc_wait_for 5 bash -c "[ \"\$(timeout 10 python3 $DP_TOOL limit $l_lim 1)\" = served ]" || pc_fail "limit not released"

# Other connections were never disturbed: the echo listener still works.
pc_assert_eq "$(dp_tool half-close "$l_echo")" ok "half-close at the end"
pc_stop "$PC_DP_PID"
pc_assert_eq "$PC_RC" 0 "proxy exit status"
pc_pass
