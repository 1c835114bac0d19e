# shellcheck shell=bash
# portcullis-sut.sh - the SUT_EXTRA plug-in of ../shared/bench/anchors.sh for
# Portcullis. It starts portcullisd and portcullis-proxy --workers 1 and
# configures them only through the REST API with curl, as an operator would.
# Sourced by anchors.sh; see bench/run.sh.
SUT_NAME=portcullis

PC_ROOT=${PC_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
PC_BIN=${PC_BIN:-$PC_ROOT/build/bin}

# _pc_sut_api METHOD PATH [BODY-FILE]: call the API; fails on a non-2xx answer.
_pc_sut_api() {
  local args=(-sS --max-time 30 -o "$SUT_DIR/api.out" -w '%{http_code}' -X "$1"
              -H "Authorization: Bearer $PC_SUT_TOKEN")
  [ -n "${3:-}" ] && args+=(-H 'Content-Type: application/json' --data-binary "@$3")
  local code
  code=$(curl "${args[@]}" "$PC_SUT_API$2") || return 1
  if [[ $code != 2* ]]; then
    echo "portcullis-sut: $1 $2 -> $code $(cat "$SUT_DIR/api.out")" >&2
    return 1
  fi
}

# _pc_sut_start: control plane (on the load core: it is idle during the runs)
# and one single-worker proxy pinned to the proxy core.
_pc_sut_start() {
  local port
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  PC_SUT_TOKEN=bench-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
  PC_SUT_API=http://127.0.0.1:$port
  mkdir -p "$SUT_DIR/var"
  PORTCULLIS_ADMIN_TOKEN=$PC_SUT_TOKEN taskset -c "${LOAD_CPU:-1}" "$PC_BIN/portcullisd" \
    --data-dir "$SUT_DIR/var" --api-listen "127.0.0.1:$port" --log-level warn \
    >"$SUT_DIR/portcullisd.log" 2>&1 &
  SUT_PIDS+=("$!")
  for _ in $(seq 100); do
    curl -fsS "$PC_SUT_API/healthz" >/dev/null 2>&1 && break
    sleep 0.1
  done
  spawn_proxy "$SUT_DIR/proxy.log" "$PC_BIN/portcullis-proxy" \
    --control-socket "$SUT_DIR/var/control.sock" --workers 1 --log-level warn
}

_pc_sut_tg() { # BACKEND_PORT
  jq -n --argjson p "$1" \
    '{name:"origin", protocol:"tcp", targets:[{host:"127.0.0.1", port:$p}]}' >"$SUT_DIR/tg.json"
  _pc_sut_api POST /v1/target-groups "$SUT_DIR/tg.json"
}

start_sut_offload() { # PORT BACKEND_PORT CERT KEY
  _pc_sut_start
  jq -n --rawfile c "$3" --rawfile k "$4" '{name:"bench", certificate:$c, private_key:$k}' \
    >"$SUT_DIR/cert.json"
  _pc_sut_api POST /v1/certificates "$SUT_DIR/cert.json" || return 1
  _pc_sut_tg "$2" || return 1
  jq -n --argjson p "$1" --argjson m "${MAXCONN:-8000}" \
    '{name:"offload", bind:"127.0.0.1", port:$p, protocol:"tls", default_target_group_id:"origin",
      certificate_ids:["bench"], max_connections:$m, idle_timeout_ms:300000}' >"$SUT_DIR/lsn.json"
  _pc_sut_api POST /v1/listeners "$SUT_DIR/lsn.json" || return 1
  wait_port "$1"
}

start_sut_passthrough() { # PORT BACKEND_PORT
  _pc_sut_start
  _pc_sut_tg "$2" || return 1
  jq -n --argjson p "$1" --argjson m "${MAXCONN:-8000}" \
    '{name:"relay", bind:"127.0.0.1", port:$p, protocol:"tcp", default_target_group_id:"origin",
      max_connections:$m, idle_timeout_ms:300000}' >"$SUT_DIR/lsn.json"
  _pc_sut_api POST /v1/listeners "$SUT_DIR/lsn.json" || return 1
  wait_port "$1"
}

rotate_sut_cert() { # NEW_CERT NEW_KEY
  jq -n --rawfile c "$1" --rawfile k "$2" '{certificate:$c, private_key:$k}' >"$SUT_DIR/rot.json"
  _pc_sut_api PUT /v1/certificates/bench "$SUT_DIR/rot.json"
}
