#!/usr/bin/env bash
# Pass-through (tcp listener with sni_routes): the ClientHello is peeked,
# never terminated. Two TLS backends chosen by SNI (checked by the
# certificate the client sees); crafted ClientHellos in 1-byte segments and
# large multi-record ones still routed by SNI and forwarded byte for byte;
# no SNI and non-TLS bytes go to the default group; oversized and
# malformed hellos and silent clients are closed, logged and counted.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/certs.sh"
source "$(dirname "$0")/lib_dp.sh"

pc_mkca ca
pc_mkcert a ca "DNS:a.test"
pc_mkcert b ca "DNS:b.test,DNS:x.b.test"
C=$PC_CERTS

read -r sa sb na nb nd lp lp2 <<<"$(dp_ports 7 | tr '\n' ' ')"
pc_spawn "$PC_TMP/sa.log" openssl s_server -accept "$sa" -cert "$C/a.crt" -key "$C/a.key" -www -quiet
pc_spawn "$PC_TMP/sb.log" openssl s_server -accept "$sb" -cert "$C/b.crt" -key "$C/b.key" -www -quiet
dp_backend name "$na" A
dp_backend name "$nb" B
dp_backend name "$nd" D

tg() { echo "{\"id\": \"$1\", \"targets\": [{\"host\": \"127.0.0.1\", \"port\": $2}]}"; }
dp_write_conf "{
  \"target_groups\": [$(tg tg-sa "$sa"), $(tg tg-sb "$sb"), $(tg tg-na "$na"), $(tg tg-nb "$nb"), $(tg tg-nd "$nd")],
  \"listeners\": [
   {\"id\": \"lsn-pt\", \"port\": $lp, \"default_target_group_id\": \"tg-sa\",
    \"sni_routes\": [{\"server_name\": \"*.b.test\", \"target_group_id\": \"tg-sb\"},
                     {\"server_name\": \"b.test\", \"target_group_id\": \"tg-sb\"}]},
   {\"id\": \"lsn-names\", \"port\": $lp2, \"default_target_group_id\": \"tg-nd\", \"handshake_timeout_ms\": 700,
    \"sni_routes\": [{\"server_name\": \"a.test\", \"target_group_id\": \"tg-na\"},
                     {\"server_name\": \"*.big.test\", \"target_group_id\": \"tg-nb\"}]}]}"
dp_start_cp
dp_start_dp
dp_wait_ack 1

fa=$(pc_fingerprint "$C/a.crt"); fb=$(pc_fingerprint "$C/b.crt")
pc_wait_for 10 bash -c "echo | openssl s_client -connect 127.0.0.1:$sa 2>/dev/null | grep -q BEGIN" || pc_fail "s_server a"
pc_assert_eq "$(pc_served_fingerprint 127.0.0.1:$lp b.test)" "$fb" "pass-through b.test"
pc_assert_eq "$(pc_served_fingerprint 127.0.0.1:$lp x.b.test)" "$fb" "pass-through *.b.test"
pc_assert_eq "$(pc_served_fingerprint 127.0.0.1:$lp a.test)" "$fa" "pass-through default"
pc_assert_eq "$(pc_served_fingerprint 127.0.0.1:$lp)" "$fa" "pass-through without SNI"
# A whole TLS session through it: the backend's -www page.
resp=$(printf 'GET / HTTP/1.0\r\n\r\n' | timeout 10 openssl s_client -quiet -connect 127.0.0.1:$lp \
  -servername x.b.test -CAfile "$C/ca.crt" 2>/dev/null || true)
[[ "$resp" == *"HTTP/1.0 200 ok"* ]] || pc_fail "request through pass-through: $resp"

# Crafted ClientHellos: name backends answer with their name, then echo.
out=$(dp_tool hello "$lp2" a.test 0 16384 1)
pc_assert_eq "$out" "A echo-ok $(dp_tool hello "$lp2" a.test 0 16384 100000 | awk '{print $3}')" "1-byte segments"
out=$(dp_tool hello "$lp2" x.big.test 12000 4000 1000)
[[ "$out" == "B echo-ok "* ]] || pc_fail "12 KiB hello over 4 records: $out"
out=$(dp_tool hello "$lp2" x.big.test 14000 1000 64)
[[ "$out" == "B echo-ok "* ]] || pc_fail "14 KiB hello over 15 records in 64-byte segments: $out"
out=$(dp_tool hello "$lp2" - 0 16384 100000)
[[ "$out" == "D echo-ok "* ]] || pc_fail "no SNI goes to the default: $out"
out=$(dp_tool hello "$lp2" other.test 0 16384 100000)
[[ "$out" == "D echo-ok "* ]] || pc_fail "unrouted SNI goes to the default: $out"
out=$(dp_tool raw "$lp2" "garbage, not TLS" shut)
[[ "$out" == "b'D\\ngarbage, not TLS'"* ]] || pc_fail "non-TLS bytes go to the default, untouched: $out"

# Oversized: a ClientHello announcing more than 16 KiB is refused.
dp_tool hello "$lp2" x.big.test 20000 16000 100000 >/dev/null 2>&1 || true
pc_wait_for 5 grep -q 'closed: client_hello_too_large' "$PC_DP_LOG" || pc_fail "oversized hello"
# Malformed: a handshake record whose ClientHello body is cut short.
dp_tool rawhex "$lp2" 16030100050100000100 >/dev/null
pc_wait_for 5 grep -q 'closed: client_hello_malformed' "$PC_DP_LOG" || pc_fail "malformed hello"
# Truncated, then silent: the handshake timeout ends it.
out=$(dp_tool rawhex "$lp2" 160301)
t=${out##* }
awk -v t="$t" 'BEGIN { exit !(t >= 0.5 && t < 5) }' || pc_fail "partial hello closed after $t s"
out=$(dp_tool idle "$lp2")
t=${out%% *}
awk -v t="$t" 'BEGIN { exit !(t >= 0.5 && t < 5) }' || pc_fail "silent client closed after $t s"
pc_assert_eq "$(dp_count 'closed: handshake_timeout')" 2 "handshake timeouts logged"
# The other listener kept serving meanwhile.
pc_assert_eq "$(pc_served_fingerprint 127.0.0.1:$lp b.test)" "$fb" "pass-through after bad clients"
pc_pass
