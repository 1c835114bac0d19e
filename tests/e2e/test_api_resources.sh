#!/usr/bin/env bash
# Target groups and listeners through the REST API: create, read, list,
# replace, delete, targets, names usable as ids, references checked, every
# error status, and the same state and config_version after a restart.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_api.sh"
source "$(dirname "$0")/certs.sh"

pc_start_cp

# --- target groups
pc_api POST /v1/target-groups '{"name":"web","protocol":"tcp","targets":[{"host":"127.0.0.1","port":8080},{"host":"Backend.Example.com","port":8081,"weight":5}]}'
pc_expect_status 201
TG=$(pc_json .id)
[[ $TG =~ ^tg-[0-9a-f]{16}$ ]] || pc_fail "target group id $TG"
pc_assert_eq "$(pc_json .algorithm)" round_robin "default algorithm"
pc_assert_eq "$(pc_json .deregistration_delay_s)" 300 "default deregistration delay"
pc_assert_eq "$(pc_json '.targets[1].host')" backend.example.com "host lower-cased"
pc_assert_eq "$(pc_json '.targets[0].weight')" 1 "default weight"
pc_assert_eq "$(pc_json .applied)" false "applied without proxy"
pc_assert_eq "$(pc_json .config_version)" 1 "first version"
T0=$(pc_json '.targets[0].id')
[[ $T0 =~ ^tgt-[0-9a-f]{16}$ ]] || pc_fail "target id $T0"

pc_api GET /v1/target-groups/web
pc_expect_status 200
pc_assert_eq "$(pc_json .id)" "$TG" "GET by name"
pc_api GET "/v1/target-groups/$TG"
pc_expect_status 200
pc_api GET /v1/target-groups
pc_assert_eq "$(pc_json '.target_groups | length')" 1 "list target groups"

pc_api POST /v1/target-groups '{"name":"web","protocol":"tcp"}'
pc_expect_error 409 name_taken name
pc_api POST /v1/target-groups '{"name":"tg-web","protocol":"tcp"}'
pc_expect_error 400 invalid_value name
pc_api POST /v1/target-groups '{"name":"x","protocol":"udp"}'
pc_expect_error 400 invalid_value protocol
pc_api POST /v1/target-groups '{"name":"x","protocol":"tcp","targets":[{"host":"h","port":-1}]}'
pc_expect_error 422 out_of_range 'targets[0].port'
pc_api POST /v1/target-groups '{"name":"x","protocol":"tcp","targets":[{"host":"h","port":70000}]}'
pc_expect_error 422 out_of_range 'targets[0].port'
pc_api POST /v1/target-groups '{"name":"x","protocol":"tcp","targets":[{"host":"h","port":80,"weight":1001}]}'
pc_expect_error 422 out_of_range 'targets[0].weight'
pc_api POST /v1/target-groups '{"name":"x","protocol":"tcp","targets":[{"host":"h","port":1.5}]}'
pc_expect_error 400 invalid_type 'targets[0].port'
pc_api POST /v1/target-groups '{"name":"x","protocol":"tcp","targets":[{"host":"h","port":1e308}]}'
pc_expect_error 400 invalid_type 'targets[0].port'
pc_api POST /v1/target-groups '{"name":"x","protocol":"tcp","targets":[{"host":"h","port":"80"}]}'
pc_expect_error 400 invalid_type 'targets[0].port'
pc_api POST /v1/target-groups '{"name":"x","protocol":"tcp","targets":[{"host":"bad host!","port":80}]}'
pc_expect_error 400 invalid_value 'targets[0].host'
pc_api POST /v1/target-groups '{"name":"x","protocol":"tcp","targets":[{"host":"a","port":80},{"host":"A","port":80}]}'
pc_expect_error 422 duplicate_value 'targets[1]'
pc_api POST /v1/target-groups '{"name":"x","protocol":"tcp","colour":"blue"}'
pc_expect_error 400 unknown_field colour
pc_api POST /v1/target-groups '{"name":"x","protocol":"tcp","tls":{"verify":true}}'
pc_expect_error 422 invalid_combination tls
pc_api POST /v1/target-groups '{"name":"x","protocol":"tls","tls":{"ca_certificate_id":"nope"}}'
pc_expect_error 422 reference_not_found tls.ca_certificate_id
pc_api POST /v1/target-groups '{"name":"x","protocol":"tcp","health_check":{"protocol":"tcp","interval_ms":1000,"timeout_ms":2000}}'
pc_expect_error 422 invalid_combination health_check.timeout_ms
pc_api POST /v1/target-groups '{"name":"x","protocol":"tcp","health_check":{"protocol":"tcp","path":"/x"}}'
pc_expect_error 422 invalid_combination health_check.path
pc_api POST /v1/target-groups '{"protocol":"tcp"}'
pc_expect_error 400 missing_field name
pc_api GET /v1/target-groups
pc_assert_eq "$(pc_json '.target_groups | length')" 1 "refused creations left nothing"

pc_api POST /v1/target-groups '{"name":"api","protocol":"tls","algorithm":"least_conn","health_check":{"protocol":"http","path":"/healthz"},"proxy_protocol":"v2","tls":{"server_name":"Backend.Internal"},"targets":[{"host":"::1","port":9443}]}'
pc_expect_status 201
TG2=$(pc_json .id)
pc_assert_eq "$(pc_json .health_check.interval_ms)" 5000 "health check default interval"
pc_assert_eq "$(pc_json .tls.verify)" true "tls verify default"
pc_assert_eq "$(pc_json .tls.server_name)" backend.internal "server_name lower-cased"

# targets: add, duplicate, remove
pc_api POST "/v1/target-groups/$TG/targets" '{"host":"10.0.0.3","port":80}'
pc_expect_status 201
pc_assert_eq "$(pc_json '.targets | length')" 3 "target added"
T3=$(pc_json '.targets[2].id')
pc_api POST /v1/target-groups/web/targets '{"targets":[{"host":"10.0.0.4","port":80},{"host":"10.0.0.5","port":80}]}'
pc_expect_status 201
pc_assert_eq "$(pc_json '.targets | length')" 5 "targets added in bulk"
pc_api POST /v1/target-groups/web/targets '{"host":"10.0.0.3","port":80}'
pc_expect_error 409 target_exists
pc_api DELETE "/v1/target-groups/web/targets/$T3"
pc_expect_status 204
pc_api DELETE "/v1/target-groups/web/targets/$T3"
pc_expect_error 404 not_found
pc_api POST /v1/target-groups/nope/targets '{"host":"10.0.0.3","port":80}'
pc_expect_error 404 not_found

# replace keeps the id of an unchanged host:port
pc_api PUT /v1/target-groups/web '{"name":"web","protocol":"tcp","targets":[{"host":"127.0.0.1","port":8080,"weight":3}]}'
pc_expect_status 200
pc_assert_eq "$(pc_json '.targets[0].id')" "$T0" "target id kept across PUT"
pc_assert_eq "$(pc_json '.targets[0].weight')" 3 "weight replaced"
pc_api PUT /v1/target-groups/api '{"name":"web","protocol":"tcp"}'
pc_expect_error 409 name_taken name

# --- listeners
pc_api POST /v1/listeners "{\"name\":\"edge\",\"port\":8443,\"protocol\":\"tcp\",\"default_target_group_id\":\"web\",\"sni_routes\":[{\"server_name\":\"*.Example.COM\",\"target_group_id\":\"$TG2\"}]}"
pc_expect_status 201
LSN=$(pc_json .id)
[[ $LSN =~ ^lsn-[0-9a-f]{16}$ ]] || pc_fail "listener id $LSN"
pc_assert_eq "$(pc_json .default_target_group_id)" "$TG" "name resolved to id"
pc_assert_eq "$(pc_json .bind)" 0.0.0.0 "default bind"
pc_assert_eq "$(pc_json .ssl_policy)" intermediate "default policy"
pc_assert_eq "$(pc_json '.sni_routes[0].server_name')" '*.example.com' "server name lower-cased"
pc_assert_eq "$(pc_json .max_connections)" 10000 "default max_connections"

pc_api POST /v1/listeners '{"name":"edge2","bind":"127.0.0.1","port":8443,"protocol":"tcp","default_target_group_id":"web"}'
pc_expect_error 409 port_in_use port
pc_api POST /v1/listeners '{"name":"edge2","port":8444,"protocol":"tcp","default_target_group_id":"nope"}'
pc_expect_error 422 reference_not_found default_target_group_id
pc_api POST /v1/listeners '{"name":"edge2","port":8444,"protocol":"tls","default_target_group_id":"web"}'
pc_expect_error 422 invalid_combination certificate_ids
pc_api POST /v1/listeners '{"name":"edge2","port":8444,"protocol":"tcp","default_target_group_id":"web","certificate_ids":["x"]}'
pc_expect_error 422 invalid_combination certificate_ids
pc_api POST /v1/listeners '{"name":"edge2","port":8444,"protocol":"tls","default_target_group_id":"web","certificate_ids":["nope"]}'
pc_expect_error 422 reference_not_found 'certificate_ids[0]'
pc_api POST /v1/listeners '{"name":"edge2","bind":"localhost","port":8444,"protocol":"tcp","default_target_group_id":"web"}'
pc_expect_error 400 invalid_value bind
pc_api POST /v1/listeners '{"name":"edge2","port":8444,"protocol":"tcp","default_target_group_id":"web","sni_routes":[{"server_name":"a.*.com","target_group_id":"web"}]}'
pc_expect_error 400 invalid_value 'sni_routes[0].server_name'
pc_api POST /v1/listeners '{"name":"edge2","port":8444,"protocol":"tcp","default_target_group_id":"web","idle_timeout_ms":10}'
pc_expect_error 422 out_of_range idle_timeout_ms
pc_api POST /v1/listeners '{"name":"edge2","port":8444,"protocol":"tcp","default_target_group_id":"web","ssl_policy":"old"}'
pc_expect_error 400 invalid_value ssl_policy

# in use
pc_api DELETE /v1/target-groups/web
pc_expect_error 409 target_group_in_use
pc_api DELETE "/v1/target-groups/$TG2"
pc_expect_error 409 target_group_in_use

pc_api PUT /v1/listeners/edge '{"name":"edge","bind":"127.0.0.1","port":8443,"protocol":"tcp","default_target_group_id":"api"}'
pc_expect_status 200
pc_assert_eq "$(pc_json .default_target_group_id)" "$TG2" "listener replaced"
pc_assert_eq "$(pc_json '.sni_routes | length')" 0 "routes replaced"
pc_api DELETE /v1/target-groups/web
pc_expect_status 204
pc_api GET /v1/target-groups/web
pc_expect_error 404 not_found

# --- certificates on a listener, and restart persistence
pc_mkca ca
pc_mkcert site ca "DNS:site.test"
pc_api POST /v1/certificates "$(pc_cert_json site)"
pc_expect_status 201
CERT=$(pc_json .id)
pc_api POST /v1/listeners '{"name":"tls1","bind":"127.0.0.1","port":9443,"protocol":"tls","default_target_group_id":"api","certificate_ids":["site"],"alpn":["h2","http/1.1"]}'
pc_expect_status 201
pc_assert_eq "$(pc_json '.certificate_ids[0]')" "$CERT" "certificate name resolved"
pc_api GET "/v1/certificates/$CERT"
pc_assert_eq "$(pc_json '.in_use_by | length')" 1 "in_use_by"

pc_api GET /v1/status
V=$(pc_json .config_version)
pc_api GET /v1/listeners; L1=$(printf '%s' "$PC_BODY" | jq -S .)
pc_api GET /v1/target-groups; G1=$(printf '%s' "$PC_BODY" | jq -S .)
pc_api GET /v1/certificates; C1=$(printf '%s' "$PC_BODY" | jq -S 'del(.certificates[].days_to_expiry)')
pc_stop "$PC_CP_PID"
pc_assert_eq "$PC_RC" 0 "portcullisd exit status on SIGTERM"
pc_start_cp
pc_api GET /v1/status
pc_assert_eq "$(pc_json .config_version)" "$V" "config_version after restart"
pc_api GET /v1/listeners
pc_assert_eq "$(printf '%s' "$PC_BODY" | jq -S .)" "$L1" "listeners after restart"
pc_api GET /v1/target-groups
pc_assert_eq "$(printf '%s' "$PC_BODY" | jq -S .)" "$G1" "target groups after restart"
pc_api GET /v1/certificates
pc_assert_eq "$(printf '%s' "$PC_BODY" | jq -S 'del(.certificates[].days_to_expiry)')" "$C1" "certificates after restart"
# The next change continues the version sequence.
pc_api DELETE /v1/listeners/tls1
pc_expect_status 204
pc_api GET /v1/status
pc_assert_eq "$(pc_json .config_version)" "$((V + 1))" "version after restart grows"
pc_api DELETE /v1/listeners/tls1
pc_expect_error 404 not_found
# A clean exit: no crash, and no leak report under ASan.
pc_stop "$PC_CP_PID"
pc_assert_eq "$PC_RC" 0 "portcullisd exit status"
pc_pass
