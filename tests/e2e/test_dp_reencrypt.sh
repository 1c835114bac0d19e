#!/usr/bin/env bash
# Re-encryption: a tls listener in front of a tls target group. The proxy
# verifies the backend (an openssl s_server) against the configured CA and
# server name: passing gives the backend's page; a wrong name or an
# untrusted CA closes the client, is logged with the reason and counted.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/certs.sh"
source "$(dirname "$0")/lib_dp.sh"

pc_mkca ca
pc_mkca other
pc_mkcert front ca "DNS:front.test"
pc_mkcert be ca "DNS:backend.internal"
C=$PC_CERTS

read -r sp l_ok l_name l_ca l_nov <<<"$(dp_ports 5 | tr '\n' ' ')"
pc_spawn "$PC_TMP/s_server.log" openssl s_server -accept "$sp" -cert "$C/be.crt" -key "$C/be.key" -www -quiet
pc_wait_for 10 bash -c "echo | openssl s_client -connect 127.0.0.1:$sp 2>/dev/null | grep -q BEGIN" || pc_fail "s_server"

tg() { # ID VERIFY SERVER_NAME CA_ID
  local ca=null; [ -n "$4" ] && ca="\"$4\""
  echo "{\"id\": \"$1\", \"protocol\": \"tls\", \"targets\": [{\"host\": \"127.0.0.1\", \"port\": $sp}],
         \"tls\": {\"verify\": $2, \"server_name\": \"$3\", \"ca_certificate_id\": $ca}}"
}
lsn() { echo "{\"id\": \"$1\", \"port\": $2, \"protocol\": \"tls\", \"default_target_group_id\": \"$3\", \"certificate_ids\": [\"cert-front\"]}"; }
dp_write_conf "{
  \"certificates\": [
    {\"id\": \"cert-front\", \"cert\": \"$C/front.crt\", \"key\": \"$C/front.key\"},
    {\"id\": \"cert-ca\", \"cert\": \"$C/ca.crt\", \"key\": null},
    {\"id\": \"cert-other\", \"cert\": \"$C/other.crt\", \"key\": null}],
  \"target_groups\": [$(tg tg-ok true backend.internal cert-ca), $(tg tg-name true wrong.internal cert-ca),
                      $(tg tg-ca true backend.internal cert-other), $(tg tg-nov false backend.internal cert-other)],
  \"listeners\": [$(lsn lsn-ok "$l_ok" tg-ok), $(lsn lsn-name "$l_name" tg-name),
                  $(lsn lsn-ca "$l_ca" tg-ca), $(lsn lsn-nov "$l_nov" tg-nov)]}"
dp_start_cp
dp_start_dp
dp_wait_ack 1

get() { curl -sS --max-time 10 --cacert "$C/ca.crt" --resolve "front.test:$1:127.0.0.1" "https://front.test:$1/" 2>&1 || true; }
out=$(get "$l_ok")
[[ "$out" == *"s_server"* ]] || pc_fail "re-encryption with verification: $out"
# The backend saw TLS with the configured SNI.
out=$(get "$l_nov")
[[ "$out" == *"s_server"* ]] || pc_fail "re-encryption without verification: $out"

out=$(get "$l_name")
[[ "$out" != *"s_server"* ]] || pc_fail "wrong server name was accepted"
pc_wait_for 5 grep -q "listener lsn-name .*closed: target_verify_failed - target certificate: .*mismatch" "$PC_DP_LOG" \
  || pc_fail "name mismatch not logged"
out=$(get "$l_ca")
[[ "$out" != *"s_server"* ]] || pc_fail "untrusted CA was accepted"
pc_wait_for 5 grep -q "listener lsn-ca .*closed: target_verify_failed - target certificate: .*local issuer" "$PC_DP_LOG" \
  || pc_fail "untrusted issuer not logged"

# Counted: the stats frame (every 5 s) shows the listener errors and target failures.
pc_wait_for 12 grep -q '"id": "lsn-name"' "$DP_CP_LOG" || pc_fail "no stats frame"
line=$(grep '^.* stats ' "$DP_CP_LOG" | tail -1 | sed 's/^[0-9.]* stats //')
pc_assert_eq "$(jq '.listeners[] | select(.id=="lsn-name") | .errors' <<<"$line")" 1 "listener error counted"
pc_assert_eq "$(jq '.targets[] | select(.target_group_id=="tg-name") | .failures' <<<"$line")" 1 "target failure counted"
pc_assert_eq "$(jq '.listeners[] | select(.id=="lsn-ok") | .total' <<<"$line")" 1 "listener total"
pc_assert_eq "$(jq '.listeners[] | select(.id=="lsn-ok") | .errors' <<<"$line")" 0 "no error on the good one"
pc_pass
