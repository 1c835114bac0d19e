#!/usr/bin/env bash
# pc-timeout: 120
# Hostile input against the REST API: auth before routing, 404/405/413/415,
# malformed JSON, depth, duplicate keys, NUL and unicode tricks, 10 MB and
# chunked bodies, a slow client that never finishes its request, and many
# parallel requests: always a 4xx or a closed connection, never a 5xx, a
# crash, a hang or a half-written row.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_api.sh"

pc_start_cp
pc_api POST /v1/target-groups '{"name":"web","protocol":"tcp"}'
pc_expect_status 201

# --- authentication: same answer whether the resource exists or not
for path in /v1/target-groups/web /v1/target-groups/nope /v1/no-such-route /v1; do
  code=$(curl -s -o "$PC_TMP/b" -w '%{http_code}' "$PC_API$path")
  pc_assert_eq "$code" 401 "no token on $path"
  pc_assert_eq "$(jq -r .error.code "$PC_TMP/b")" unauthorized "code on $path"
  code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer x$PC_TOKEN" "$PC_API$path")
  pc_assert_eq "$code" 401 "wrong token on $path"
  code=$(curl -s -o /dev/null -w '%{http_code}' -X DELETE -H "Authorization: Basic $PC_TOKEN" "$PC_API$path")
  pc_assert_eq "$code" 401 "basic auth on $path"
done
code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer ${PC_TOKEN:0:10}" "$PC_API/v1/status")
pc_assert_eq "$code" 401 "token prefix"
code=$(curl -s -o /dev/null -w '%{http_code}' "$PC_API/healthz")
pc_assert_eq "$code" 200 "healthz without token"

# --- routing
pc_api GET /v1/nothing
pc_expect_error 404 not_found
pc_api GET /v1/target-groups/
pc_expect_error 404 not_found
pc_api GET /v1/target-groups/web/targets/x/y
pc_expect_error 404 not_found
pc_api GET "/v1/target-groups/$(printf 'a%.0s' $(seq 200))"
pc_expect_error 404 not_found
curl -s -D "$PC_TMP/h" -o "$PC_TMP/b" -X PATCH -H "Authorization: Bearer $PC_TOKEN" "$PC_API/v1/target-groups/web" >/dev/null
grep -qi '^HTTP/1.1 405' "$PC_TMP/h" || pc_fail "PATCH not 405"
grep -qi '^Allow: GET, PUT, DELETE, HEAD' "$PC_TMP/h" || pc_fail "Allow header: $(cat "$PC_TMP/h")"
pc_assert_eq "$(jq -r .error.code "$PC_TMP/b")" method_not_allowed "405 code"
pc_api DELETE /v1/certificates
pc_expect_error 405 method_not_allowed

# --- content type
pc_api_raw -X POST --data-binary '{"name":"a","protocol":"tcp"}' "$PC_API/v1/target-groups"
pc_expect_error 415 unsupported_media_type
pc_api_raw -X POST -H 'Content-Type: text/plain' --data-binary '{"name":"a","protocol":"tcp"}' "$PC_API/v1/target-groups"
pc_expect_error 415 unsupported_media_type
pc_api_raw -X POST -H 'Content-Type: application/jsonx' --data-binary '{"name":"a","protocol":"tcp"}' "$PC_API/v1/target-groups"
pc_expect_error 415 unsupported_media_type
pc_api_raw -X POST -H 'Content-Type: application/json; charset=utf-8' --data-binary '{"name":"a","protocol":"tcp"}' "$PC_API/v1/target-groups"
pc_expect_status 201

# --- size
head -c $((2 * 1024 * 1024)) /dev/zero | tr '\0' 'a' >"$PC_TMP/big"
pc_api_raw -X POST -H 'Content-Type: application/json' --data-binary @"$PC_TMP/big" "$PC_API/v1/target-groups"
[ "$PC_STATUS" = 413 ] || [ "$PC_STATUS" = 000 ] || pc_fail "2 MiB body: $PC_STATUS"
head -c $((10 * 1024 * 1024)) /dev/zero | tr '\0' ' ' >"$PC_TMP/huge"
pc_api_raw -X POST -H 'Content-Type: application/json' -H 'Transfer-Encoding: chunked' \
  --data-binary @"$PC_TMP/huge" "$PC_API/v1/target-groups"
[ "$PC_STATUS" = 413 ] || [ "$PC_STATUS" = 000 ] || pc_fail "10 MB chunked body: $PC_STATUS"
# A big JSON string inside the limit but beyond a PEM field's limit.
python3 -c 'import json; print(json.dumps({"name": "big", "certificate": "A" * 900000, "private_key": "x"}))' >"$PC_TMP/bigcert"
pc_api POST /v1/certificates @"$PC_TMP/bigcert"
pc_expect_status 413

# --- malformed JSON
pc_api POST /v1/target-groups '{"name":"a",'
pc_expect_error 400 invalid_json
pc_api POST /v1/target-groups '{"name":"b","protocol":"tcp"} x'
pc_expect_error 400 invalid_json
pc_api POST /v1/target-groups '[1,2]'
pc_expect_error 400 invalid_json
pc_api POST /v1/target-groups '"str"'
pc_expect_error 400 invalid_json
pc_api_raw -X POST -H 'Content-Type: application/json' "$PC_API/v1/target-groups"
pc_expect_error 400 invalid_json
deep=$(printf '[%.0s' $(seq 17))$(printf ']%.0s' $(seq 17))
pc_api POST /v1/target-groups "{\"name\":\"d\",\"protocol\":\"tcp\",\"targets\":$deep}"
pc_expect_error 400 invalid_json
deep=$(printf '[%.0s' $(seq 50000))
pc_api POST /v1/target-groups "$deep"
pc_expect_error 400 invalid_json
pc_api POST /v1/target-groups '{"name":"dup","protocol":"tcp","name":"dup2"}'
pc_expect_error 400 duplicate_field
pc_api POST /v1/target-groups '{"name":"dup","protocol":"tcp","targets":[{"host":"a","port":1,"port":2}]}'
pc_expect_error 400 duplicate_field
pc_api POST /v1/target-groups '{"name":"nul\u0000x","protocol":"tcp"}'
pc_expect_error 400 invalid_json
pc_api POST /v1/target-groups '{"name":"w\u00e9b","protocol":"tcp"}'
pc_expect_error 400 invalid_value name
pc_api POST /v1/target-groups "{\"name\":\"web$(printf '\xe2\x80\xae')x\",\"protocol\":\"tcp\"}"
pc_expect_error 400 invalid_value name
pc_api POST /v1/target-groups "$(printf '{"name":"bad\xff\xfe","protocol":"tcp"}')"
[ "$PC_STATUS" = 400 ] || pc_fail "invalid UTF-8: $PC_STATUS"
pc_api POST /v1/target-groups "{\"name\":\"$(printf 'a%.0s' $(seq 65))\",\"protocol\":\"tcp\"}"
pc_expect_error 400 invalid_value name
pc_api POST /v1/target-groups '{"name":"n","protocol":"tcp","deregistration_delay_s":-0.5}'
pc_expect_error 400 invalid_type deregistration_delay_s
pc_api POST /v1/target-groups '{"name":"n","protocol":"tcp","deregistration_delay_s":99999999999999999999}'
pc_expect_error 400 invalid_type deregistration_delay_s
pc_api POST /v1/target-groups '{"name":"n","protocol":"tcp","targets":{}}'
pc_expect_error 400 invalid_type targets
pc_api POST /v1/target-groups "{\"name\":\"n\",\"protocol\":\"tcp\",\"targets\":[$(for i in $(seq 1001); do printf '{"host":"h%d","port":1},' $i; done | sed 's/,$//')]}"
pc_expect_error 400 invalid_value targets
pc_api POST /v1/listeners '{"name":"l","port":1,"protocol":"tcp","default_target_group_id":"web","alpn":["a","b","c","d","e","f","g","h","i"]}'
pc_expect_error 400 invalid_value alpn
pc_api GET /v1/target-groups
pc_assert_eq "$(pc_json '[.target_groups[].name] | sort | join(",")')" "a,web" "no half-written rows"

# --- a slow client that never finishes its request is cut off, and the
# API keeps answering meanwhile.
python3 - "$PC_API" >"$PC_TMP/slow.out" 2>&1 <<'PY' &
import socket, sys, time
host, port = sys.argv[1].split("//")[1].split(":")
s = socket.create_connection((host, int(port)))
s.sendall(b"POST /v1/target-groups HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n")
s.settimeout(30)
start = time.time()
try:
    data = s.recv(100)
except Exception as e:
    data = b"exc"
print("closed" if data == b"" else "got:%r" % data, int(time.time() - start))
PY
SLOW=$!
PC_PIDS+=("$SLOW")
pc_api GET /v1/status
pc_expect_status 200

# --- many parallel requests (while the slow client hangs on): only
# expected statuses, then still healthy.
export PC_API PC_TOKEN
seq 100 | xargs -P 25 -I{} sh -c 'curl -s -o /dev/null -w "%{http_code}\n" --max-time 20 \
  -H "Authorization: Bearer $PC_TOKEN" "$PC_API/v1/target-groups/web" ; \
  curl -s -o /dev/null -w "%{http_code}\n" --max-time 20 -X POST -H "Content-Type: application/json" \
  -H "Authorization: Bearer $PC_TOKEN" --data-binary "{\"name\":\"p{}\",\"protocol\":\"tcp\"}" "$PC_API/v1/target-groups"' \
  >"$PC_TMP/codes" || true
if grep -qv -E '^(200|201|000)$' "$PC_TMP/codes"; then
  pc_fail "unexpected statuses under load: $(sort "$PC_TMP/codes" | uniq -c | tr '\n' ' ')"
fi
created=$(grep -c '^201$' "$PC_TMP/codes" || true)
pc_api GET /v1/target-groups
pc_expect_status 200
pc_assert_eq "$(pc_json '[.target_groups[] | select(.name | startswith("p"))] | length')" "$created" "every 201 is one row"
pc_wait_for 25 grep -q closed "$PC_TMP/slow.out" || pc_fail "slow client not cut off: $(cat "$PC_TMP/slow.out")"
kill -0 "$PC_CP_PID" || pc_fail "portcullisd died"
pc_api GET /v1/status
pc_expect_status 200
# A clean exit: no crash, and no leak report under ASan.
pc_stop "$PC_CP_PID"
pc_assert_eq "$PC_RC" 0 "portcullisd exit status"
pc_pass
