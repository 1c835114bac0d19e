#!/usr/bin/env bash
# The data plane's fast paths keep their promises: plain-to-plain relaying
# goes through splice(2) (8 MiB each way with matching SHA-256, peeked
# bytes first and in order), TLS relaying does not, and idle TLS
# connections give their relay buffers back (proxy RSS per idle connection
# after one echo stays far below two 16 KiB buffers; not checked under the
# sanitizers, whose allocator keeps freed memory).
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/certs.sh"
source "$(dirname "$0")/lib_dp.sh"

pc_mkca ca
pc_mkcert a ca "DNS:a.test"
C=$PC_CERTS
N=$((8 * 1024 * 1024))
IDLE=300

read -r sha gen echo_ l_down l_up l_peek l_tdown l_techo <<<"$(dp_ports 8 | tr '\n' ' ')"
dp_backend sha "$sha"
dp_backend gen "$gen" "$N"
dp_backend echo "$echo_"

tg() { echo "{\"id\": \"$1\", \"targets\": [{\"host\": \"127.0.0.1\", \"port\": $2}]}"; }
lsn() { echo "{\"id\": \"$1\", \"port\": $2, \"default_target_group_id\": \"$3\" ${4:+, $4}}"; }
tls="\"protocol\": \"tls\", \"certificate_ids\": [\"cert-a\"], \"max_connections\": 2000"
dp_write_conf "{
  \"certificates\": [{\"id\": \"cert-a\", \"cert\": \"$C/a.crt\", \"key\": \"$C/a.key\"}],
  \"target_groups\": [$(tg tg-sha "$sha"), $(tg tg-gen "$gen"), $(tg tg-echo "$echo_")],
  \"listeners\": [$(lsn lsn-down "$l_down" tg-gen), $(lsn lsn-up "$l_up" tg-sha),
     $(lsn lsn-peek "$l_peek" tg-sha '"sni_routes": [{"server_name": "a.test", "target_group_id": "tg-gen"}]'),
     $(lsn lsn-tdown "$l_tdown" tg-gen "$tls"), $(lsn lsn-techo "$l_techo" tg-echo "$tls")]}"
dp_start_cp
PC_WORKERS=1 dp_start_dp
dp_wait_ack 1

want=$(dp_tool gen-sha "$N")
pc_assert_eq "$(dp_tool download "$l_down")" "$want $N" "8 MiB download (tcp)"
pc_assert_eq "$(dp_tool sha-upload "$l_up" "$N")" "$want" "8 MiB upload (tcp)"
# Not TLS: peeked, routed to the default group; the peeked bytes leave
# from the buffer before the rest is spliced behind them.
pc_assert_eq "$(dp_tool sha-upload "$l_peek" "$N")" "$want" "8 MiB upload (peeked, then spliced)"
pc_wait_for 5 bash -c "[ \$(grep -c 'relayed with splice' '$PC_DP_LOG') -ge 3 ]" \
  || pc_fail "plain relays did not use splice: $(dp_count 'relayed with splice')"
spliced=$(dp_count 'relayed with splice')

pc_assert_eq "$(dp_tool download "$l_tdown" tls)" "$want $N" "8 MiB download (TLS offload)"
pc_wait_for 5 grep -q "listener lsn-tdown .*closed: done" "$PC_DP_LOG" || pc_fail "TLS download not closed"
pc_assert_eq "$(dp_count 'relayed with splice')" "$spliced" "TLS relaying does not splice"

# Idle TLS connections after one echo each: RSS growth per connection.
out=$(timeout 120 python3 - "$l_techo" "$IDLE" "$PC_DP_PID" <<'PY'
import socket, ssl, sys, time
port, n, pid = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
ctx = ssl._create_unverified_context()
msg = b"y" * 4096
def rss():
    for l in open(f"/proc/{pid}/status"):
        if l.startswith("VmRSS:"):
            return int(l.split()[1])
def conn():
    return ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=20),
                           server_hostname="a.test")
def echo(s):
    s.sendall(msg)
    got = b""
    while len(got) < len(msg):
        d = s.recv(65536)
        if not d:
            raise OSError("eof")
        got += d
    return got == msg
warm = [conn() for _ in range(20)]
ok = sum(echo(s) for s in warm)
for s in warm:
    s.close()
time.sleep(1.0)
r0 = rss()
cs = [conn() for _ in range(n)]
ok = sum(echo(s) for s in cs)
time.sleep(1.0)
r1 = rss()
again = sum(echo(s) for s in cs)
for s in cs:
    s.close()
print(f"ok={ok} again={again} kb={(r1 - r0) / n:.1f}")
PY
)
pc_log "idle TLS connections: $out"
pc_assert_eq "$(sed 's/ kb=.*//' <<<"$out")" "ok=$IDLE again=$IDLE" "echo on $IDLE connections, then again"
kb=${out##*kb=}
# Read ldd's whole output first: `ldd | grep -q` under pipefail fails when
# grep's early exit hands ldd a SIGPIPE.
libs=$(ldd "$PC_BIN_DIR/portcullis-proxy" 2>/dev/null || true)
if [[ $libs == *libasan* ]]; then
  pc_log "sanitizer build: RSS bound not checked ($kb KB)"
else
  # Two 16 KiB buffers per connection would be 32 KiB; OpenSSL's own state is
  # about 13 KiB.
  awk -v k="$kb" 'BEGIN { exit !(k < 22) }' || pc_fail "idle TLS connections cost $kb KB RSS each"
fi

pc_stop "$PC_DP_PID"
pc_assert_eq "$PC_RC" 0 "proxy exit status"
pc_pass
