#!/usr/bin/env bash
# pc_load (the load client of the e2e and bench suites) counts what it
# claims: full handshakes against a real TLS server, the certificate it saw,
# and failures against a closed port; and it stops by itself.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/certs.sh"

pc_mkca ca
pc_mkcert srv ca "DNS:srv.test"
port=$(pc_free_port)
pc_spawn "$PC_TMP/s_server.log" openssl s_server -accept "127.0.0.1:$port" -cert "$PC_CERTS/srv.crt" \
  -key "$PC_CERTS/srv.key" -www -quiet
pc_wait_for 10 bash -c "echo | openssl s_client -connect 127.0.0.1:$port >/dev/null 2>&1" \
  || pc_fail "s_server did not start"

out=$("$PC_BIN_DIR/pc_load" -c "127.0.0.1:$port" -t 4 -n 40 -d 20 \
  -r $'GET / HTTP/1.0\r\n\r\n' -l "$PC_TMP/load.log")
echo "$out" >&2
grep -q '^connections=40 ok=40 failed=0 ' <<<"$out" || pc_fail "expected 40 ok: $out"
fp=$(pc_fingerprint "$PC_CERTS/srv.crt")
grep -q "^fingerprint=${fp:0:16} count=40 " <<<"$out" || pc_fail "fingerprint not counted"
pc_assert_eq "$(grep -c ' ok ' "$PC_TMP/load.log")" 40 "log lines"

dead=$(pc_free_port)
out=$("$PC_BIN_DIR/pc_load" -c "127.0.0.1:$dead" -t 2 -n 10 -d 10)
grep -q '^connections=10 ok=0 failed=10 ' <<<"$out" || pc_fail "closed port: $out"

# Bounded by time even with a huge count.
out=$("$PC_BIN_DIR/pc_load" -c "127.0.0.1:$dead" -t 2 -n 100000000 -d 1)
ms=$(sed -n 's/.*elapsed_ms=\([0-9]*\).*/\1/p' <<<"$out")
[ "$ms" -lt 5000 ] || pc_fail "did not stop by itself: $out"
pc_pass
