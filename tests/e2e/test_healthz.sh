#!/usr/bin/env bash
# Both daemons start on loopback; /healthz answers without a token; both
# exit 0 on SIGTERM.
source "$(dirname "$0")/lib.sh"

pc_start_cp
pc_start_proxy

code=$(curl -s -o "$PC_TMP/h" -w '%{http_code}' "$PC_API/healthz")
pc_assert_eq "$code" 200 "GET /healthz"
jq -e . "$PC_TMP/h" >/dev/null || pc_fail "/healthz body is not JSON"


pc_pass
