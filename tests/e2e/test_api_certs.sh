#!/usr/bin/env bash
# Certificates through the REST API: import, metadata, list with
# ?expiring_within_days, re-import (version+1, If-Match, RSA -> ECDSA under
# the same id), CA-only trust anchors, delete refused while in use, and no
# private key in any response, log or database column.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_api.sh"
source "$(dirname "$0")/certs.sh"

pc_start_cp
pc_mkca ca
PC_KEY=rsa:2048 pc_mkcert rsa ca "DNS:www.test,IP:127.0.0.1"
pc_mkcert ec ca "DNS:ec.test"
PC_DAYS=-1 pc_mkcert old ca "DNS:old.test"
PC_KEY=rsa:1024 pc_mkcert weak ca "DNS:weak.test"
PC_DAYS=5 pc_mkcert soon ca "DNS:soon.test"

pc_api POST /v1/certificates "$(pc_cert_json rsa)"
pc_expect_status 201
ID=$(pc_json .id)
[[ $ID =~ ^cert-[0-9a-f]{16}$ ]] || pc_fail "certificate id $ID"
pc_assert_eq "$(pc_json .version)" 1 "version"
pc_assert_eq "$(pc_json .key_algorithm)" RSA "key algorithm"
pc_assert_eq "$(pc_json .key_bits)" 2048 "key bits"
pc_assert_eq "$(pc_json .status)" issued "status"
pc_assert_eq "$(pc_json .fingerprint_sha256)" "$(pc_fingerprint "$PC_CERTS/rsa.crt")" "fingerprint"
pc_assert_eq "$(pc_json '.sans | join(",")')" "www.test,127.0.0.1" "sans"
pc_json .days_to_expiry | grep -Eqx "29|30" || pc_fail "days_to_expiry: $(pc_json .days_to_expiry)"
for k in subject issuer serial not_before not_after in_use_by created_at updated_at; do
  pc_json "has(\"$k\")" | grep -qx true || pc_fail "certificate lacks $k"
done
pc_json 'has("private_key") or has("certificate")' | grep -qx false || pc_fail "key or PEM in response"
printf '%s' "$PC_BODY" | grep -q 'PRIVATE KEY' && pc_fail "private key material in a response"

pc_api POST /v1/certificates "$(pc_cert_json rsa)"
pc_expect_error 409 name_taken name
pc_api POST /v1/certificates "$(pc_cert_json old)"
pc_expect_error 422 certificate_expired
pc_api POST /v1/certificates "$(pc_cert_json weak)"
pc_expect_error 422 key_too_weak
pc_api POST /v1/certificates "$(jq -n --rawfile c "$PC_CERTS/rsa.crt" --rawfile k "$PC_CERTS/ec.key" '{name:"mm",certificate:$c,private_key:$k}')"
pc_expect_error 422 certificate_key_mismatch
pc_api POST /v1/certificates '{"name":"junk","certificate":"hello","private_key":"world"}'
pc_expect_status 400
pc_api POST /v1/certificates "$(jq -n --rawfile c "$PC_CERTS/ec.crt" '{name:"nokey",certificate:$c}')"
pc_expect_status 400
pc_api POST /v1/certificates '{"name":"x","certificate":5}'
pc_expect_error 400 invalid_type certificate

pc_api POST /v1/certificates "$(pc_cert_json soon)"
pc_expect_status 201
SOON=$(pc_json .id)
# A CA certificate without a key: a trust anchor for target groups only.
pc_api POST /v1/certificates "$(jq -n --rawfile c "$PC_CERTS/ca.crt" '{name:"ca",certificate:$c}')"
pc_expect_status 201
CA=$(pc_json .id)

pc_api GET /v1/certificates
pc_assert_eq "$(pc_json '.certificates | length')" 3 "list"
pc_api GET '/v1/certificates?expiring_within_days=10'
pc_assert_eq "$(pc_json '[.certificates[].id] | join(",")')" "$SOON" "expiring within 10 days"
pc_api GET '/v1/certificates?expiring_within_days=0'
pc_assert_eq "$(pc_json '.certificates | length')" 0 "expiring within 0 days"
for bad in -1 36501 abc 1.5 ''; do
  pc_api GET "/v1/certificates?expiring_within_days=$bad"
  pc_expect_error 400 invalid_value expiring_within_days
done

# Use them: a listener on the leaf, a TLS target group trusting the CA.
pc_api POST /v1/target-groups "{\"name\":\"b\",\"protocol\":\"tls\",\"tls\":{\"ca_certificate_id\":\"ca\"}}"
pc_expect_status 201
pc_api POST /v1/listeners '{"name":"l","bind":"127.0.0.1","port":9443,"protocol":"tls","default_target_group_id":"b","certificate_ids":["ca"]}'
pc_expect_error 422 invalid_combination 'certificate_ids[0]'
pc_api POST /v1/listeners "{\"name\":\"l\",\"bind\":\"127.0.0.1\",\"port\":9443,\"protocol\":\"tls\",\"default_target_group_id\":\"b\",\"certificate_ids\":[\"$ID\",\"soon\"]}"
pc_expect_status 201
LSN=$(pc_json .id)
pc_api GET "/v1/certificates/rsa"
pc_assert_eq "$(pc_json '.in_use_by | join(",")')" "$LSN" "in_use_by"
pc_api DELETE "/v1/certificates/$ID"
pc_expect_error 409 certificate_in_use
pc_api DELETE /v1/certificates/ca
pc_expect_error 409 certificate_in_use

# Rotation: RSA -> ECDSA under the same id, If-Match honoured.
pc_api PUT "/v1/certificates/$ID" "$(pc_cert_json ec | jq 'del(.name)')" -H 'If-Match: 7'
pc_expect_error 409 version_mismatch If-Match
pc_api PUT "/v1/certificates/$ID" "$(pc_cert_json ec | jq 'del(.name)')" -H 'If-Match: abc'
pc_expect_error 400 invalid_value If-Match
# Longer than any version: refused, not truncated into a valid one.
pc_api PUT "/v1/certificates/$ID" "$(pc_cert_json ec | jq 'del(.name)')" -H "If-Match: 1$(printf '0%.0s' $(seq 100))"
pc_expect_error 400 invalid_value If-Match
pc_api PUT "/v1/certificates/$ID" "$(pc_cert_json ec | jq 'del(.name)')" -H 'If-Match: 1'
pc_expect_status 200
pc_assert_eq "$(pc_json .id)" "$ID" "same id"
pc_assert_eq "$(pc_json .name)" rsa "name kept"
pc_assert_eq "$(pc_json .version)" 2 "version+1"
pc_assert_eq "$(pc_json .key_algorithm)" ECDSA "key algorithm changed"
pc_assert_eq "$(pc_json .fingerprint_sha256)" "$(pc_fingerprint "$PC_CERTS/ec.crt")" "new fingerprint"
pc_api PUT "/v1/certificates/$ID" "$(pc_cert_json old | jq 'del(.name)')"
pc_expect_error 422 certificate_expired
pc_api PUT "/v1/certificates/$ID" "$(jq -n --rawfile c "$PC_CERTS/ca.crt" '{certificate:$c}')"
pc_expect_error 422 invalid_combination private_key
pc_api GET "/v1/certificates/$ID"
pc_assert_eq "$(pc_json .version)" 2 "refused re-imports change nothing"
pc_api PUT /v1/certificates/nope "$(pc_cert_json ec | jq 'del(.name)')"
pc_expect_error 404 not_found

pc_api DELETE "/v1/listeners/$LSN"
pc_expect_status 204
pc_api DELETE "/v1/certificates/$ID"
pc_expect_status 204
pc_api GET "/v1/certificates/$ID"
pc_expect_error 404 not_found

# Keys rest only as ciphertext; logs never carry them.
sqlite3 "$PC_DATA/portcullis.db" "SELECT count(*) FROM certificates WHERE key_ct IS NOT NULL AND instr(CAST(key_ct AS TEXT), 'PRIVATE KEY') = 0" \
  | grep -qx 1 || pc_fail "sealed key column"
if grep -rqa 'PRIVATE KEY' "$PC_DATA"/portcullis.db* "$PC_CP_LOG.tmp"; then
  pc_fail "private key in clear in the database or the log"
fi
stat -c %a "$PC_DATA/portcullis.db" | grep -qx 600 || pc_fail "database mode"
# A clean exit: no crash, and no leak report under ASan.
pc_stop "$PC_CP_PID"
pc_assert_eq "$PC_RC" 0 "portcullisd exit status"
pc_pass
