# lib_ops.sh - a whole stack for operational tests: control plane, proxy,
# backends, and resources created through the API. Source after lib.sh and
# certs.sh.

PC_TOOLS=$PC_SRC_DIR/tests/e2e/tools

# pc_backend_http NAME: start an HTTP/1.1 backend answering "NAME"; sets
# PC_BE_PORT and PC_BE_PID.
pc_backend_http() {
  PC_BE_PORT=$(pc_free_port)
  pc_spawn "$PC_TMP/backend-$1.log" python3 "$PC_TOOLS/backend.py" http "$PC_BE_PORT" "$1"
  PC_BE_PID=$PC_LAST_PID
  pc_wait_for 10 grep -q ready "$PC_TMP/backend-$1.log" || pc_fail "backend $1 did not start"
}

# pc_wait_applied [SECONDS]: wait until every connected proxy reports the
# control plane's config_version as applied, and at least one is connected.
pc_wait_applied() {
  local secs=${1:-10}
  _pc_applied() {
    pc_api GET /v1/status
    [ "$PC_STATUS" = 200 ] || return 1
    printf '%s' "$PC_BODY" | jq -e '(.dataplanes | map(select(.connected)) | length) > 0 and
      all(.dataplanes[] | select(.connected); .applied_version == $v)' \
      --argjson v "$(printf '%s' "$PC_BODY" | jq .config_version)" >/dev/null
  }
  pc_wait_for "$secs" _pc_applied || pc_fail "proxy did not apply the configuration: $PC_BODY"
}

# pc_stack: control plane + one proxy, connected.
pc_stack() {
  pc_start_cp
  pc_start_proxy "$@"
  pc_wait_applied 10
}

# pc_post PATH JSON: POST and require 201; sets PC_ID to the new id.
pc_post() {
  pc_api POST "$1" "$2"
  pc_expect_status 201
  PC_ID=$(pc_json .id)
}

# pc_upload_cert NAME: POST the certificate NAME made by pc_mkcert.
pc_upload_cert() {
  pc_post /v1/certificates "$(pc_cert_json "$1")"
}

# pc_tg NAME PORT...: a plain tcp target group with targets on 127.0.0.1.
pc_tg() {
  local name=$1; shift
  local targets
  targets=$(printf '%s\n' "$@" | jq -R 'tonumber | {host:"127.0.0.1", port:.}' | jq -s .)
  pc_post /v1/target-groups "$(jq -n --arg n "$name" --argjson t "$targets" \
    '{name:$n, protocol:"tcp", targets:$t}')"
}

# pc_tls_listener NAME PORT TG CERT...: a tls listener on 127.0.0.1.
pc_tls_listener() {
  local name=$1 port=$2 tg=$3; shift 3
  local certs
  certs=$(printf '%s\n' "$@" | jq -R . | jq -s .)
  pc_post /v1/listeners "$(jq -n --arg n "$name" --argjson p "$port" --arg tg "$tg" \
    --argjson c "$certs" '{name:$n, bind:"127.0.0.1", port:$p, protocol:"tls",
      default_target_group_id:$tg, certificate_ids:$c}')"
}

# pc_proxy_rss_kb PID: resident set of a process, KiB.
pc_proxy_rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }

# pc_load ARGS...: run the load client in the foreground (bounded by its own
# -n and -d). To run it in the background, call "$PC_BIN_DIR/pc_load" ... &
# directly: a backgrounded function is a subshell, and its pid is not the
# load client's, so it could not be stopped by pid.
pc_load() { "$PC_BIN_DIR/pc_load" "$@"; }

# pc_web_stack [PROXY ARGS...]: the common stage of the operational tests:
# control plane + proxy, an HTTP backend "origin", certificate "web"
# (web.test) and a tls listener "web" on PC_WEB_PORT, applied.
pc_web_stack() {
  pc_mkca ca
  pc_mkcert web ca "DNS:web.test"
  pc_stack "$@"
  pc_backend_http origin
  pc_upload_cert web
  pc_tg origin "$PC_BE_PORT"
  PC_WEB_PORT=$(pc_free_port)
  pc_tls_listener web "$PC_WEB_PORT" origin web
  pc_wait_applied
}
