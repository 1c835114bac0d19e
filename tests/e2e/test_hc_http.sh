#!/usr/bin/env bash
# Issue 8.1 and its bad input: http health checks against backends that
# answer 200, 503, slowly (longer than timeout_ms), with endless garbage and
# with a status line that never ends: each gets the right verdict and
# reason, bounded by the timeout, while the proxy keeps relaying other
# traffic. Out-of-range check settings are 422 with the field.
# pc-timeout: 120
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_ops.sh"
source "$(dirname "$0")/lib_hc.sh"
source "$(dirname "$0")/lib_api.sh"

pc_stack
p_ok=$(pc_free_port); p_503=$(pc_free_port); p_slow=$(pc_free_port)
p_junk=$(pc_free_port); p_huge=$(pc_free_port); p_301=$(pc_free_port)
hc_backend http:200 "$p_ok"
hc_backend http:503 "$p_503"
hc_backend slow "$p_slow"
hc_backend garbage "$p_junk"
hc_backend huge "$p_huge"
hc_backend http:301 "$p_301"

targets=$(printf '%s\n' "$p_ok" "$p_503" "$p_slow" "$p_junk" "$p_huge" "$p_301" \
  | jq -R 'tonumber | {host:"127.0.0.1", port:.}' | jq -s .)
pc_post /v1/target-groups "$(jq -n --argjson t "$targets" '{name:"checked", protocol:"tcp",
  targets:$t, health_check:{protocol:"http", path:"/healthz", interval_ms:1000, timeout_ms:400,
  healthy_threshold:2, unhealthy_threshold:2}}')"
tg=$PC_ID

# Ordinary traffic through a listener to a plain HTTP backend meanwhile.
pc_backend_http origin
pc_tg origin "$PC_BE_PORT"
lp=$(pc_free_port)
pc_post /v1/listeners "$(jq -n --argjson p "$lp" --arg tg "$PC_ID" '{name:"plain", bind:"127.0.0.1",
  port:$p, protocol:"tcp", default_target_group_id:$tg}')"
pc_wait_applied

hc_wait "$tg" "$p_ok" healthy 10
pc_assert_eq "$HC_STATE" "healthy|" "200"
hc_wait "$tg" "$p_301" healthy 10
hc_wait "$tg" "$p_503" unhealthy 10
pc_assert_eq "$HC_STATE" "unhealthy|http 503" "503"
hc_wait "$tg" "$p_slow" unhealthy 10
pc_assert_eq "$HC_STATE" "unhealthy|timeout" "slow answer"
hc_wait "$tg" "$p_junk" unhealthy 10
pc_assert_eq "$HC_STATE" "unhealthy|http: malformed response" "endless garbage"
hc_wait "$tg" "$p_huge" unhealthy 10
pc_assert_eq "$HC_STATE" "unhealthy|http: malformed response" "endless status line"

# The relay keeps working while the bad endpoints are being checked.
for i in $(seq 20); do
  out=$(curl -sS --max-time 5 "http://127.0.0.1:$lp/") || pc_fail "request $i through the proxy failed"
  pc_assert_eq "$out" origin "answer $i through the proxy"
done
# And the checker keeps its pace: the healthy target was asked again.
c0=$(hc_conns "$p_ok")
pc_wait_for 10 hc_conns_over "$p_ok" $((c0 + 1)) || pc_fail "checks stalled"
hc_state "$tg" "$p_ok"
pc_assert_eq "$HC_STATE" "healthy|" "200 after a while"

# Out-of-range settings: 422 naming the field.
bad() {
  pc_api POST /v1/target-groups "$(jq -n --argjson h "$1" '{name:"bad", protocol:"tcp", health_check:$h}')"
  pc_expect_error "$2" "$3" "$4"
}
bad '{"protocol":"tcp","interval_ms":99}' 422 out_of_range health_check.interval_ms
bad '{"protocol":"tcp","interval_ms":300001}' 422 out_of_range health_check.interval_ms
bad '{"protocol":"tcp","timeout_ms":49}' 422 out_of_range health_check.timeout_ms
bad '{"protocol":"tcp","healthy_threshold":0}' 422 out_of_range health_check.healthy_threshold
bad '{"protocol":"tcp","unhealthy_threshold":11}' 422 out_of_range health_check.unhealthy_threshold
bad '{"protocol":"tcp","port":65536}' 422 out_of_range health_check.port
bad '{"protocol":"tcp","interval_ms":1000,"timeout_ms":1001}' 422 invalid_combination health_check.timeout_ms
bad '{"protocol":"tcp","path":"/x"}' 422 invalid_combination health_check.path
bad '{"protocol":"udp"}' 400 invalid_value health_check.protocol
bad '{"protocol":"tcp","proxy_protocol":"v1"}' 400 invalid_value health_check.proxy_protocol
pc_pass
