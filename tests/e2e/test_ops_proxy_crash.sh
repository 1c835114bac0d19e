#!/usr/bin/env bash
# Issue 7.4: kill -9 of the proxy and a restart: it connects, applies the
# current configuration and serves within one second; status shows it.
# pc-timeout: 60
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/certs.sh"
source "$(dirname "$0")/lib_ops.sh"

PC_NODE_ID=edge pc_web_stack
port=$PC_WEB_PORT

kill -9 "$PC_DP_PID"
wait "$PC_DP_PID" 2>/dev/null || true
curl -sk --max-time 2 --resolve web.test:$port:127.0.0.1 "https://web.test:$port/" >/dev/null 2>&1 \
  && pc_fail "still served after kill -9"
pc_api GET /v1/status
pc_wait_for 5 bash -c "curl -s -H 'Authorization: Bearer $PC_TOKEN' $PC_API/v1/status |
  jq -e '[.dataplanes[] | select(.id == \"edge\" and .connected)] | length == 0'" \
  || pc_fail "status still shows the killed proxy connected"

t0=$(date +%s%3N)
PC_NODE_ID=edge pc_start_proxy
served=
for _ in $(seq 100); do
  if [ "$(curl -sk --max-time 1 --resolve web.test:$port:127.0.0.1 "https://web.test:$port/")" = origin ]; then
    served=$(date +%s%3N); break
  fi
  sleep 0.02
done
[ -n "$served" ] || pc_fail "restarted proxy does not serve"
echo "proxy restart: serving $((served - t0)) ms after start" >&2
# One second is the operator's promise; under the sanitizer build startup is
# several times slower, so allow it there.
limit=1000; [ -f "$PC_BIN_DIR/../CMakeCache.txt" ] && grep -q 'PC_SANITIZE:BOOL=ON' "$PC_BIN_DIR/../CMakeCache.txt" && limit=5000
[ $((served - t0)) -le $limit ] || pc_fail "took $((served - t0)) ms to serve (limit $limit)"
pc_wait_applied 5
pc_api GET /v1/status
pc_assert_eq "$(pc_json '[.dataplanes[] | select(.id == "edge" and .connected)] | length')" 1 \
  "status shows the restarted proxy"
pc_pass
