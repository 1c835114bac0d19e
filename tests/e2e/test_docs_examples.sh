#!/usr/bin/env bash
# Every runnable example of api-docs/README.md (each ```sh block), run in
# order against a real portcullisd with $API, $TOKEN and $CERTS set: each
# must answer the status documented under it, its body must match
# openapi.yaml, an error must carry the documented error.code, a 405 an
# Allow header. A fake proxy (tests/e2e/fake_proxy.py) plays edge-1: it ACKs,
# and NACKs during the 503 example. Skipped (exit 0) only while the control
# plane has no routes yet (POST /v1/target-groups answers 404).
# pc-timeout: 400
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/certs.sh"

docs=$PC_SRC_DIR/tests/docs
spec=$PC_SRC_DIR/api-docs/openapi.yaml

pc_start_cp
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 -X POST \
  -H "Authorization: Bearer $PC_TOKEN" -H 'Content-Type: application/json' -d '{}' \
  "$PC_API/v1/target-groups" || true)
if [ "$code" = 404 ]; then
  echo "skipped: control plane routes not implemented (POST /v1/target-groups answers 404)"
  exit 0
fi

"$docs/install.sh" || pc_fail "cannot install the docs tooling (tests/docs)"

# The files the README's examples expect under $CERTS.
pc_mkca root
pc_mkca inter root
pc_mkca backend-ca
pc_mkcert www inter "DNS:www.example.test,DNS:example.test"
PC_KEY=rsa:2048 pc_mkcert www-rsa inter "DNS:www.example.test,DNS:example.test"
pc_mkcert api inter "DNS:api.example.test"

# A stand-in proxy (fake_proxy.py) named edge-1, as in the README: it ACKs
# every snapshot, and refuses (NACK) while the example that documents the
# 503 runs.
echo ack >"$PC_TMP/proxy.mode"
pc_spawn "$PC_TMP/fake-proxy.log" python3 "$PC_SRC_DIR/tests/e2e/fake_proxy.py" \
  --socket "$PC_SOCK" --node-id edge-1 --mode ack --mode-file "$PC_TMP/proxy.mode" \
  --nack-error "bind 0.0.0.0:22: Address already in use" --log "$PC_TMP/proxy-frames.jsonl"
proxy_connected() {
  curl -sS --max-time 5 -H "Authorization: Bearer $PC_TOKEN" "$PC_API/v1/status" |
    jq -e '.dataplanes | map(select(.id == "edge-1" and .connected)) | length == 1'
}
pc_wait_for 10 proxy_connected || pc_fail "the fake proxy did not connect"

# Each example runs in its own bash with 'curl' wrapped: the wrapper calls
# the real curl, records status, method, URL, headers and body of every
# call, and still prints the body (examples pipe it into jq).
cat >"$PC_TMP/wrap.sh" <<'WRAP'
set -euo pipefail
curl() {
  local n method= data= url= prev= a code rc=0
  n=$(($(wc -l <"$PCX_DIR/calls") + 1))
  for a in "$@"; do
    case $prev in -X | --request) method=$a ;; esac
    case $a in
      http://* | https://*) url=$a ;;
      -d | --data | --data-binary | --data-raw | --json) data=1 ;;
    esac
    prev=$a
  done
  [ -n "$method" ] || { [ -n "$data" ] && method=POST || method=GET; }
  : >"$PCX_DIR/body-$n"; : >"$PCX_DIR/headers-$n"
  code=$(command curl "$@" --max-time 30 -o "$PCX_DIR/body-$n" -D "$PCX_DIR/headers-$n" \
    -w '%{http_code}') || rc=$?
  printf '%s %s %s\n' "$code" "$method" "$url" >>"$PCX_DIR/calls"
  cat "$PCX_DIR/body-$n" 2>/dev/null || true
  # A status was received (e.g. 413 while curl was still sending): not a failure.
  [ "$code" = 000 ] || return 0
  [ "$rc" -ne 0 ] || rc=1
  return "$rc"
}
WRAP

count=$(node "$docs/openapi-check.mjs" prepare "$PC_SRC_DIR/api-docs/README.md" "$PC_TMP/wrap.sh" \
  "$PC_TMP/ex") || pc_fail "cannot extract the README examples: $count"
[ "$count" -ge 20 ] || pc_fail "only $count examples extracted"

# In README order, each in its own bash; every problem is collected and
# reported at the end, all at once.
export API=$PC_API TOKEN=$PC_TOKEN CERTS=$PC_CERTS
for n in $(seq "$count"); do
  export PCX_DIR=$PC_TMP/ex/ex-$n
  want=$(cat "$PCX_DIR/want")
  [ "$want" != 503 ] || echo nack >"$PC_TMP/proxy.mode"
  rc=0
  (cd "$PC_TMP" && timeout 60 bash "$PCX_DIR/run.sh" >"$PCX_DIR/stdout" 2>"$PCX_DIR/stderr") || rc=$?
  echo "$rc" >"$PCX_DIR/rc"
  echo ack >"$PC_TMP/proxy.mode"
done
proxy_connected >/dev/null || pc_fail "the fake proxy is no longer connected"

out=$(node "$docs/openapi-check.mjs" results "$spec" "$PC_TMP/ex" 2>&1) \
  || pc_fail "the README examples do not behave as documented:
$out"
pc_log "$out"

# The paths the examples took (413 mid-upload, a NACK and its rollback...)
# left the daemon sound: it exits cleanly (and leak-free under ASan).
pc_stop "$PC_CP_PID"
[ "$PC_RC" = 0 ] || pc_fail "portcullisd exited with $PC_RC after the examples"
pc_pass
