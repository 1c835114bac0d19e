#!/usr/bin/env bash
# GET /v1/target-groups/{id}/health with several proxies (fake_proxy.py
# sending health frames): per target the worst report of the connected
# proxies counts (unhealthy > draining > initial > healthy), with that
# report's reason, whatever the order the reports arrived in; "reports"
# lists each proxy's own. A removed target that one proxy forgot
# ("removed") but another still drains stays listed with the other's
# report. A proxy that disconnects stops counting.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_api.sh"

export PORTCULLIS_ACK_TIMEOUT_MS=3000
pc_start_cp
pc_api POST /v1/target-groups '{"name":"web","protocol":"tcp",
  "health_check":{"protocol":"tcp","interval_ms":1000,"timeout_ms":500},
  "targets":[{"host":"127.0.0.1","port":8081},{"host":"127.0.0.1","port":8082},
             {"host":"127.0.0.1","port":8083},{"host":"127.0.0.1","port":8084}]}'
pc_expect_status 201
TG=$(pc_json .id)
A=$(pc_json '.targets[0].id')
B=$(pc_json '.targets[1].id')
C=$(pc_json '.targets[2].id')
R=$(pc_json '.targets[3].id')
pc_api DELETE "/v1/target-groups/web/targets/$R"
pc_expect_status 204

# health TARGET JQ: jq on the health entry of TARGET.
health() {
  pc_api GET /v1/target-groups/web/health
  pc_expect_status 200
  pc_json ".targets[] | select(.target_id == \"$1\") | $2"
}
_health_is() { # TARGET JQ-CONDITION
  curl -sf -H "Authorization: Bearer $PC_TOKEN" "$PC_API/v1/target-groups/web/health" \
    | jq -e --arg t "$1" ".targets[] | select(.target_id == \$t) | $2" >/dev/null
}

# Before any proxy: initial, no reports.
pc_assert_eq "$(health "$A" '"\(.state) \(.reason) \(.reports | length)"')" \
  "initial no data plane connected 0" "A without proxies"

# p1 first: A unreachable, B healthy, C initial; R drained and forgotten.
pc_fake_proxy p1 ack --health "$TG:$A:unhealthy:connect refused" --health "$TG:$B:healthy:" \
  --health "$TG:$C:initial:no check yet" --health "$TG:$R:draining:deregistered" \
  --health "$TG:$R:removed:"
P1=$PC_FAKE_PID
pc_wait_for 10 _health_is "$A" '.state == "unhealthy"' || pc_fail "p1's report on A not shown"
pc_wait_for 10 _health_is "$C" '.reports | length == 1' || pc_fail "p1's report on C not shown"
# p2 later: A healthy (reported after p1's unhealthy), B initial, C
# unhealthy, R still draining.
pc_fake_proxy p2 ack --health "$TG:$A:healthy:" --health "$TG:$B:initial:starting" \
  --health "$TG:$C:unhealthy:timeout" --health "$TG:$R:draining:deregistered"
pc_wait_for 10 _health_is "$R" '.reports | length == 1' || pc_fail "p2's report on R not shown"
pc_wait_for 10 _health_is "$A" '.reports | length == 2' || pc_fail "p2's report on A not shown"
pc_wait_for 10 _health_is "$C" '.reports | length == 2' || pc_fail "p2's report on C not shown"

pc_api GET /v1/target-groups/web/health
pc_expect_status 200
pc_log "$PC_BODY"
pc_assert_eq "$(pc_json '.targets | length')" 4 "entries: the 3 configured targets and the removed R"
pc_assert_eq "$(health "$A" '"\(.state)|\(.reason)"')" "unhealthy|connect refused" \
  "A: one proxy cannot reach it, the later healthy report does not hide it"
pc_assert_eq "$(health "$A" '[.reports[] | "\(.node_id)=\(.state)"] | join(",")')" \
  "p1=unhealthy,p2=healthy" "A reports"
pc_assert_eq "$(health "$A" '.updated_at | test("Z$")')" true "A updated_at"
pc_assert_eq "$(health "$B" '"\(.state)|\(.reason)"')" "initial|starting" "B: initial beats healthy"
pc_assert_eq "$(health "$C" '"\(.state)|\(.reason)"')" "unhealthy|timeout" "C: unhealthy beats initial"
pc_assert_eq "$(health "$R" '"\(.host)|\(.port)|\(.state)|\(.reason)"')" "null|null|draining|deregistered" \
  "R: removed by p1, still drained by p2"
pc_assert_eq "$(health "$R" '[.reports[] | .node_id] | join(",")')" "p2" "R reports"

# A draining report outranks initial and healthy, and the worst of equally
# bad reports is the latest: p3 reports B draining and C unhealthy (later).
pc_fake_proxy p3 ack --health "$TG:$B:draining:weight 0" --health "$TG:$C:unhealthy:http 503"
P3=$PC_FAKE_PID
pc_wait_for 10 _health_is "$B" '.reports | length == 3' || pc_fail "p3's report on B not shown"
pc_wait_for 10 _health_is "$C" '.reports | length == 3' || pc_fail "p3's report on C not shown"
pc_assert_eq "$(health "$B" '"\(.state)|\(.reason)"')" "draining|weight 0" "B: draining beats initial"
pc_assert_eq "$(health "$C" '"\(.state)|\(.reason)"')" "unhealthy|http 503" "C: the latest unhealthy"
pc_stop "$P3"

# p1 disconnects: its reports stop counting; A shows p2's verdict.
pc_stop "$P1"
pc_wait_for 10 _health_is "$A" '.state == "healthy"' || pc_fail "p1's report on A outlived p1"
pc_assert_eq "$(health "$A" '[.reports[] | .node_id] | join(",")')" "p2" "A reports without p1"
pc_assert_eq "$(health "$B" '"\(.state)|\(.reason)"')" "initial|starting" "B without p1 and p3"
pc_assert_eq "$(health "$C" '"\(.state)|\(.reason)"')" "unhealthy|timeout" "C without p1 and p3"
kill -0 "$PC_CP_PID" || pc_fail "portcullisd died"
pc_pass
