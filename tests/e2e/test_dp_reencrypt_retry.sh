#!/usr/bin/env bash
# Re-encryption retries a target whose TLS handshake fails (untrusted CA,
# wrong name, accepted then closed, no answer within connect_timeout) on the
# next target not yet tried, as a failed connect does: every client reaches
# the good target, each failed attempt is logged with its target and reason
# and counted on it; with only bad targets the client is closed with the
# handshake reason. The PROXY v2 header (offload) and the peeked ClientHello
# (pass-through) reach the good target exactly once.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/certs.sh"
source "$(dirname "$0")/lib_dp.sh"

pc_mkca ca
pc_mkca other
pc_mkcert front ca "DNS:front.test"
pc_mkcert be ca "DNS:backend.internal"
pc_mkcert bad other "DNS:backend.internal"
pc_mkcert wrong ca "DNS:wrong.internal"
C=$PC_CERTS
PP2=$PC_SRC_DIR/tests/e2e/tools/pp2_backend.py

read -r g1 b1 b2 b3 bh pg pb l_mix l_bad l_slow l_pp l_pt <<<"$(dp_ports 12 | tr '\n' ' ')"
# Every backend starts at once, then each is waited for.
s_server() { # PORT CERT
  pc_spawn "$PC_TMP/s_server-$1.log" openssl s_server -accept "$1" -cert "$C/$2.crt" -key "$C/$2.key" -www -quiet
}
s_server "$g1" be
s_server "$b1" bad
s_server "$b2" wrong
# Accepts TCP and closes at once.
pc_spawn "$PC_TMP/closer.log" python3 -u -c '
import socket, sys
ls = socket.socket()
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("127.0.0.1", int(sys.argv[1])))
ls.listen(128)
print("ready", flush=True)
while True:
    c, _ = ls.accept()
    c.close()' "$b3"
pc_spawn "$PC_TMP/hold.log" python3 -u "$DP_TOOL" backend hold "$bh"
pc_spawn "$PC_TMP/pg.log" python3 -u "$PP2" serve "$pg" "$C/be.crt" "$C/be.key"
pc_spawn "$PC_TMP/pb.log" python3 -u "$PP2" serve "$pb" "$C/bad.crt" "$C/bad.key"
for p in "$g1" "$b1" "$b2"; do
  pc_wait_for 10 bash -c "echo | openssl s_client -connect 127.0.0.1:$p 2>/dev/null | grep -q BEGIN" \
    || pc_fail "s_server on $p"
done
for l in closer hold pg pb; do
  pc_wait_for 10 grep -q ready "$PC_TMP/$l.log" || pc_fail "backend $l did not start"
done

t() { echo "{\"id\": \"$1\", \"host\": \"127.0.0.1\", \"port\": $2}"; }
tg() { # ID PROXY_PROTOCOL TARGETS...
  local id=$1 pp=$2; shift 2
  echo "{\"id\": \"$id\", \"protocol\": \"tls\", \"proxy_protocol\": $pp, \"targets\": [$(IFS=,; echo "$*")],
         \"tls\": {\"verify\": true, \"server_name\": \"backend.internal\", \"ca_certificate_id\": \"cert-ca\"}}"
}
lsn() { # ID PORT TG [EXTRA]
  echo "{\"id\": \"$1\", \"port\": $2, \"protocol\": \"tls\", \"default_target_group_id\": \"$3\",
         \"certificate_ids\": [\"cert-front\"]${4:+, $4}}"
}
# The bad targets come first: round robin starts there, so the first
# connections of each worker go through every one of them.
dp_write_conf "{
  \"certificates\": [
    {\"id\": \"cert-front\", \"cert\": \"$C/front.crt\", \"key\": \"$C/front.key\"},
    {\"id\": \"cert-ca\", \"cert\": \"$C/ca.crt\", \"key\": null}],
  \"target_groups\": [
    $(tg tg-mix null "$(t tgt-bad "$b1")" "$(t tgt-wrong "$b2")" "$(t tgt-close "$b3")" "$(t tgt-good "$g1")"),
    $(tg tg-bad null "$(t tgt-bad "$b1")" "$(t tgt-wrong "$b2")" "$(t tgt-close "$b3")"),
    $(tg tg-slow null "$(t tgt-hold "$bh")" "$(t tgt-good "$g1")"),
    $(tg tg-pp '"v2"' "$(t tgt-ppbad "$pb")" "$(t tgt-ppgood "$pg")"),
    $(tg tg-pt '"v2"' "$(t tgt-ppbad "$pb")" "$(t tgt-ppgood "$pg")")],
  \"listeners\": [$(lsn lsn-mix "$l_mix" tg-mix), $(lsn lsn-bad "$l_bad" tg-bad),
    $(lsn lsn-slow "$l_slow" tg-slow '"connect_timeout_ms": 700'), $(lsn lsn-pp "$l_pp" tg-pp),
    {\"id\": \"lsn-pt\", \"port\": $l_pt, \"protocol\": \"tcp\", \"default_target_group_id\": \"tg-pt\",
     \"sni_routes\": [{\"server_name\": \"pt.test\", \"target_group_id\": \"tg-pt\"}]}]}"
dp_start_cp
dp_start_dp
dp_wait_ack 1

get() { curl -sS --max-time 10 --cacert "$C/ca.crt" --resolve "front.test:$1:127.0.0.1" "https://front.test:$1/" 2>&1 || true; }

# 1. Bad targets before the good one: every client is served by it.
ok=0
for i in $(seq 20); do
  out=$(get "$l_mix")
  [[ "$out" == *"s_server"* ]] && ok=$((ok + 1))
done
pc_assert_eq "$ok" 20 "clients served through a group with three bad targets"
pc_wait_for 5 bash -c "[ \$(grep -c 'listener lsn-mix .*target tgt-good.* closed: ' '$PC_DP_LOG') -ge 20 ]" \
  || pc_fail "not every lsn-mix connection closed on tgt-good"
pc_assert_eq "$(dp_count 'listener lsn-mix .* closed: target_')" 0 "no lsn-mix client closed for a target"
attempt() { dp_count "listener $1 .* target $2(127.0.0.1:$3) attempt [0-9]: $4"; }
n_bad=$(attempt lsn-mix tgt-bad "$b1" 'target_verify_failed - target certificate: unable to get local issuer')
n_wrong=$(attempt lsn-mix tgt-wrong "$b2" 'target_verify_failed - target certificate: hostname mismatch')
n_close=$(attempt lsn-mix tgt-close "$b3" 'target_handshake_failed - target handshake')
[ "$n_bad" -ge 1 ] && [ "$n_wrong" -ge 1 ] && [ "$n_close" -ge 1 ] \
  || pc_fail "failed attempts not logged: untrusted $n_bad, wrong name $n_wrong, closed $n_close"

# 2. Only bad targets: each is tried once, then the client is closed.
out=$(get "$l_bad")
[[ "$out" != *"s_server"* ]] || pc_fail "a bad target served: $out"
pc_wait_for 5 grep -q "listener lsn-bad .* closed: target_\(verify\|handshake\)_failed - target " "$PC_DP_LOG" \
  || pc_fail "lsn-bad client not closed with the handshake reason"
conn=$(sed -n 's/.*listener lsn-bad conn \([0-9]*\) .* closed: .*/\1/p' "$PC_DP_LOG" | head -1)
pc_assert_eq "$(dp_count "listener lsn-bad conn $conn .* attempt [0-9]: target_")" 3 "attempts of the lsn-bad client"
for id in tgt-bad tgt-wrong tgt-close; do
  pc_assert_eq "$(dp_count "listener lsn-bad conn $conn .* target $id(.* attempt [0-9]: ")" 1 "$id tried once"
done

# 3. A target that accepts and never answers: its handshake times out
# (connect_timeout_ms) and the next target serves.
ok=0
for i in 1 2 3; do
  out=$(get "$l_slow")
  [[ "$out" == *"s_server"* ]] && ok=$((ok + 1))
done
pc_assert_eq "$ok" 3 "clients served past a silent target"
[ "$(dp_count 'listener lsn-slow .* target tgt-hold(.* target_handshake_failed - target handshake timed out')" -ge 1 ] \
  || pc_fail "handshake timeout not logged"

# 4. PROXY v2 header before the handshake: the good target gets exactly one,
# byte for byte, and the client's bytes after it (offload).
pc_assert_eq "$(timeout 30 python3 "$PP2" client 127.0.0.1 "$l_pp" tls front.test)" ok "offload, PROXY v2, retried"
pc_assert_eq "$(timeout 30 python3 "$PP2" client 127.0.0.1 "$l_pp" tls front.test)" ok "offload, PROXY v2, second"

# 5. Pass-through: the peeked ClientHello goes to the good target once (the
# reply is the header line, then exactly the bytes sent, then EOF).
pt() {
  timeout 30 python3 - "$l_pt" <<'PY'
import os, socket, struct, sys
SIG = b"\r\n\r\n\x00\r\nQUIT\n"
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
src, dst = s.getsockname(), s.getpeername()
body = socket.inet_aton(src[0]) + socket.inet_aton(dst[0]) + struct.pack(">HH", src[1], dst[1])
want = SIG + b"\x21\x11" + struct.pack(">H", len(body)) + body
name = b"pt.test"
sni = struct.pack(">HH", 0, len(name) + 5) + struct.pack(">HBH", len(name) + 3, 0, len(name)) + name
hello = b"\x03\x03" + os.urandom(32) + b"\x00" + b"\x00\x02\x13\x01\x01\x00" + struct.pack(">H", len(sni)) + sni
hs = b"\x01" + struct.pack(">I", len(hello))[1:] + hello
data = b"\x16\x03\x01" + struct.pack(">H", len(hs)) + hs + b"after the hello\n"
s.sendall(data)
s.shutdown(socket.SHUT_WR)
got = b""
while True:
    d = s.recv(65536)
    if not d:
        break
    got += d
exp = b"hdr " + want.hex().encode() + b"\n" + data
print("ok" if got == exp else "got %d bytes, want %d: %r" % (len(got), len(exp), got[:80]))
PY
}
pc_assert_eq "$(pt)" ok "pass-through, PROXY v2, retried"
pc_assert_eq "$(pt)" ok "pass-through, PROXY v2, second"
# Round robin starts each group (and worker) on its first target.
[ "$(dp_count 'listener lsn-pp .* target tgt-ppbad(.* attempt 1: target_verify_failed')" -ge 1 ] \
  || pc_fail "offload: the bad target was never tried"
[ "$(dp_count 'listener lsn-pt .* target tgt-ppbad(.* attempt 1: target_verify_failed')" -ge 1 ] \
  || pc_fail "pass-through: the bad target was never tried"

# 6. Counters: each failed attempt counts on its target, none stays active,
# the good target counts its connections. Wait for a stats frame sent after
# all of the above.
n0=$(grep -c ' stats ' "$DP_CP_LOG" || true)
pc_wait_for 12 bash -c "[ \$(grep -c ' stats ' '$DP_CP_LOG') -gt $n0 ]" || pc_fail "no stats frame"
line=$(grep ' stats ' "$DP_CP_LOG" | tail -1 | sed 's/^[0-9.]* stats //')
tq() { jq ".targets[] | select(.target_group_id==\"$1\" and .target_id==\"$2\") | .$3" <<<"$line"; }
pc_assert_eq "$(tq tg-mix tgt-bad failures)" "$n_bad" "tgt-bad failures"
pc_assert_eq "$(tq tg-mix tgt-wrong failures)" "$n_wrong" "tgt-wrong failures"
pc_assert_eq "$(tq tg-mix tgt-close failures)" "$n_close" "tgt-close failures"
pc_assert_eq "$(tq tg-mix tgt-good total)" 20 "tgt-good total"
pc_assert_eq "$(tq tg-mix tgt-good failures)" 0 "tgt-good failures"
pc_assert_eq "$(jq '[.targets[].active] | add' <<<"$line")" 0 "no target left active"
pc_assert_eq "$(jq '[.listeners[].active] | add' <<<"$line")" 0 "no connection left active"
pc_assert_eq "$(jq '.listeners[] | select(.id=="lsn-bad") | .errors' <<<"$line")" 1 "lsn-bad errors"
pc_assert_eq "$(jq '.listeners[] | select(.id=="lsn-mix") | .errors' <<<"$line")" 0 "lsn-mix errors"

pc_stop "$PC_DP_PID"
pc_assert_eq "$PC_RC" 0 "proxy exit status"
pc_pass
