#!/usr/bin/env bash
# TLS offload through portcullis-proxy driven by the fake control plane:
# openssl s_client and curl to a real HTTP backend, certificate chosen by
# SNI (exact, wildcard one label, default), ALPN from the listener, a
# handshake with garbage fails cleanly and is counted, and rotating a
# certificate (new sha256) serves the new one without touching the socket.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/certs.sh"
source "$(dirname "$0")/lib_dp.sh"

pc_mkca ca
pc_mkcert a ca "DNS:a.test"
pc_mkcert b ca "DNS:b.test"
pc_mkcert w ca "DNS:*.w.test"
pc_mkcert a2 ca "DNS:a.test"
C=$PC_CERTS

read -r http lp lslow <<<"$(dp_ports 3 | tr '\n' ' ')"
mkdir -p "$PC_TMP/www"; echo "hello from the backend" >"$PC_TMP/www/index.html"
pc_spawn "$PC_TMP/http.log" python3 -m http.server --bind 127.0.0.1 --directory "$PC_TMP/www" "$http"
pc_wait_for 10 curl -fsS "http://127.0.0.1:$http/" || pc_fail "http backend"

conf() { # CERT-A-FILE
  dp_write_conf "{
  \"certificates\": [
    {\"id\": \"cert-a\", \"cert\": \"$C/$1.crt\", \"key\": \"$C/$1.key\"},
    {\"id\": \"cert-b\", \"cert\": \"$C/b.crt\", \"key\": \"$C/b.key\"},
    {\"id\": \"cert-w\", \"cert\": \"$C/w.crt\", \"key\": \"$C/w.key\"}],
  \"target_groups\": [{\"id\": \"tg-web\", \"targets\": [{\"host\": \"127.0.0.1\", \"port\": $http}]}],
  \"listeners\": [{\"id\": \"lsn-tls\", \"port\": $lp, \"protocol\": \"tls\", \"alpn\": [\"http/1.1\"],
    \"default_target_group_id\": \"tg-web\", \"certificate_ids\": [\"cert-a\", \"cert-b\", \"cert-w\"]},
   {\"id\": \"lsn-slow\", \"port\": $lslow, \"protocol\": \"tls\", \"handshake_timeout_ms\": 500,
    \"default_target_group_id\": \"tg-web\", \"certificate_ids\": [\"cert-b\"]}]}"
}
conf a
dp_start_cp
dp_start_dp
dp_wait_ack 1

# curl, verifying against the CA with the name a.test.
out=$(curl -fsS --max-time 10 --cacert "$C/ca.crt" --resolve "a.test:$lp:127.0.0.1" "https://a.test:$lp/")
pc_assert_eq "$out" "hello from the backend" "curl through offload"
out=$(curl -fsS --max-time 10 --cacert "$C/ca.crt" --resolve "x.w.test:$lp:127.0.0.1" "https://x.w.test:$lp/")
pc_assert_eq "$out" "hello from the backend" "curl to a wildcard name"

# openssl s_client: an HTTP request by hand, and the ALPN the listener chose.
resp=$(printf 'GET / HTTP/1.0\r\nHost: a.test\r\n\r\n' | timeout 10 openssl s_client -quiet \
  -connect "127.0.0.1:$lp" -servername a.test -alpn http/1.1 -CAfile "$C/ca.crt" 2>/dev/null || true)
[[ "$resp" == *"hello from the backend"* ]] || pc_fail "s_client request: $resp"
alpn=$(echo | timeout 10 openssl s_client -connect "127.0.0.1:$lp" -servername a.test -alpn h2,http/1.1 2>/dev/null \
  | sed -n 's/^ALPN protocol: //p')
pc_assert_eq "$alpn" "http/1.1" "ALPN"

# SNI: exact names, one-label wildcard, default for unknown / two labels / no SNI.
fa=$(pc_fingerprint "$C/a.crt"); fb=$(pc_fingerprint "$C/b.crt"); fw=$(pc_fingerprint "$C/w.crt")
pc_assert_eq "$(pc_served_fingerprint 127.0.0.1:$lp a.test)" "$fa" "SNI a.test"
pc_assert_eq "$(pc_served_fingerprint 127.0.0.1:$lp B.TEST)" "$fb" "SNI B.TEST (case)"
pc_assert_eq "$(pc_served_fingerprint 127.0.0.1:$lp foo.w.test)" "$fw" "SNI wildcard"
pc_assert_eq "$(pc_served_fingerprint 127.0.0.1:$lp a.b.w.test)" "$fa" "wildcard is one label"
pc_assert_eq "$(pc_served_fingerprint 127.0.0.1:$lp nothing.test)" "$fa" "unknown name: default"
pc_assert_eq "$(pc_served_fingerprint 127.0.0.1:$lp)" "$fa" "no SNI: default"

# Garbage instead of a ClientHello: closed, logged with a reason.
dp_tool raw "$lp" "GET / HTTP/1.0\r\n\r\n" >/dev/null
pc_wait_for 5 grep -q 'closed: handshake_failed' "$PC_DP_LOG" || pc_fail "garbage handshake not logged"

# A client that never starts the handshake, and one that stops half-way
# (a ClientHello cut short): the handshake timeout closes both.
out=$(dp_tool idle "$lslow")
t=${out%% *}
awk -v t="$t" 'BEGIN { exit !(t >= 0.4 && t < 4) }' || pc_fail "silent TLS client closed after $t s"
out=$(dp_tool rawhex "$lslow" 16030100f0010000ec0303)
t=${out##* }
awk -v t="$t" 'BEGIN { exit !(t >= 0.4 && t < 4) }' || pc_fail "half a ClientHello closed after $t s"
pc_assert_eq "$(dp_count 'listener lsn-slow .*closed: handshake_timeout')" 2 "TLS handshake timeouts logged"

# Rotation: a new body for cert-a (new sha256) is served on the next handshake.
conf a2
dp_push; dp_wait_ack 2
pc_assert_eq "$(pc_served_fingerprint 127.0.0.1:$lp a.test)" "$(pc_fingerprint "$C/a2.crt")" "rotated certificate"
pc_assert_eq "$(pc_served_fingerprint 127.0.0.1:$lp b.test)" "$fb" "other certificate kept"
# Same listener address: the sockets were kept, not re-bound.
pc_assert_eq "$(grep -c "bound on 127.0.0.1:$lp" "$PC_DP_LOG")" 1 "listener bound once"

# The log line per connection names listener, client, target, bytes, reason.
grep -q "listener lsn-tls conn .* client 127.0.0.1:.* target tgt-0(127.0.0.1:$http) in [0-9]* out [0-9]* ms [0-9]* closed: done" \
  "$PC_DP_LOG" || pc_fail "close log line format"
pc_stop "$PC_DP_PID"
pc_assert_eq "$PC_RC" 0 "proxy exit status on SIGTERM"
pc_pass
