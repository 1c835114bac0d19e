#!/usr/bin/env bash
# Operations routes: /healthz, /v1/status, the target-group health endpoint
# fed by health frames, and /metrics (Prometheus text, checked by promtool
# when it is installed) fed by stats frames.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_api.sh"
source "$(dirname "$0")/certs.sh"

pc_start_cp
pc_api GET /v1/status
pc_expect_status 200
pc_assert_eq "$(pc_json .config_version)" 0 "fresh config_version"
pc_assert_eq "$(pc_json '.dataplanes | length')" 0 "no dataplanes"

pc_api POST /v1/target-groups '{"name":"plain","protocol":"tcp","targets":[{"host":"127.0.0.1","port":1}]}'
pc_expect_status 201
TGP=$(pc_json .id); TP=$(pc_json '.targets[0].id')
pc_api POST /v1/target-groups '{"name":"checked","protocol":"tcp","health_check":{"protocol":"tcp"},"targets":[{"host":"127.0.0.1","port":2},{"host":"127.0.0.1","port":3}]}'
pc_expect_status 201
TGC=$(pc_json .id); TA=$(pc_json '.targets[0].id'); TB=$(pc_json '.targets[1].id')

# No proxy: everything is "initial".
pc_api GET /v1/target-groups/plain/health
pc_expect_status 200
pc_assert_eq "$(pc_json '.targets[0].state')" initial "no proxy: initial"
pc_assert_eq "$(pc_json '.targets[0] | "\(.target_id) \(.host) \(.port)"')" "$TP 127.0.0.1 1" "health entry"

pc_mkca ca
pc_mkcert c ca "DNS:c.test"
pc_api POST /v1/certificates "$(pc_cert_json c)"
pc_expect_status 201
CERT=$(pc_json .id)
pc_api POST /v1/listeners '{"name":"l","bind":"127.0.0.1","port":9443,"protocol":"tls","default_target_group_id":"plain","certificate_ids":["c"]}'
pc_expect_status 201
LSN=$(pc_json .id)

# A proxy reports health of A, a draining removed target, and stats.
pc_fake_proxy n1 ack --health "$TGC:$TA:unhealthy" --health "$TGC:tgt-gone000000000000:draining" \
  --stats-listener "$LSN"
pc_wait_for 5 bash -c "curl -sf -H 'Authorization: Bearer $PC_TOKEN' $PC_API/v1/target-groups/checked/health | jq -e '.targets[0].state == \"unhealthy\"'" \
  || pc_fail "health report not shown"
pc_api GET /v1/target-groups/checked/health
pc_assert_eq "$(pc_json '[.targets[] | "\(.target_id)=\(.state)"] | join(",")')" \
  "$TA=unhealthy,$TB=initial,tgt-gone000000000000=draining" "health states"
pc_assert_eq "$(pc_json '.targets[0].reason')" "reported by fake proxy" "health reason"
pc_json '.targets[0].updated_at' | grep -Eq '^[0-9]{4}-[0-9]{2}-[0-9]{2}T' || pc_fail "updated_at"
pc_api GET /v1/target-groups/plain/health
pc_assert_eq "$(pc_json '.targets[0].state')" healthy "no health check + proxy: healthy"
pc_api GET /v1/target-groups/nope/health
pc_expect_error 404 not_found

pc_api GET /v1/status
V=$(pc_json .config_version)
pc_wait_for 5 bash -c "curl -sf -H 'Authorization: Bearer $PC_TOKEN' $PC_API/v1/status | jq -e '.dataplanes[0].applied_version == $V'" \
  || pc_fail "status applied_version"
pc_api GET /v1/status
pc_assert_eq "$(pc_json '.dataplanes[0] | "\(.id) \(.connected) \(.last_error)"')" "n1 true null" "status entry"

# Metrics: no token needed, Prometheus text format.
curl -s -D "$PC_TMP/mh" -o "$PC_TMP/metrics" "$PC_API/metrics"
grep -qi '^HTTP/1.1 200' "$PC_TMP/mh" || pc_fail "/metrics status"
grep -qi '^Content-Type: text/plain; version=0.0.4' "$PC_TMP/mh" || pc_fail "/metrics content type"
grep -qx "portcullis_config_version $V" "$PC_TMP/metrics" || pc_fail "config_version metric"
grep -qx "portcullis_certificates 1" "$PC_TMP/metrics" || pc_fail "certificates metric"
grep -qx "portcullis_dataplanes_connected 1" "$PC_TMP/metrics" || pc_fail "dataplanes metric"
grep -q "^portcullis_certificate_not_after_seconds{id=\"$CERT\",name=\"c\"} [0-9]\+$" "$PC_TMP/metrics" \
  || pc_fail "certificate expiry metric"
grep -q "^portcullis_listener_connections_total{listener_id=\"$LSN\",node_id=\"n1\"} 7$" "$PC_TMP/metrics" \
  || pc_fail "listener stats metric"
grep -q '^portcullis_api_requests_total{code="201"} [0-9]' "$PC_TMP/metrics" || pc_fail "request counter"
if command -v promtool >/dev/null; then
  promtool check metrics <"$PC_TMP/metrics" >"$PC_TMP/promtool.out" 2>&1 \
    || pc_fail "promtool: $(cat "$PC_TMP/promtool.out")"
else
  pc_log "promtool not installed: format check skipped"
fi
# A clean exit: no crash, and no leak report under ASan.
pc_stop "$PC_CP_PID"
pc_assert_eq "$PC_RC" 0 "portcullisd exit status"
pc_pass
