#!/usr/bin/env bash
# Issue 8 review: the reason of an unhealthy target follows its failed
# checks (connect refused, then http 503 from a backend on the same port);
# changing interval_ms keeps the verdict (no reset to initial, whose first
# success would make the target healthy at once: healthy_threshold counts).
# pc-timeout: 120
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_ops.sh"
source "$(dirname "$0")/lib_hc.sh"

pc_stack
pa=$(pc_free_port)
def() { jq -n --argjson p "$pa" --argjson iv "$1" '{name:"u", protocol:"tcp",
  targets:[{host:"127.0.0.1", port:$p}],
  health_check:{protocol:"http", path:"/h", interval_ms:$iv, timeout_ms:250,
    healthy_threshold:10, unhealthy_threshold:2}}'; }
pc_post /v1/target-groups "$(def 500)"
tg=$PC_ID
pc_wait_applied

# Nothing listens: unhealthy, connect refused.
hc_wait "$tg" "$pa" unhealthy 10
pc_assert_eq "$HC_STATE" "unhealthy|connect refused" "no backend"

# A backend answering 503 on that port: still unhealthy, for another reason.
hc_backend http:503 "$pa"
be=$HC_BE_PID
deadline=$((SECONDS + 10))
until hc_state "$tg" "$pa"; [ "$HC_STATE" = "unhealthy|http 503" ]; do
  [ $SECONDS -lt $deadline ] || pc_fail "reason after a 503: '$HC_STATE', want 'unhealthy|http 503'"
  sleep 0.1
done

# It answers 200 now, but 10 successes (4.5 s at least) are needed; change
# interval_ms meanwhile: no reset, so it stays unhealthy for a while.
kill -KILL "$be"
wait "$be" 2>/dev/null || true
hc_backend http:200 "$pa"
pc_api PUT "/v1/target-groups/$tg" "$(def 550)"
pc_expect_status 200
pc_wait_applied
for _ in 1 2 3 4 5; do
  hc_state "$tg" "$pa"
  pc_assert_eq "${HC_STATE%%|*}" unhealthy "state right after an interval_ms change"
  sleep 0.1
done
# And it does recover, with the new interval.
hc_wait "$tg" "$pa" healthy 30
pc_pass
