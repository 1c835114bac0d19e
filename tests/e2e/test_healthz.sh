#!/usr/bin/env bash
# Both daemons start on loopback; /healthz answers without a token; both
# exit 0 on SIGTERM.
source "$(dirname "$0")/lib.sh"

pc_start_cp
pc_start_proxy

code=$(curl -s -o "$PC_TMP/h" -w '%{http_code}' "$PC_API/healthz")
pc_assert_eq "$code" 200 "GET /healthz"
jq -e . "$PC_TMP/h" >/dev/null || pc_fail "/healthz body is not JSON"

# A fresh control plane's empty configuration (version 0) is applied, not
# refused (it once was: the proxy wanted versions from 1).
pc_wait_for 10 grep -q 'snapshot 0 applied' "$PC_DP_LOG" || pc_fail "empty snapshot 0 not applied"
if grep -q 'refused' "$PC_DP_LOG"; then pc_fail "proxy refused a snapshot: $(grep refused "$PC_DP_LOG")"; fi


pc_pass
