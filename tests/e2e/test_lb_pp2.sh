#!/usr/bin/env bash
# PROXY protocol v2 through the real stack: a backend checks the header
# byte for byte against what the client saw of its own connection (TCP4 and
# TCP6 source/destination) for a plain tcp listener, an IPv6 listener, TLS
# offload, TLS pass-through (ClientHello peeked for SNI, header before it)
# and re-encryption (header before the TLS handshake to the target); a
# group without proxy_protocol sends none. If HAProxy is installed, it is a
# second peer: a frontend with accept-proxy reports the addresses it read.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/certs.sh"
source "$(dirname "$0")/lib_ops.sh"
source "$(dirname "$0")/lib_dp.sh"

pc_mkca ca
pc_mkcert a ca "DNS:a.test"
C=$PC_CERTS
read -r bp bt l_plain l_v6 l_off l_pt l_re l_none hp l_hap <<<"$(dp_ports 10 | tr '\n' ' ')"
PP2=$PC_TOOLS/pp2_backend.py
pc_spawn "$PC_TMP/bp.log" python3 -u "$PP2" serve "$bp"
pc_spawn "$PC_TMP/bt.log" python3 -u "$PP2" serve "$bt" "$C/a.crt" "$C/a.key"
pc_wait_for 10 grep -q ready "$PC_TMP/bp.log" || pc_fail "plain backend did not start"
pc_wait_for 10 grep -q ready "$PC_TMP/bt.log" || pc_fail "tls backend did not start"
client() { timeout 30 python3 "$PP2" client "$@"; }

pc_stack
pc_upload_cert a
CERT=$PC_ID
# group NAME PROTOCOL PORT PP [TLS]
group() {
  pc_post /v1/target-groups "$(jq -n --arg n "$1" --arg p "$2" --argjson port "$3" --argjson pp "$4" \
    --argjson tls "${5:-null}" \
    '{name:$n, protocol:$p, proxy_protocol:$pp, targets:[{host:"127.0.0.1", port:$port}]} +
     (if $tls then {tls:$tls} else {} end)')"
}
group gp tcp "$bp" '"v2"'
group gpt tcp "$bt" '"v2"'
group gre tls "$bt" '"v2"' '{"verify": false}'
group gn tcp "$bp" null
# listener NAME BIND PORT PROTOCOL TG [EXTRA-JSON]
listener() {
  pc_post /v1/listeners "$(jq -n --arg n "$1" --arg b "$2" --argjson p "$3" --arg pr "$4" --arg tg "$5" \
    --argjson x "${6:-{\}}" '{name:$n, bind:$b, port:$p, protocol:$pr, default_target_group_id:$tg} + $x')"
}
listener plain 127.0.0.1 "$l_plain" tcp gp
listener v6 ::1 "$l_v6" tcp gp
listener off 127.0.0.1 "$l_off" tls gp "{\"certificate_ids\": [\"$CERT\"]}"
listener pt 127.0.0.1 "$l_pt" tcp gn '{"sni_routes": [{"server_name": "a.test", "target_group_id": "gpt"}]}'
listener re 127.0.0.1 "$l_re" tls gre "{\"certificate_ids\": [\"$CERT\"]}"
listener none 127.0.0.1 "$l_none" tcp gn
pc_wait_applied 10

pc_assert_eq "$(client 127.0.0.1 "$l_plain" plain)" ok "PROXY v2 TCP4, plain tcp listener"
pc_assert_eq "$(client ::1 "$l_v6" plain)" ok "PROXY v2 TCP6, IPv6 listener"
pc_assert_eq "$(client 127.0.0.1 "$l_off" tls a.test)" ok "PROXY v2, TLS offload"
pc_assert_eq "$(client 127.0.0.1 "$l_pt" tls a.test)" ok "PROXY v2, TLS pass-through (SNI route)"
pc_assert_eq "$(client 127.0.0.1 "$l_re" tls a.test)" ok "PROXY v2, re-encryption"
out=$(client 127.0.0.1 "$l_none" plain)
[[ "$out" == "none want "* ]] || pc_fail "no proxy_protocol: a header was sent: $out"
# Several at once, each with its own header.
pids=()
for i in 1 2 3 4 5 6; do client 127.0.0.1 "$l_off" tls a.test >"$PC_TMP/par$i" & pids+=($!); done
wait "${pids[@]}"
pc_assert_eq "$(cat "$PC_TMP"/par* | sort | uniq -c | awk '{print $1, $2}')" "6 ok" "parallel offload headers"

# HAProxy as the peer: it must accept the header and see the client's
# addresses as its source, the listener's as its destination.
if command -v haproxy >/dev/null; then
  cat >"$PC_TMP/haproxy.cfg" <<CFG
global
  maxconn 100
defaults
  mode http
  timeout connect 5s
  timeout client 10s
  timeout server 10s
frontend fe
  bind 127.0.0.1:$hp accept-proxy
  http-request return status 200 content-type text/plain lf-string "%[src] %[src_port] %[dst] %[dst_port]\n"
CFG
  haproxy -c -f "$PC_TMP/haproxy.cfg" >/dev/null 2>&1 || pc_fail "haproxy config invalid"
  pc_spawn "$PC_TMP/haproxy.log" haproxy -db -f "$PC_TMP/haproxy.cfg"
  pc_wait_for 10 bash -c "exec 3<>/dev/tcp/127.0.0.1/$hp" 2>/dev/null || pc_fail "haproxy did not start"
  group ghap tcp "$hp" '"v2"'
  listener hap 127.0.0.1 "$l_hap" tcp ghap
  pc_wait_applied 10
  out=$(timeout 20 python3 -c '
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
me, peer = s.getsockname(), s.getpeername()
s.sendall(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")
b = b""
while True:
    d = s.recv(4096)
    if not d:
        break
    b += d
got = b.split(b"\r\n\r\n", 1)[-1].decode().strip()
want = "%s %d %s %d" % (me[0], me[1], peer[0], peer[1])
print("ok" if got == want else "got %r want %r (%r)" % (got, want, b[:80]))' "$l_hap")
  pc_assert_eq "$out" ok "HAProxy accept-proxy reads the header"
else
  pc_log "haproxy not installed: HAProxy peer check skipped"
fi

pc_stop "$PC_DP_PID"
pc_assert_eq "$PC_RC" 0 "proxy exit status"
pc_pass
