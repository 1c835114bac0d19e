#!/usr/bin/env bash
# The real stack: portcullisd and portcullis-proxy. A listener added,
# changed and removed through the API while the proxy runs, each change
# served by the time the call returns; a listener on a port another
# process holds is refused with the proxy's reason and changes nothing.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_dp.sh"

read -r na nb taken la <<<"$(dp_ports 4 | tr '\n' ' ')"
dp_backend name "$na" A
dp_backend name "$nb" B
dp_backend hold "$taken"
refused() { ! timeout 5 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null; }
lsn() { jq -n --arg tg "$2" --argjson p "$1" '{name:"web", bind:"127.0.0.1", port:$p, protocol:"tcp", default_target_group_id:$tg}'; }

pc_start_cp
PORTCULLIS_GRACE_MS=2000 pc_start_proxy
for x in a:$na b:$nb; do
  pc_api POST /v1/target-groups "{\"name\":\"t${x%%:*}\",\"protocol\":\"tcp\",\"targets\":[{\"host\":\"127.0.0.1\",\"port\":${x#*:}}]}"
  pc_expect_status 201
done

# Added.
pc_api POST /v1/listeners "$(lsn "$la" ta)"
pc_expect_status 201
pc_assert_eq "$(pc_json .applied)" true "listener add applied"
pc_assert_eq "$(dp_tool names "$la" 3)" "A:3" "added listener serves"

# Changed: same address, other target group; sockets kept.
pc_api PUT /v1/listeners/web "$(lsn "$la" tb)"
pc_expect_status 200
pc_assert_eq "$(pc_json .applied)" true "listener change applied"
pc_assert_eq "$(dp_tool names "$la" 3)" "B:3" "changed listener serves the new group"
pc_assert_eq "$(grep -c "bound on 127.0.0.1:$la" "$PC_DP_LOG")" 1 "changed listener not re-bound"

# A port held by another process: the proxy refuses, the API says why, and
# nothing changes.
pc_api POST /v1/listeners "$(jq -n --argjson p "$taken" '{name:"clash", bind:"127.0.0.1", port:$p, protocol:"tcp", default_target_group_id:"ta"}')"
[ "$PC_STATUS" = 503 ] || [ "$PC_STATUS" = 409 ] || pc_fail "listener on a taken port: HTTP $PC_STATUS $PC_BODY"
[[ "$(pc_json .error.message)" == *"in use"* ]] || pc_fail "reason not passed on: $PC_BODY"
pc_api GET /v1/listeners/clash
pc_expect_status 404
pc_assert_eq "$(dp_tool names "$la" 2)" "B:2" "still serving after a refused change"

# Removed.
pc_api DELETE /v1/listeners/web
pc_expect_status 204
refused "$la" || pc_fail "removed listener still accepts"

# Counters reach the control plane (stats frames every 5 s).
pc_api GET /v1/status
pc_expect_status 200
pc_assert_eq "$(pc_json '.dataplanes[0].connected')" true "proxy connected"
pc_stop "$PC_DP_PID"
pc_assert_eq "$PC_RC" 0 "proxy exit status"
pc_pass
