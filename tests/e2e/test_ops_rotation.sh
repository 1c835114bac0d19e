#!/usr/bin/env bash
# Issue 7.1: certificate rotation under a bounded load of full TLS
# handshakes: zero failed handshakes, no handshake started after the PUT
# returned sees the old certificate, a connection opened before the rotation
# keeps transferring, and the API says the proxy applied it.
# pc-timeout: 120
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/certs.sh"
source "$(dirname "$0")/lib_ops.sh"

pc_mkca ca
pc_mkcert old ca "DNS:web.test"
pc_mkcert new ca "DNS:web.test"
old=$(pc_fingerprint "$PC_CERTS/old.crt"); old=${old:0:16}
new=$(pc_fingerprint "$PC_CERTS/new.crt"); new=${new:0:16}

pc_stack
pc_backend_http origin
pc_upload_cert old; cert=$PC_ID
pc_tg origin "$PC_BE_PORT"
port=$(pc_free_port)
pc_tls_listener web "$port" origin "$cert"
pc_wait_applied
[ "$(pc_served_fingerprint "127.0.0.1:$port" web.test | cut -c1-16)" = "$old" ] \
  || pc_fail "listener does not serve the first certificate"

# The long-lived connection, opened before the rotation.
pc_spawn "$PC_TMP/hold.out" python3 "$PC_TOOLS/hold.py" 127.0.0.1 "$port" 5 web.test
hold=$PC_LAST_PID
pc_wait_for 10 grep -q " ok " "$PC_TMP/hold.out" || pc_fail "long-lived connection did not start"
"$PC_BIN_DIR/pc_load" -c "127.0.0.1:$port" -t 4 -n 200000 -d 4 -s web.test -r $'GET / HTTP/1.0\r\n\r\n' \
  -l "$PC_TMP/load.log" >"$PC_TMP/load.out" &
load=$!
PC_PIDS+=("$load")
sleep 1.5

body=$(jq -n --rawfile c "$PC_CERTS/new.crt" --rawfile k "$PC_CERTS/new.key" \
  '{certificate:$c, private_key:$k}')
t_put=$(date +%s%3N)
pc_api PUT "/v1/certificates/$cert" "$body" -H 'If-Match: 1'
t_ret=$(date +%s%3N)
pc_expect_status 200
pc_assert_eq "$(pc_json .version)" 2 "version after rotation"
pc_assert_eq "$(pc_json .applied)" true "rotation applied by the proxy"
pc_assert_eq "$(pc_json '.not_applied | length')" 0 "proxies that did not apply"

wait "$load" || true
pc_wait_exit "$hold" 15
pc_assert_eq "$PC_RC" 0 "long-lived connection kept working across the rotation"
cat "$PC_TMP/load.out" >&2

total=$(wc -l <"$PC_TMP/load.log")
fails=$(grep -c ' fail ' "$PC_TMP/load.log" || true)
before=$(awk -v t="$t_put" '$1 < t' "$PC_TMP/load.log" | wc -l)
after=$(awk -v t="$t_ret" '$1 > t' "$PC_TMP/load.log" | wc -l)
stale=$(awk -v t="$t_ret" -v fp="$old" '$1 > t && $4 == fp' "$PC_TMP/load.log" | wc -l)
first_new=$(awk -v fp="$new" '$4 == fp && (m == "" || $2 < m) {m = $2} END {print m}' "$PC_TMP/load.log")
hold_after=$(awk -v t="$t_ret" '$1 > t && $2 == "ok"' "$PC_TMP/hold.out" | wc -l)
hold_fps=$(awk '{print $3}' "$PC_TMP/hold.out" | sort -u | tr '\n' ' ')
echo "rotation: handshakes=$total before_put=$before after_return=$after failures=$fails" \
  "stale_after_return=$stale put_ms=$((t_ret - t_put))" \
  "put_to_first_new_ms=$(( ${first_new:-$t_put} - t_put ))" \
  "hold_requests_after=$hold_after" >&2

pc_assert_eq "$fails" 0 "failed handshakes during rotation"
[ "$before" -gt 0 ] && [ "$after" -gt 0 ] || pc_fail "load did not span the rotation"
pc_assert_eq "$stale" 0 "handshakes started after the PUT returned that saw the old certificate"
[ -n "$first_new" ] || pc_fail "no handshake saw the new certificate"
[ "$hold_after" -gt 0 ] || pc_fail "long-lived connection did not transfer after the rotation"
pc_assert_eq "$hold_fps" "$old " "long-lived connection kept its certificate"
pc_pass
