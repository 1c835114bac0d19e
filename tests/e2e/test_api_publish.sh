#!/usr/bin/env bash
# The snapshot publisher against fake proxies (fake_proxy.py): a late proxy
# gets the current snapshot; ACKs commit; only missing certificate bodies
# are sent; a NACK rolls back (503, nothing written) and the proxy that had
# applied the refused version gets the previous configuration under a new
# version; a hung proxy is listed in not_applied and does not hang the API.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_api.sh"
source "$(dirname "$0")/certs.sh"

export PORTCULLIS_ACK_TIMEOUT_MS=1500
pc_start_cp
pc_mkca ca
pc_mkcert a ca "DNS:a.test"
pc_mkcert a2 ca "DNS:a.test"

# Configuration made before any proxy: committed, not applied.
pc_api POST /v1/certificates "$(pc_cert_json a)"
pc_expect_status 201
pc_assert_eq "$(pc_json .applied)" false "applied without proxies"
CERT=$(pc_json .id)
pc_api POST /v1/target-groups '{"name":"web","protocol":"tcp","targets":[{"host":"127.0.0.1","port":8080}]}'
pc_expect_status 201
TG=$(pc_json .id)
pc_api POST /v1/listeners '{"name":"l","bind":"127.0.0.1","port":9443,"protocol":"tls","default_target_group_id":"web","certificate_ids":["a"]}'
pc_expect_status 201
V=$(pc_json .config_version)

# A proxy that connects later receives the certificate, then the snapshot.
pc_fake_proxy p1 ack
pc_wait_frames p1 "any(.type == \"snapshot\" and .version == $V)" || pc_fail "p1 got no snapshot $V"
pc_assert_eq "$(pc_frames p1 '[.[] | select(.type != "connected") | .type] | join(",")')" \
  "certificate,snapshot" "p1 frames in order"
pc_assert_eq "$(pc_frames p1 '[.[] | select(.type == "certificate")][0] | "\(.id) \(.has_private_key) \(.key_is_pem)"')" \
  "$CERT true true" "certificate frame"
SHA=$(pc_frames p1 '[.[] | select(.type == "certificate")][0].sha256')
pc_assert_eq "$(pc_frames p1 "[.[] | select(.type == \"snapshot\")][0] | [.listeners[0].certificate_ids[0], .certificates[0].sha256, .target_groups[0].id, .listeners[0].max_connections] | join(\" \")")" \
  "$CERT $SHA $TG 10000" "snapshot content"
pc_wait_for 5 bash -c "curl -sf -H 'Authorization: Bearer $PC_TOKEN' $PC_API/v1/status | jq -e '.dataplanes[0].applied_version == $V'" \
  || pc_fail "status does not show p1 at version $V"

# A change with one ACKing proxy: applied; the certificate is not resent.
pc_api POST /v1/target-groups/web/targets '{"host":"127.0.0.1","port":8081}'
pc_expect_status 201
pc_assert_eq "$(pc_json .applied)" true "applied with an acking proxy"
pc_assert_eq "$(pc_json '.not_applied | length')" 0 "not_applied"
V=$(pc_json .config_version)
pc_assert_eq "$(pc_frames p1 '[.[] | select(.type == "certificate")] | length')" 1 "certificate sent once"

# A proxy that already holds the body does not get it.
pc_fake_proxy p2 ack --certs "$SHA" --mode-file "$PC_TMP/p2.mode"
pc_wait_frames p2 "any(.type == \"snapshot\" and .version == $V)" || pc_fail "p2 got no snapshot"
pc_assert_eq "$(pc_frames p2 '[.[] | select(.type == "certificate")] | length')" 0 "p2 got no body"

# Rotation sends exactly one new body to each proxy.
pc_api PUT "/v1/certificates/$CERT" "$(pc_cert_json a2 | jq 'del(.name)')"
pc_expect_status 200
pc_assert_eq "$(pc_json .applied)" true "rotation applied"
V=$(pc_json .config_version)
for p in p1 p2; do
  pc_assert_eq "$(pc_frames $p "[.[] | select(.type == \"certificate\" and .sha256 != \"$SHA\")] | length")" 1 "$p new body"
done
# ... and a snapshot_delta naming the new reference, not the whole snapshot.
for p in p1 p2; do
  pc_assert_eq "$(pc_frames $p "[.[] | select(.type == \"snapshot\" and .version == $V)] | length")" 0 "$p no full snapshot"
  pc_assert_eq "$(pc_frames $p "[.[] | select(.type == \"snapshot_delta\" and .version == $V)][0] | [.base_version, (.certificates | length), .certificates[0].id, .certificates[0].version] | join(\" \")")" \
    "$((V - 1)) 1 $CERT 2" "$p delta"
done
SHA2=$(pc_frames p1 "[.[] | select(.type == \"snapshot_delta\")][0].certificates[0].sha256")
[ "$SHA2" != "$SHA" ] || pc_fail "the delta names the old body"

# A proxy that cannot apply a delta (nack with resync) gets the full
# snapshot of the same version; the call still succeeds. Rotating back to
# the first body sends that body again (the proxies dropped it).
echo resync >"$PC_TMP/p2.mode"
pc_api PUT "/v1/certificates/$CERT" "$(pc_cert_json a | jq 'del(.name)')"
pc_expect_status 200
pc_assert_eq "$(pc_json .applied)" true "rotation applied after a resync"
V=$(pc_json .config_version)
pc_assert_eq "$(pc_frames p2 "[.[] | select((.type == \"snapshot_delta\" or .type == \"snapshot\") and .version == $V) | .type] | join(\",\")")" \
  "snapshot_delta,snapshot" "p2 delta then full snapshot"
pc_assert_eq "$(pc_frames p2 "[.[] | select(.type == \"snapshot\" and .version == $V)][0].certificates[0].sha256")" "$SHA" "p2 full snapshot content"
pc_assert_eq "$(pc_frames p1 "[.[] | select(.type == \"snapshot\" and .version == $V)] | length")" 0 "p1 only the delta"
for p in p1 p2; do
  pc_assert_eq "$(pc_frames $p "[.[] | select(.type == \"certificate\" and .sha256 == \"$SHA\")] | length")" \
    "$([ $p = p1 ] && echo 2 || echo 1)" "$p got the first body again"
done
pc_api GET /v1/status
pc_assert_eq "$(pc_json '[.dataplanes[] | select(.applied_version == '"$V"')] | length')" 2 "both at $V"
pc_assert_eq "$(pc_json '.dataplanes[] | select(.id == "p2") | .last_error')" null "a resync is not an error"
echo ack >"$PC_TMP/p2.mode"

# NACK from p2: 503 with its reason, nothing written; p1, which applied the
# refused version, gets the previous configuration under a newer version.
echo nack >"$PC_TMP/p2.mode"
pc_api POST /v1/target-groups '{"name":"refused","protocol":"tcp"}'
pc_expect_error 503 dataplane_rejected
pc_assert_eq "$(pc_json .error.message)" "fake proxy refuses this snapshot" "NACK reason passed on"
pc_api GET /v1/target-groups/refused
pc_expect_error 404 not_found
pc_api GET /v1/target-groups
pc_assert_eq "$(pc_json '.target_groups | length')" 1 "nothing written"
pc_api GET /v1/status
V2=$(pc_json .config_version)
[ "$V2" -eq $((V + 2)) ] || pc_fail "after a refusal the version should be $((V + 2)), got $V2"
pc_wait_frames p1 "any(.type == \"snapshot\" and .version == $V2)" || pc_fail "p1 did not get version $V2"
pc_assert_eq "$(pc_frames p1 "[.[] | select(.type == \"snapshot\" and .version == $((V + 1)))][0].target_groups | length")" \
  2 "p1 saw the refused version"
pc_assert_eq "$(pc_frames p1 "[.[] | select(.type == \"snapshot\" and .version == $V2)][0].target_groups | length")" \
  1 "p1 got the previous configuration back"
pc_api GET /v1/status
pc_assert_eq "$(pc_json '.dataplanes[] | select(.id == "p2") | .last_error')" "fake proxy refuses this snapshot" "last_error"
echo ack >"$PC_TMP/p2.mode"

# A hung proxy: the call returns after the bound, commits, names it.
pc_fake_proxy p3 never
start=$SECONDS
pc_api POST /v1/target-groups '{"name":"second","protocol":"tcp"}'
pc_expect_status 201
[ $((SECONDS - start)) -lt 15 ] || pc_fail "the API waited too long for a hung proxy"
pc_assert_eq "$(pc_json '.not_applied | join(",")')" p3 "not_applied"
pc_assert_eq "$(pc_json .applied)" false "applied is false when a proxy did not answer"
V=$(pc_json .config_version)
pc_wait_frames p3 'any(.type == "closed")' || pc_fail "the hung proxy was not disconnected"
pc_api GET /v1/target-groups/second
pc_expect_status 200
pc_api GET /v1/status
pc_assert_eq "$(pc_json '.dataplanes[] | select(.id == "p3") | .connected')" false "p3 disconnected"
pc_assert_eq "$(pc_json '[.dataplanes[] | select(.connected)] | length')" 2 "p1 and p2 still connected"

# Change with the remaining proxies: applied again.
pc_api DELETE /v1/target-groups/second
pc_expect_status 204
pc_api GET /v1/status
V=$(pc_json .config_version)
for p in p1 p2; do
  pc_wait_frames $p "any(.type == \"snapshot\" and .version == $V)" || pc_fail "$p missed $V"
done

# A proxy that reconnects with the same node id replaces its old entry.
pc_fake_proxy p1 ack --applied-version "$V" --certs "$(pc_frames p1 '[.[] | select(.type == "certificate")][-1].sha256')"
pc_api GET /v1/status
pc_assert_eq "$(pc_json '[.dataplanes[] | select(.id == "p1")] | length')" 1 "one entry per node"
# A clean exit: no crash, and no leak report under ASan.
pc_stop "$PC_CP_PID"
pc_assert_eq "$PC_RC" 0 "portcullisd exit status"
pc_pass
