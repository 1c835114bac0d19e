#!/usr/bin/env bash
# Issue 7.2: adding, changing and deleting a listener while another carries
# a full-handshake load costs the loaded listener nothing; a deleted
# listener stops accepting at once while its open connection finishes.
# pc-timeout: 120
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/certs.sh"
source "$(dirname "$0")/lib_ops.sh"

pc_mkca ca
pc_mkcert a ca "DNS:a.test"
pc_mkcert b ca "DNS:b.test"
pc_mkcert b2 ca "DNS:b.test"

pc_stack
pc_backend_http one; be1=$PC_BE_PORT
pc_backend_http two; be2=$PC_BE_PORT
pc_upload_cert a; ca_id=$PC_ID
pc_upload_cert b
pc_upload_cert b2
pc_tg one "$be1"
pc_tg two "$be2"
pa=$(pc_free_port); pb=$(pc_free_port)
pc_tls_listener loaded "$pa" one a
pc_wait_applied

"$PC_BIN_DIR/pc_load" -c "127.0.0.1:$pa" -t 4 -n 200000 -d 5 -s a.test -r $'GET / HTTP/1.0\r\n\r\n' \
  -l "$PC_TMP/load.log" >"$PC_TMP/load.out" &
load=$!
PC_PIDS+=("$load")
sleep 0.5

# Add.
pc_tls_listener other "$pb" one b; other=$PC_ID
pc_assert_eq "$(pc_json .applied)" true "add applied"
pc_assert_eq "$(curl -sk --resolve b.test:$pb:127.0.0.1 https://b.test:$pb/)" one "new listener serves"
# Change certificates, then target group.
pc_api PUT "/v1/listeners/$other" "$(jq -n --argjson p "$pb" '{name:"other", bind:"127.0.0.1",
  port:$p, protocol:"tls", default_target_group_id:"one", certificate_ids:["b2"]}')"
pc_expect_status 200
[ "$(pc_served_fingerprint "127.0.0.1:$pb" b.test)" = "$(pc_fingerprint "$PC_CERTS/b2.crt")" ] \
  || pc_fail "changed certificate not served"
pc_api PUT "/v1/listeners/$other" "$(jq -n --argjson p "$pb" '{name:"other", bind:"127.0.0.1",
  port:$p, protocol:"tls", default_target_group_id:"two", certificate_ids:["b2"]}')"
pc_expect_status 200
pc_assert_eq "$(curl -sk --resolve b.test:$pb:127.0.0.1 https://b.test:$pb/)" two "changed target group"

# Delete while a connection is open on it.
pc_spawn "$PC_TMP/hold.out" python3 "$PC_TOOLS/hold.py" 127.0.0.1 "$pb" 2 b.test
hold=$PC_LAST_PID
pc_wait_for 10 grep -q " ok " "$PC_TMP/hold.out" || pc_fail "long-lived connection did not start"
pc_api DELETE "/v1/listeners/$other"
pc_expect_status 204
t_del=$(date +%s%3N)
if curl -sk --max-time 3 --resolve b.test:$pb:127.0.0.1 "https://b.test:$pb/" >/dev/null 2>&1; then
  pc_fail "deleted listener still accepts"
fi
pc_wait_exit "$hold" 15
pc_assert_eq "$PC_RC" 0 "open connection on the deleted listener finished cleanly"
after=$(awk -v t="$t_del" '$1 > t && $2 == "ok"' "$PC_TMP/hold.out" | wc -l)
[ "$after" -gt 0 ] || pc_fail "open connection did not keep transferring after the delete"

wait "$load" || true
cat "$PC_TMP/load.out" >&2
total=$(wc -l <"$PC_TMP/load.log")
fails=$(grep -c ' fail ' "$PC_TMP/load.log" || true)
echo "listener changes: loaded-listener handshakes=$total failures=$fails" >&2
pc_assert_eq "$fails" 0 "failures on the loaded listener"
[ "$total" -gt 50 ] || pc_fail "too little load to mean anything ($total)"
pc_pass
