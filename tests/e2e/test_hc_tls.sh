#!/usr/bin/env bash
# Issue 8.1: tls health checks. A group that verifies its targets (protocol
# tls, verify on) checks with its own trust settings: without the CA the
# verdict is unhealthy with "tls: certificate verify failed (...)", with it
# healthy; a tls check of a plain tcp group does not verify.
# pc-timeout: 120
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/certs.sh"
source "$(dirname "$0")/lib_ops.sh"
source "$(dirname "$0")/lib_hc.sh"

pc_mkca ca
pc_mkcert be ca "DNS:backend.test"
pc_stack
pt=$(pc_free_port)
hc_backend tls "$pt" "$PC_CERTS/be.crt" "$PC_CERTS/be.key"

pc_post /v1/certificates "$(jq -n --rawfile c "$PC_CERTS/ca.crt" '{name:"ca", certificate:$c}')"
ca=$PC_ID
check='{"protocol":"tls","interval_ms":500,"timeout_ms":400,"healthy_threshold":1,"unhealthy_threshold":1}'
grp() { # NAME PROTOCOL TLS-OBJECT
  pc_post /v1/target-groups "$(jq -n --arg n "$1" --arg pr "$2" --argjson tls "$3" --argjson p "$pt" \
    --argjson h "$check" '{name:$n, protocol:$pr, targets:[{host:"127.0.0.1", port:$p}],
    health_check:$h, tls:$tls}')"
}
grp untrusted tls '{"verify":true,"server_name":"backend.test"}'; g_untrusted=$PC_ID
grp trusted tls "$(jq -n --arg ca "$ca" '{verify:true, server_name:"backend.test", ca_certificate_id:$ca}')"
g_trusted=$PC_ID
grp wrongname tls "$(jq -n --arg ca "$ca" '{verify:true, server_name:"other.test", ca_certificate_id:$ca}')"
g_wrong=$PC_ID
grp noverify tls '{"verify":false}'; g_noverify=$PC_ID
grp plain tcp null; g_plain=$PC_ID
pc_wait_applied

hc_wait "$g_untrusted" "$pt" unhealthy 10
case $HC_STATE in
  "unhealthy|tls: certificate verify failed"*) ;;
  *) pc_fail "untrusted target: $HC_STATE" ;;
esac
hc_wait "$g_wrong" "$pt" unhealthy 10
case $HC_STATE in
  "unhealthy|tls: certificate verify failed"*) ;;
  *) pc_fail "target with another name: $HC_STATE" ;;
esac
hc_wait "$g_trusted" "$pt" healthy 10
hc_wait "$g_noverify" "$pt" healthy 10
hc_wait "$g_plain" "$pt" healthy 10
pc_assert_eq "$(hc_conns "$pt" pp2=yes)" 0 "PROXY headers sent without proxy_protocol"
pc_pass
