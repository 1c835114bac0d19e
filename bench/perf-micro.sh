#!/usr/bin/env bash
# bench/perf-micro.sh - Portcullis proxy CPU per unit of work, for
# before/after comparisons of data-plane changes (bench/PERF-NOTES.md).
#
# Unlike anchors.sh's whole-core figures, this charges the proxy only with
# its own CPU: utime+stime of portcullis-proxy from /proc/<pid>/stat around
# each workload, divided by the work done. That stays comparable while other
# processes share the machine. Loopback only; every process started here is
# stopped by pid on exit; every load is bounded in time.
#
# Usage: bench/perf-micro.sh [W1 W2 W3 W4 W4I W5]   (default: W1-W5; W4I = iperf3)
# Env:   PC_BIN (default build/bin), CERT=ec|rsa (default ec), BIG_MB=256,
#        ANCHORS (for the hsload and idle.py sources), W2_DUR=5, W1_DUR=5
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${PC_BIN:-$ROOT/build/bin}
ANCHORS=${ANCHORS:-$ROOT/../shared/bench/anchors.sh}
CERT=${CERT:-ec}
BIG_MB=${BIG_MB:-256}
W1_DUR=${W1_DUR:-5}
W2_DUR=${W2_DUR:-5}
WL=${*:-W1 W2 W3 W4 W5}
PROXY_CPU=${PROXY_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
CLK=$(getconf CLK_TCK)

WORK=$(mktemp -d /tmp/pcmicro.XXXXXX)
PIDS=()
cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
die() { echo "perf-micro: $*" >&2; exit 1; }
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_port() { for _ in $(seq 200); do port_open "$1" && return 0; sleep 0.05; done; return 1; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

ulimit -n "$(ulimit -Hn)" 2>/dev/null

# Tools from anchors.sh, so the clients are the very ones the anchors use.
[ -f "$ANCHORS" ] || die "$ANCHORS not found (set ANCHORS=)"
sed -n "/cat >\"\$WORK\/hsload.c\" <<'EOF'/,/^EOF\$/p" "$ANCHORS" | sed '1d;$d' >"$WORK/hsload.c"
sed -n "/cat >\"\$WORK\/idle.py\" <<'EOF'/,/^EOF\$/p" "$ANCHORS" | sed '1d;$d' >"$WORK/idle.py"
gcc -O2 -o "$WORK/hsload" "$WORK/hsload.c" -lgnutls || die "cannot build hsload"

# Origin: nginx on the load core, plain HTTP.
BE=$(free_port)
head -c $((BIG_MB << 20)) /dev/zero >"$WORK/big"
NGX_MODDIR=$(nginx -V 2>&1 | tr ' ' '\n' | sed -n 's/^--modules-path=//p')
mkdir -p "$WORK/ngx"
cat >"$WORK/ngx/nginx.conf" <<EOF
user root; daemon off; master_process off; worker_processes 1;
worker_rlimit_nofile 20000;
pid $WORK/ngx/nginx.pid; error_log $WORK/ngx/error.log warn;
events { worker_connections 8000; }
http {
  access_log off; keepalive_timeout 300s; keepalive_requests 1000000;
  client_body_temp_path $WORK/ngx/cb; proxy_temp_path $WORK/ngx/pt; fastcgi_temp_path $WORK/ngx/ft;
  uwsgi_temp_path $WORK/ngx/ut; scgi_temp_path $WORK/ngx/st;
  default_type text/plain; sendfile on; tcp_nopush on;
  server {
    listen 127.0.0.1:$BE backlog=4096;
    location = /big { alias $WORK/big; default_type application/octet-stream; }
    location / { return 200 "ok\n"; }
  }
}
EOF
taskset -c "$LOAD_CPU" nginx -p "$WORK/ngx/" -c "$WORK/ngx/nginx.conf" -e "$WORK/ngx/error.log" \
  >"$WORK/ngx/stdout.log" 2>&1 &
PIDS+=("$!")
wait_port "$BE" || die "origin nginx did not start"

# Portcullis, configured through the API.
API_PORT=$(free_port)
TOKEN=micro-$RANDOM$RANDOM
API=http://127.0.0.1:$API_PORT
mkdir -p "$WORK/var"
PORTCULLIS_ADMIN_TOKEN=$TOKEN taskset -c "$LOAD_CPU" "$BIN/portcullisd" --data-dir "$WORK/var" \
  --api-listen "127.0.0.1:$API_PORT" --log-level warn >"$WORK/cp.log" 2>&1 &
PIDS+=("$!")
for _ in $(seq 100); do curl -fsS "$API/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
taskset -c "$PROXY_CPU" ${PROXY_WRAP:-} "$BIN/portcullis-proxy" --control-socket "$WORK/var/control.sock" \
  --workers 1 --log-level warn >"$WORK/proxy.log" 2>&1 &
PROXY=$!
PIDS+=("$PROXY")
api() { # METHOD PATH JSON
  curl -fsS --max-time 30 -o /dev/null -X "$1" -H "Authorization: Bearer $TOKEN" \
    -H 'Content-Type: application/json' --data-binary "$3" "$API$2" || die "API $1 $2 failed"
}
case $CERT in
  rsa) alg=(-newkey rsa:2048) ;;
  *) alg=(-newkey ec -pkeyopt ec_paramgen_curve:P-256) ;;
esac
openssl req -x509 "${alg[@]}" -nodes -keyout "$WORK/k.pem" -out "$WORK/c.pem" -days 2 \
  -subj /CN=lb.test -addext subjectAltName=DNS:lb.test 2>/dev/null || die "openssl req"
api POST /v1/certificates "$(jq -n --rawfile c "$WORK/c.pem" --rawfile k "$WORK/k.pem" \
  '{name:"bench", certificate:$c, private_key:$k}')"
api POST /v1/target-groups "$(jq -n --argjson p "$BE" \
  '{name:"origin", protocol:"tcp", targets:[{host:"127.0.0.1", port:$p}]}')"
OFF=$(free_port)
PASS=$(free_port)
api POST /v1/listeners "$(jq -n --argjson p "$OFF" '{name:"offload", bind:"127.0.0.1", port:$p,
  protocol:"tls", default_target_group_id:"origin", certificate_ids:["bench"],
  max_connections:8000, idle_timeout_ms:300000}')"
api POST /v1/listeners "$(jq -n --argjson p "$PASS" '{name:"relay", bind:"127.0.0.1", port:$p,
  protocol:"tcp", default_target_group_id:"origin", max_connections:8000, idle_timeout_ms:300000}')"
IPERF_BE=$(free_port)
IPERF=$(free_port)
taskset -c "$LOAD_CPU" iperf3 -s -B 127.0.0.1 -p "$IPERF_BE" >"$WORK/iperf3-s.log" 2>&1 &
PIDS+=("$!")
api POST /v1/target-groups "$(jq -n --argjson p "$IPERF_BE" \
  '{name:"iperf", protocol:"tcp", targets:[{host:"127.0.0.1", port:$p}]}')"
api POST /v1/listeners "$(jq -n --argjson p "$IPERF" '{name:"iperf", bind:"127.0.0.1", port:$p,
  protocol:"tcp", default_target_group_id:"iperf", max_connections:100, idle_timeout_ms:300000}')"
wait_port "$IPERF_BE" && wait_port "$IPERF" && wait_port "$OFF" && wait_port "$PASS" || die "listeners not up: $(tail -5 "$WORK/proxy.log")"
sleep 0.5

ticks() { awk '{print $14 + $15}' "/proc/$PROXY/stat"; }
ms_since() { echo $(( ($(ticks) - $1) * 1000 / CLK )); }
out() { printf '%-4s %-40s %s\n' "$1" "$2" "$3"; }

# PERF_RECORD=file: sample the proxy (software cpu-clock) during the run.
if [ -n "${PERF_RECORD:-}" ]; then
  perf record -e cpu-clock -g -p "$PROXY" -o "$PERF_RECORD" >/dev/null 2>&1 &
  PERF_PID=$!
fi
for w in $WL; do
  case $w in
    W1)
      t0=$(ticks)
      r=$(taskset -c "$LOAD_CPU" "$WORK/hsload" -p "$OFF" -c 16 -d "$W1_DUR" -n 400000)
      ms=$(ms_since "$t0")
      ok=$(sed -n 's/.*ok=\([0-9]*\).*/\1/p' <<<"$r")
      out W1 "proxy us/full handshake ($CERT)" "$(awk -v m="$ms" -v n="$ok" 'BEGIN{printf "%.0f", n ? m*1000/n : 0}') (n=$ok, $r)"
      ;;
    W2)
      t0=$(ticks)
      r=$(taskset -c "$LOAD_CPU" wrk -t1 -c50 -d"${W2_DUR}s" "https://127.0.0.1:$OFF/")
      ms=$(ms_since "$t0")
      n=$(sed -n 's/^ *\([0-9]*\) requests in.*/\1/p' <<<"$r")
      out W2 "proxy us/keep-alive request" "$(awk -v m="$ms" -v n="$n" 'BEGIN{printf "%.1f", n ? m*1000/n : 0}') (n=$n)"
      ;;
    W3 | W4)
      if [ "$w" = W3 ]; then url=https://127.0.0.1:$OFF/big; else url=http://127.0.0.1:$PASS/big; fi
      t0=$(ticks)
      bytes=0
      for _ in 1 2 3; do
        b=$(taskset -c "$LOAD_CPU" curl -sk --max-time 120 -o /dev/null -w '%{size_download}' "$url")
        bytes=$((bytes + b))
      done
      ms=$(ms_since "$t0")
      out "$w" "proxy ms/GiB ($([ "$w" = W3 ] && echo offload || echo pass-through))" \
        "$(awk -v m="$ms" -v b="$bytes" 'BEGIN{printf "%.0f", b ? m*1073741824/b : 0}') (bytes=$bytes)"
      ;;
    W4I)
      t0=$(ticks)
      r=$(taskset -c "$LOAD_CPU" iperf3 -c 127.0.0.1 -p "$IPERF" -t 5 -J)
      ms=$(ms_since "$t0")
      bytes=$(jq '.end.sum_received.bytes' <<<"$r")
      out W4I "proxy ms/GiB (iperf3 pass-through)" \
        "$(awk -v m="$ms" -v b="$bytes" 'BEGIN{printf "%.0f", b ? m*1073741824/b : 0}') (bytes=$bytes)"
      ;;
    W5P)
      r=$(taskset -c "$LOAD_CPU" python3 /tmp/idle_plain.py "$PASS" 2000 "$PROXY" 2>&1 | tail -1)
      out W5P "KB RSS per idle plain conn" "$r"
      ;;
    HOLD)
      taskset -c "$LOAD_CPU" python3 /tmp/idle_hold.py "$OFF" 500
      ;;
    W5)
      r=$(taskset -c "$LOAD_CPU" python3 "$WORK/idle.py" "$OFF" 2000 "$PROXY" 90 2>&1 | tail -1)
      out W5 "KB RSS per idle TLS conn" "$r"
      ;;
  esac
done
if [ -n "${PERF_RECORD:-}" ]; then kill -INT "$PERF_PID"; wait "$PERF_PID" 2>/dev/null; fi
