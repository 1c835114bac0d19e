#!/usr/bin/env bash
# Issue 8.3, what GET /health shows: a target set to weight 0 is
# "draining" (reason "weight 0") for deregistration_delay_s, then shows its
# health again; weight back up shows it healthy; a removed target is listed
# as "draining" (reason "deregistered", host null) and disappears once the
# delay passed. When the proxy goes away its verdicts do not stay.
# pc-timeout: 120
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_ops.sh"
source "$(dirname "$0")/lib_hc.sh"

pc_stack
pa=$(pc_free_port); pb=$(pc_free_port)
hc_backend tcp "$pa"
hc_backend tcp "$pb"
def() { # WEIGHT-A [B-PORT]
  jq -n --argjson pa "$pa" --argjson wa "$1" --argjson pb "${2:-null}" '{name:"d", protocol:"tcp",
    targets:([{host:"127.0.0.1", port:$pa, weight:$wa}] + (if $pb then [{host:"127.0.0.1", port:$pb}] else [] end)),
    health_check:{protocol:"tcp", interval_ms:300, timeout_ms:250, healthy_threshold:1,
    unhealthy_threshold:1}, deregistration_delay_s:2}'
}
pc_post /v1/target-groups "$(def 1 "$pb")"
tg=$PC_ID
tb=$(pc_json ".targets[] | select(.port == $pb) | .id")
pc_wait_applied
hc_wait "$tg" "$pa" healthy 10
hc_wait "$tg" "$pb" healthy 10

# Weight 0: draining at once, its health again after the delay.
pc_api PUT "/v1/target-groups/$tg" "$(def 0 "$pb")"
pc_expect_status 200
hc_state "$tg" "$pa"
pc_assert_eq "$HC_STATE" "draining|weight 0" "weight 0 right after the change"
hc_wait "$tg" "$pa" healthy 15
pc_assert_eq "$HC_STATE" "healthy|weight 0" "weight 0 after the delay"
pc_api PUT "/v1/target-groups/$tg" "$(def 1 "$pb")"
pc_expect_status 200
hc_state "$tg" "$pa"
pc_assert_eq "$HC_STATE" "healthy|" "weight back to 1"

# Removed: listed as draining without an address, then gone.
pc_api DELETE "/v1/target-groups/$tg/targets/$tb"
pc_expect_status 204
pc_api GET "/v1/target-groups/$tg/health"
got=$(printf '%s' "$PC_BODY" | jq -r --arg t "$tb" '.targets[] | select(.target_id == $t) | "\(.state)|\(.reason)|\(.host)"')
pc_assert_eq "$got" "draining|deregistered|null" "removed target right after the removal"
gone() {
  pc_api GET "/v1/target-groups/$tg/health"
  [ "$(printf '%s' "$PC_BODY" | jq --arg t "$tb" '[.targets[] | select(.target_id == $t)] | length')" = 0 ]
}
pc_wait_for 15 gone || pc_fail "removed target still listed: $PC_BODY"
hc_state "$tg" "$pa"
pc_assert_eq "$HC_STATE" "healthy|" "the remaining target"

# deregistration_delay_s 0: gone at once (bounded by one round trip).
pc_post /v1/target-groups "$(jq -n --argjson pb "$pb" '{name:"z", protocol:"tcp",
  targets:[{host:"127.0.0.1", port:$pb}], deregistration_delay_s:0}')"
tz=$PC_ID
tzt=$(pc_json '.targets[0].id')
pc_wait_applied
hc_state "$tz" "$pb"
pc_assert_eq "$HC_STATE" "healthy|no health check" "a target of a group without checks"
pc_api DELETE "/v1/target-groups/$tz/targets/$tzt"
[ "$PC_STATUS" = 200 ] || [ "$PC_STATUS" = 204 ] || pc_fail "remove target: $PC_STATUS $PC_BODY"
tb=$tzt tg0=$tg
tg=$tz
pc_wait_for 5 gone || pc_fail "target removed with delay 0 still listed: $PC_BODY"
tg=$tg0

# The proxy leaves: its verdicts go with it.
pc_stop "$PC_DP_PID"
left() { hc_state "$tg" "$pa"; [ "$HC_STATE" = "initial|no data plane connected" ]; }
pc_wait_for 10 left || pc_fail "after the proxy stopped: $HC_STATE"
pc_pass
