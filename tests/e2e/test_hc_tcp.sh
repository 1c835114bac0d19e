#!/usr/bin/env bash
# Issue 8.1: tcp health checks through the API and real daemons. A killed
# backend goes unhealthy ("connect refused") and a restarted one healthy
# again within the thresholds; with 2 workers a target is checked once per
# proxy (about one connection per interval at the backend, not two); a
# check sends the 16-byte PROXY v2 LOCAL header only with
# health_check.proxy_protocol "v2"; an unrelated change keeps the verdict;
# after a control-plane restart the proxy reports every target again.
# pc-timeout: 120
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_ops.sh"
source "$(dirname "$0")/lib_hc.sh"

PC_WORKERS=2 pc_stack
pa=$(pc_free_port)
pb=$(pc_free_port)
hc_backend tcp "$pa"
be_a=$HC_BE_PID
hc_backend tcp "$pb"

hc() { jq -n --argjson pp "$1" '{protocol:"tcp", interval_ms:300, timeout_ms:250,
  healthy_threshold:2, unhealthy_threshold:2, proxy_protocol:$pp}'; }
pc_post /v1/target-groups "$(jq -n --argjson p "$pa" --argjson h "$(hc '"v2"')" \
  '{name:"a", protocol:"tcp", targets:[{host:"127.0.0.1", port:$p}], health_check:$h}')"
tga=$PC_ID
pc_post /v1/target-groups "$(jq -n --argjson p "$pb" --argjson h "$(hc null)" \
  '{name:"b", protocol:"tcp", targets:[{host:"127.0.0.1", port:$p}], health_check:$h}')"
tgb=$PC_ID
pc_wait_applied

hc_wait "$tga" "$pa" healthy 10
hc_wait "$tgb" "$pb" healthy 10

# PROXY v2 only where configured.
pc_wait_for 10 hc_conns_over "$pa" 1 pp2=yes || pc_fail "no PROXY v2 header at backend a"
pc_assert_eq "$(hc_conns "$pa" pp2=no)" 0 "checks of a without the header"
pc_assert_eq "$(hc_conns "$pb" pp2=yes)" 0 "checks of b with a header"

# Once per proxy, not once per worker: count over ~3 s.
c0=$(hc_conns "$pb"); t0=$(date +%s%3N)
sleep 3
c1=$(hc_conns "$pb"); t1=$(date +%s%3N)
n=$((c1 - c0)); per=$(((t1 - t0) / 300))
echo "checks of b: $n in $((t1 - t0)) ms (interval 300 ms: $per expected)" >&2
[ "$n" -ge 2 ] || pc_fail "too few checks: $n"
[ "$n" -le $((per * 3 / 2 + 2)) ] || pc_fail "checked more than once per interval: $n for $per intervals"

# Kill a: unhealthy within unhealthy_threshold (2) intervals, generously.
# Bound: unhealthy_threshold x interval + timeout + 2.5 s of slack (reports,
# polling, a loaded machine).
t_kill=$(date +%s%3N)
kill -KILL "$be_a"
wait "$be_a" 2>/dev/null || true
hc_wait "$tga" "$pa" unhealthy 10
took=$(($(date +%s%3N) - t_kill))
pc_log "unhealthy ${took} ms after the kill"
[ "$took" -le $((2 * 300 + 250 + 2500)) ] || pc_fail "unhealthy only ${took} ms after the kill (bound 3350 ms)"
pc_assert_eq "$HC_STATE" "unhealthy|connect refused" "reason of a dead target"
hc_state "$tgb" "$pb"
pc_assert_eq "${HC_STATE%%|*}" healthy "the other group is untouched"

# Restart it: healthy again after healthy_threshold (2) successes.
hc_backend tcp "$pa"
hc_wait "$tga" "$pa" healthy 10

# An unrelated change keeps the verdict (no reset to initial).
pz=$(pc_free_port)
pc_api POST "/v1/target-groups/$tgb/targets" "{\"host\":\"127.0.0.1\",\"port\":$pz}"
pc_expect_status 201
pc_wait_applied
hc_state "$tga" "$pa"
pc_assert_eq "${HC_STATE%%|*}" healthy "state after an unrelated configuration change"
hc_wait "$tgb" "$pz" unhealthy 10
pc_assert_eq "$HC_STATE" "unhealthy|connect refused" "a new target on a closed port"

# A control plane that restarts knows nothing; the proxy reports every
# target again after its hello, with no state change needed.
kill -KILL "$PC_CP_PID"
wait "$PC_CP_PID" 2>/dev/null || true
pc_start_cp
pc_wait_applied 15
hc_wait "$tga" "$pa" healthy 10
hc_wait "$tgb" "$pz" unhealthy 10
pc_assert_eq "$HC_STATE" "unhealthy|connect refused" "reported again after reconnecting"
pc_pass
