#!/usr/bin/env bash
# The test-certificate helpers make what they claim: chains verify, an
# expired certificate is expired, key types are right.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/certs.sh"

pc_mkca root
pc_mkca inter root
pc_mkcert leaf inter "DNS:a.test,DNS:*.b.test,IP:127.0.0.1"
openssl verify -CAfile "$PC_CERTS/root.crt" -untrusted "$PC_CERTS/inter.crt" "$PC_CERTS/leaf.crt" >/dev/null \
  || pc_fail "chain does not verify"
PC_DAYS=-1 pc_mkcert old root "DNS:old.test"
if openssl x509 -in "$PC_CERTS/old.crt" -noout -checkend 0 >/dev/null; then pc_fail "old cert not expired"; fi
PC_KEY=rsa:2048 pc_mkcert rsa root "DNS:rsa.test"
openssl x509 -in "$PC_CERTS/rsa.crt" -noout -text | grep 'rsaEncryption' >/dev/null || pc_fail "rsa key type"
PC_KEY=ed25519 pc_mkcert ed root "DNS:ed.test"
openssl x509 -in "$PC_CERTS/ed.crt" -noout -text | grep 'ED25519' >/dev/null || pc_fail "ed25519 key type"
[ "$(pc_fingerprint "$PC_CERTS/leaf.crt" | wc -c)" -eq 65 ] || pc_fail "fingerprint length"
pc_cert_json leaf "$PC_CERTS/inter.crt" | jq -e '.certificate_chain|startswith("-----BEGIN")' >/dev/null \
  || pc_fail "cert json"
pc_pass
