#!/usr/bin/env bash
# bench/scale.sh - issue 9 point 3: Portcullis with many certificates and
# listeners, configured only through the REST API.
#
#   1. mint SCALE_CERTS ECDSA P-256 certificates (tests/tools/pc_mkcerts);
#   2. start portcullisd (core LOAD_CPU) and portcullis-proxy --workers 1
#      (core PROXY_CPU) on loopback with a fresh data dir; read the proxy's
#      RSS with no configuration;
#   3. import the certificates, one target group and SCALE_LISTENERS TLS
#      listeners (each with its share of the certificates: the first is the
#      default, SNI selects the others) over one keep-alive connection;
#      read the proxy's RSS;
#   4. rotate one certificate SCALE_ROTATIONS times (PUT), timing each call
#      (the response comes after the proxy's ACK), then check with
#      openssl s_client that its name gets the new certificate;
#   5. rotate it SCALE_STRACE_ROTATIONS more times under strace and count
#      the bytes portcullisd writes on the control socket;
#   6. kill -9 the proxy, start a fresh one and time until it has applied
#      the configuration and a sample of SCALE_SAMPLE names (plus the last
#      one and the rotated one) answers with the right certificate;
#   7. optionally (SCALE_HAPROXY=1, default when haproxy is installed) start
#      HAProxy with the same certificates in a crt-list, for side by side.
# Prints a table; writes table.txt, *.json, env.txt and logs under
# OUT_DIR (default ./bench-runs/scale-<UTC stamp>/). Loopback only; every
# process started here is stopped by pid on exit.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PC_BIN=${PC_BIN:-$ROOT/build-scale/bin}
DRIVER=$ROOT/bench/scale/driver.py
SCALE_CERTS=${SCALE_CERTS:-10000}
SCALE_LISTENERS=${SCALE_LISTENERS:-1000}
SCALE_ROTATIONS=${SCALE_ROTATIONS:-100}
SCALE_STRACE_ROTATIONS=${SCALE_STRACE_ROTATIONS:-10}
SCALE_SAMPLE=${SCALE_SAMPLE:-200}
SCALE_ROT_INDEX=${SCALE_ROT_INDEX:-5}       # rotate h<this>.scale.test
SCALE_PORT_BASE=${SCALE_PORT_BASE:-20000}
SCALE_MAX_SECONDS=${SCALE_MAX_SECONDS:-3000} # bound of each API phase
PROXY_CPU=${PROXY_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
if [ -z "${SCALE_HAPROXY:-}" ]; then
  command -v haproxy >/dev/null 2>&1 && SCALE_HAPROXY=1 || SCALE_HAPROXY=0
fi
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
OUT_DIR=${OUT_DIR:-./bench-runs/scale-$STAMP}

for t in python3 openssl curl taskset strace; do
  command -v "$t" >/dev/null 2>&1 || { echo "scale: $t is required" >&2; exit 1; }
done
for b in portcullisd portcullis-proxy pc_mkcerts; do
  [ -x "$PC_BIN/$b" ] || {
    echo "scale: $PC_BIN/$b missing; build it:" >&2
    echo "  cmake -S $ROOT -B $ROOT/build-scale -DCMAKE_BUILD_TYPE=RelWithDebInfo &&" \
      "cmake --build $ROOT/build-scale -j2 --target portcullisd portcullis-proxy pc_mkcerts" >&2
    exit 1
  }
done
if [ "$SCALE_LISTENERS" -lt 1 ] || [ "$SCALE_CERTS" -lt "$SCALE_LISTENERS" ] ||
   [ "$SCALE_ROT_INDEX" -gt "$SCALE_CERTS" ] || [ "$SCALE_ROTATIONS" -lt 1 ]; then
  echo "scale: need 1 <= SCALE_LISTENERS <= SCALE_CERTS, SCALE_ROT_INDEX <= SCALE_CERTS, SCALE_ROTATIONS >= 1" >&2
  exit 1
fi
# One socket per listener, plus the control plane's own.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
[ "$(ulimit -n)" -gt $((SCALE_LISTENERS + 200)) ] ||
  { echo "scale: open-file limit $(ulimit -n) too low for $SCALE_LISTENERS listeners" >&2; exit 1; }

mkdir -p "$OUT_DIR"
OUT_DIR=$(cd "$OUT_DIR" && pwd)
WORK=$(mktemp -d /tmp/pc-scale.XXXXXX) # keys live here: removed on exit
PIDS=()

cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  done
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say() { printf 'scale: %s\n' "$*" | tee -a "$OUT_DIR/log.txt" >&2; }
now() { date +%s.%N; }
drv() { taskset -c "$LOAD_CPU" python3 "$DRIVER" "$@"; }
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
wait_port() { # PORT SECONDS
  for _ in $(seq $(($2 * 10))); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}
api() { # METHOD PATH -> body on stdout
  curl -sS --max-time 30 -X "$1" -H "Authorization: Bearer $TOKEN" "$API$2"
}
node_state() { # NODE -> "connected applied_version config_version"
  api GET /v1/status | python3 -c '
import json, sys
s = json.load(sys.stdin)
d = [x for x in s.get("dataplanes", []) if x.get("id") == sys.argv[1]]
print(int(bool(d and d[0].get("connected"))), d[0].get("applied_version") if d else -1,
      s.get("config_version"))' "$1"
}
wait_applied() { # NODE SECONDS: until connected and applied == config version
  local c av cv
  for _ in $(seq $(($2 * 10))); do
    read -r c av cv < <(node_state "$1" 2>/dev/null || echo "0 x y")
    [ "$c" = 1 ] && [ "$av" = "$cv" ] && return 0
    sleep 0.1
  done
  return 1
}
rss() { python3 "$DRIVER" rss "$1"; }
start_proxy() { # NODE
  taskset -c "$PROXY_CPU" "$PC_BIN/portcullis-proxy" --control-socket "$WORK/var/control.sock" \
    --workers 1 --node-id "$1" --log-level warn >>"$OUT_DIR/proxy-$1.log" 2>&1 &
  PROXY_PID=$!
  PIDS+=("$PROXY_PID")
}
cert_fp() { openssl x509 -noout -fingerprint -sha256 | sed 's/.*=//; s/://g'; }

{
  echo "date: $(date -u +%FT%TZ)"
  echo "host: $(uname -srm), $(nproc) cpus, $(awk '/MemTotal/ {print $2 " kB"}' /proc/meminfo)"
  echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "git: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')"
  echo "openssl: $(openssl version)"
  echo "counts: certs=$SCALE_CERTS listeners=$SCALE_LISTENERS rotations=$SCALE_ROTATIONS" \
    "strace_rotations=$SCALE_STRACE_ROTATIONS sample=$SCALE_SAMPLE"
  echo "pinning: proxy on core $PROXY_CPU; portcullisd, clients, backend on core $LOAD_CPU"
} >"$OUT_DIR/env.txt"
cat "$OUT_DIR/env.txt" >&2

# ---- 1. certificates ----
say "minting $SCALE_CERTS certificates (+$((SCALE_ROTATIONS + SCALE_STRACE_ROTATIONS)) rotation bodies)"
taskset -c "$LOAD_CPU" "$PC_BIN/pc_mkcerts" -n "$SCALE_CERTS" -o "$WORK/certs.jsonl" -c "$WORK/ca.pem" \
  -r $((SCALE_ROTATIONS + SCALE_STRACE_ROTATIONS)) -i "$SCALE_ROT_INDEX" -R "$WORK/rot.jsonl" \
  2>&1 | tee -a "$OUT_DIR/log.txt" >&2

# ---- 2. daemons ----
PORTS=$(python3 "$DRIVER" ports --base "$SCALE_PORT_BASE" --count "$SCALE_LISTENERS")
PORT_BASE=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["base"])' "$PORTS")
say "listener ports 127.0.0.1:$PORT_BASE..$((PORT_BASE + SCALE_LISTENERS - 1)) are free"
BACKEND_PORT=$(free_port)
taskset -c "$LOAD_CPU" python3 -m http.server --bind 127.0.0.1 "$BACKEND_PORT" \
  >"$OUT_DIR/backend.log" 2>&1 &
PIDS+=("$!")
API_PORT=$(free_port)
API=http://127.0.0.1:$API_PORT
TOKEN=scale-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
mkdir -p "$WORK/var"
PORTCULLIS_ADMIN_TOKEN=$TOKEN taskset -c "$LOAD_CPU" "$PC_BIN/portcullisd" --data-dir "$WORK/var" \
  --api-listen "127.0.0.1:$API_PORT" --log-level warn >"$OUT_DIR/portcullisd.log" 2>&1 &
CP_PID=$!
PIDS+=("$CP_PID")
wait_port "$API_PORT" 30 || { say "portcullisd did not start"; exit 1; }
start_proxy scale-1
wait_applied scale-1 30 || { say "proxy did not connect"; exit 1; }
sleep 1
BASE_RSS=$(rss "$PROXY_PID")
say "proxy connected; RSS with no configuration: $BASE_RSS KiB"

# ---- 3. load ----
say "importing $SCALE_CERTS certificates and $SCALE_LISTENERS listeners"
drv load --api "$API" --token "$TOKEN" --certs "$WORK/certs.jsonl" --listeners "$SCALE_LISTENERS" \
  --per $((SCALE_CERTS / SCALE_LISTENERS)) --port-base "$PORT_BASE" --backend-port "$BACKEND_PORT" \
  --map-out "$WORK/map.json" --max-seconds "$SCALE_MAX_SECONDS" >"$OUT_DIR/load.json" \
  2> >(tee -a "$OUT_DIR/log.txt" >&2)
wait_applied scale-1 120 || { say "proxy did not apply the loaded configuration"; exit 1; }
sleep 1
LOADED_RSS=$(rss "$PROXY_PID")
say "loaded: $(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["certs_seconds"], "s certificates,", d["listeners_seconds"], "s listeners")' "$OUT_DIR/load.json"); proxy RSS $LOADED_RSS KiB"
cp "$WORK/map.json" "$OUT_DIR/map.json"

# ---- 4. rotations, timed ----
ROT_NAME=h$SCALE_ROT_INDEX.scale.test
read -r ROT_ID ROT_PORT < <(python3 -c 'import json,sys; w=json.load(open(sys.argv[1]))[sys.argv[2]]; print(w["id"], w["port"])' \
  "$WORK/map.json" "$ROT_NAME")
say "rotating $ROT_NAME ($ROT_ID, listener port $ROT_PORT) $SCALE_ROTATIONS times"
drv rotate --api "$API" --token "$TOKEN" --id "$ROT_ID" --bodies "$WORK/rot.jsonl" \
  --count "$SCALE_ROTATIONS" --last-out "$WORK/rot-last.pem" --max-seconds "$SCALE_MAX_SECONDS" \
  >"$OUT_DIR/rotate.json"
WANT=$(cert_fp <"$WORK/rot-last.pem")
GOT=$(timeout 10 openssl s_client -connect "127.0.0.1:$ROT_PORT" -servername "$ROT_NAME" \
  </dev/null 2>/dev/null | cert_fp || true)
if [ -n "$WANT" ] && [ "$WANT" = "$GOT" ]; then VERIFIED=yes; else VERIFIED="NO (got ${GOT:-nothing})"; fi
say "after the last rotation, openssl s_client -servername $ROT_NAME: new certificate: $VERIFIED"

# ---- 5. control-socket bytes per rotation ----
# The publisher writes frames with send(2) on the accepted control socket;
# strace -yy names the socket's path, so only those writes are counted.
# -s 0: no buffer contents (the frames carry private keys) in the trace.
say "rotating $SCALE_STRACE_ROTATIONS more times under strace"
strace -f -qq -yy -s 0 -e trace=write,writev,sendmsg,sendto -o "$WORK/strace.txt" -p "$CP_PID" &
STRACE_PID=$!
PIDS+=("$STRACE_PID")
sleep 2
drv rotate --api "$API" --token "$TOKEN" --id "$ROT_ID" --bodies "$WORK/rot.jsonl" \
  --skip "$SCALE_ROTATIONS" --count "$SCALE_STRACE_ROTATIONS" --last-out "$WORK/rot-last.pem" \
  --max-seconds "$SCALE_MAX_SECONDS" >"$OUT_DIR/rotate_strace.json"
sleep 1
kill -INT "$STRACE_PID" 2>/dev/null || true
wait "$STRACE_PID" 2>/dev/null || true
python3 "$DRIVER" strace --file "$WORK/strace.txt" --path "$WORK/var/control.sock" \
  --rotations "$SCALE_STRACE_ROTATIONS" >"$OUT_DIR/strace.json"
# A certificate frame, for scale: the JSON body of one rotation (cert+key PEM).
FRAME_EST=$(head -n1 "$WORK/rot.jsonl" | wc -c)
say "control socket: $(cat "$OUT_DIR/strace.json")"

# ---- 6. a fresh proxy ----
say "kill -9 the proxy; a fresh one must serve every name again"
kill -KILL "$PROXY_PID"
wait "$PROXY_PID" 2>/dev/null || true
T0=$(now)
start_proxy scale-2
drv serve --api "$API" --token "$TOKEN" --map "$WORK/map.json" --certs "$WORK/certs.jsonl" \
  --node scale-2 --t0 "$T0" --sample "$SCALE_SAMPLE" --override "$ROT_NAME=$WORK/rot-last.pem" \
  --max-seconds 300 >"$OUT_DIR/serve.json" || say "serve check FAILED: $(cat "$OUT_DIR/serve.json")"
sleep 1
FRESH_RSS=$(rss "$PROXY_PID")
kill -TERM "$PROXY_PID" 2>/dev/null || true
printf '{"baseline_kib": %s, "loaded_kib": %s, "fresh_kib": %s}\n' "$BASE_RSS" "$LOADED_RSS" \
  "$FRESH_RSS" >"$OUT_DIR/rss.json"
printf '{"rotation_verified": "%s", "cert_frame_estimate": %s}\n' "$VERIFIED" "$FRAME_EST" \
  >"$OUT_DIR/meta.json"

# ---- 7. HAProxy, side by side ----
if [ "$SCALE_HAPROXY" = 1 ]; then
  say "HAProxy: crt-list with $SCALE_CERTS certificates"
  mkdir -p "$WORK/ha/certs"
  python3 - "$WORK/certs.jsonl" "$WORK/ha" <<'EOF'
import json, os, sys
src, d = sys.argv[1], sys.argv[2]
with open(src) as f, open(os.path.join(d, "crt-list"), "w") as cl:
    for line in f:
        b = json.loads(line)
        p = os.path.join(d, "certs", b["name"] + ".pem")
        with open(p, "w") as o:
            o.write(b["certificate"] + b["private_key"])
        cl.write("%s %s\n" % (p, b["name"]))
EOF
  HA_PORT=$(free_port)
  cat >"$WORK/ha/haproxy.cfg" <<EOF
global
  nbthread 1
  maxconn 8000
defaults
  mode http
  timeout connect 5s
  timeout client 300s
  timeout server 300s
frontend fe
  bind 127.0.0.1:$HA_PORT ssl crt-list $WORK/ha/crt-list
  default_backend be
backend be
  server s1 127.0.0.1:$BACKEND_PORT
EOF
  HT0=$(now)
  taskset -c "$PROXY_CPU" haproxy -db -f "$WORK/ha/haproxy.cfg" >"$OUT_DIR/haproxy.log" 2>&1 &
  HA_PID=$!
  PIDS+=("$HA_PID")
  if wait_port "$HA_PORT" 300; then
    HT1=$(now)
    sleep 1
    printf '{"certificates": %s, "start_s": %.2f, "rss_kib": %s}\n' "$SCALE_CERTS" \
      "$(python3 -c 'import sys; print(float(sys.argv[2]) - float(sys.argv[1]))' "$HT0" "$HT1")" "$(rss "$HA_PID")" >"$OUT_DIR/haproxy.json"
  else
    say "haproxy did not listen within 300 s"
  fi
  kill -TERM "$HA_PID" 2>/dev/null || true
fi

echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$OUT_DIR/env.txt"
echo
python3 "$DRIVER" report --dir "$OUT_DIR"
echo "scale: results in $OUT_DIR" >&2
