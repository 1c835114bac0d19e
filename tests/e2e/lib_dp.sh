# lib_dp.sh - data-plane e2e helpers, sourced after lib.sh (and certs.sh):
# a fake control plane (fake_cp.py), small python backends and clients.
#
#   dp_write_conf '{"target_groups": [...], "listeners": [...]}'
#   dp_start_cp; dp_start_dp; dp_wait_ack 1
#   dp_backend echo PORT          # also: sha, gen, name, hold, noaccept
#   dp_tool sha-upload PORT BYTES # prints the sha256 the backend answered
#   dp_push                       # SIGHUP: next version; dp_wait_ack N

DP_CONF=$PC_TMP/cp.json
DP_TOOL=$PC_TMP/dp_tool.py
PC_SOCK=${PC_SOCK:-$PC_TMP/control.sock}
DP_VERSION=1

# dp_ports N: N distinct free loopback ports (held together while chosen,
# so no two are the same), one per line.
dp_ports() {
  python3 -c 'import socket,sys
ss=[socket.socket() for _ in range(int(sys.argv[1]))]
for s in ss: s.bind(("127.0.0.1",0))
print("\n".join(str(s.getsockname()[1]) for s in ss))' "$1"
}

dp_write_conf() { printf '%s\n' "$1" >"$DP_CONF"; }

# dp_start_cp [ARGS]: the fake control plane on $PC_SOCK serving $DP_CONF.
dp_start_cp() {
  DP_CP_LOG=$PC_TMP/fake_cp${DP_CP_N:-}.log
  DP_CP_N=$((${DP_CP_N:-0} + 1))
  pc_spawn "$DP_CP_LOG" python3 -u "$PC_SRC_DIR/tests/e2e/fake_cp.py" --socket "$PC_SOCK" \
    --config "$DP_CONF" --version "$DP_VERSION" "$@"
  DP_CP_PID=$PC_LAST_PID
  pc_wait_for 10 grep -q 'listening on' "$DP_CP_LOG" || pc_fail "fake control plane did not start"
}

# dp_start_dp [ARGS]: the proxy (PC_WORKERS workers, default 2).
dp_start_dp() { PORTCULLIS_GRACE_MS=${PORTCULLIS_GRACE_MS:-2000} pc_start_proxy "$@"; }

# dp_wait_ack VERSION [SECONDS]: the fake control plane logged "ack VERSION".
dp_wait_ack() {
  pc_wait_for "${2:-15}" grep -q "ack $1\$" "$DP_CP_LOG" \
    || pc_fail "no ack for version $1"
}

# dp_wait_nack VERSION: "nack VERSION: ..." logged; prints the reason.
dp_wait_nack() {
  pc_wait_for "${2:-15}" grep -q "nack $1:" "$DP_CP_LOG" || pc_fail "no nack for version $1"
  grep "nack $1:" "$DP_CP_LOG" | tail -1 | sed 's/.*nack [0-9]*: //'
}

# dp_push: re-read $DP_CONF and send it as the next version.
dp_push() {
  DP_VERSION=$((DP_VERSION + 1))
  kill -HUP "$DP_CP_PID"
  pc_wait_for 10 grep -q "sent snapshot $DP_VERSION\$" "$DP_CP_LOG" || pc_fail "snapshot $DP_VERSION not sent"
}

# dp_count PATTERN: lines of the proxy log matching PATTERN.
dp_count() { grep -c -- "$1" "$PC_DP_LOG" || true; }

# dp_backend KIND PORT [ARG]: a python backend on 127.0.0.1:PORT.
#   echo: echo bytes, half-close after EOF      sha: read to EOF, answer sha256
#   gen N: send N pseudo-random bytes, close    name NAME: send "NAME\n", then echo
#   hold: accept, never read                    noaccept: listen(backlog 0), never accept
#   lsha: read an 8-byte length L then L bytes, answer their sha256
dp_backend() {
  pc_spawn "$PC_TMP/backend-$2.log" python3 -u "$DP_TOOL" backend "$@"
  pc_wait_for 10 grep -q ready "$PC_TMP/backend-$2.log" || pc_fail "backend $1 on $2 did not start"
}

# dp_tool ARGS: run a client of dp_tool.py (see its usage).
dp_tool() { timeout "${DP_TOOL_TIMEOUT:-60}" python3 "$DP_TOOL" "$@"; }

cat >"$DP_TOOL" <<'PY'
import hashlib, os, socket, ssl, struct, sys, threading, time

def gen_block():
    b = b""
    seed = b"portcullis"
    while len(b) < 1 << 20:
        seed = hashlib.sha256(seed).digest()
        b += seed * 64
    return b[:1 << 20]

def gen_stream(n):
    blk = gen_block()
    while n > 0:
        k = min(n, len(blk))
        yield blk[:k]
        n -= k

def serve(kind, port, arg):
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", port))
    if kind == "noaccept":
        ls.listen(0)
        print("ready", flush=True)
        # Fill the accept queue ourselves so further SYNs are dropped.
        fill = []
        for _ in range(4):
            s = socket.socket()
            s.setblocking(False)
            try:
                s.connect(("127.0.0.1", port))
            except BlockingIOError:
                pass
            fill.append(s)
        while True:
            time.sleep(3600)
    ls.listen(128)
    print("ready", flush=True)
    held = []
    while True:
        c, _ = ls.accept()
        if kind == "hold":
            c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            held.append(c)
            continue
        threading.Thread(target=handle, args=(kind, c, arg), daemon=True).start()

def recv_exact(c, n):
    h = hashlib.sha256()
    while n > 0:
        d = c.recv(min(n, 1 << 16))
        if not d:
            break
        h.update(d)
        n -= len(d)
    return h

def handle(kind, c, arg):
    try:
        if kind == "name":
            c.sendall((arg + "\n").encode())
            kind = "echo"
        if kind == "echo":
            while True:
                d = c.recv(1 << 16)
                if not d:
                    c.shutdown(socket.SHUT_WR)
                    break
                c.sendall(d)
        elif kind == "sha":
            h = hashlib.sha256()
            while True:
                d = c.recv(1 << 16)
                if not d:
                    break
                h.update(d)
            c.sendall((h.hexdigest() + "\n").encode())
            c.shutdown(socket.SHUT_WR)
        elif kind == "lsha":
            n = struct.unpack(">Q", recv_exact_raw(c, 8))[0]
            c.sendall((recv_exact(c, n).hexdigest() + "\n").encode())
        elif kind == "gen":
            for b in gen_stream(int(arg)):
                c.sendall(b)
            c.shutdown(socket.SHUT_WR)
            while c.recv(65536):
                pass
    except OSError:
        pass
    finally:
        c.close()

def recv_exact_raw(c, n):
    b = b""
    while len(b) < n:
        d = c.recv(n - len(b))
        if not d:
            raise OSError("eof")
        b += d
    return b

def connect(port, tls=False, sni=None, ca=None):
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    if tls:
        ctx = ssl.create_default_context(cafile=ca) if ca else ssl._create_unverified_context()
        if not ca:
            ctx.check_hostname = False
        s = ctx.wrap_socket(s, server_hostname=sni)
    return s

def read_all(s):
    b = b""
    while True:
        try:
            d = s.recv(1 << 16)
        except (ssl.SSLZeroReturnError, ConnectionResetError):
            break
        if not d:
            break
        b += d
    return b

def ext(t, body):
    return struct.pack(">HH", t, len(body)) + body

def client_hello(sni, pad=0):
    sn = b""
    if sni:
        n = sni.encode()
        sn = ext(0, struct.pack(">HBH", len(n) + 3, 0, len(n)) + n)
    exts = sn + ext(10, struct.pack(">HHH", 4, 0x001d, 0x0017))
    if pad:
        exts += ext(21, b"\0" * pad)
    body = b"\x03\x03" + os.urandom(32) + b"\x20" + os.urandom(32)
    body += struct.pack(">H", 4) + b"\x13\x01\x13\x02" + b"\x01\x00"
    body += struct.pack(">H", len(exts)) + exts
    hs = b"\x01" + struct.pack(">I", len(body))[1:] + body
    return hs

def records(hs, size):
    out = b""
    for i in range(0, len(hs), size):
        frag = hs[i:i + size]
        out += b"\x16\x03\x01" + struct.pack(">H", len(frag)) + frag
    return out

def main():
    cmd = sys.argv[1]
    if cmd == "backend":
        serve(sys.argv[2], int(sys.argv[3]), sys.argv[4] if len(sys.argv) > 4 else "")
    elif cmd == "sha-upload":      # PORT BYTES [tls]: send, half-close, print answer
        port, n = int(sys.argv[2]), int(sys.argv[3])
        tls = len(sys.argv) > 4 and sys.argv[4] == "tls"
        s = connect(port, tls)
        if tls:
            s.sendall(struct.pack(">Q", n))
        for b in gen_stream(n):
            s.sendall(b)
        if not tls:
            s.shutdown(socket.SHUT_WR)
        print(read_all(s).decode().strip())
    elif cmd == "gen-sha":         # BYTES: the sha256 of what 'gen' sends
        h = hashlib.sha256()
        for b in gen_stream(int(sys.argv[2])):
            h.update(b)
        print(h.hexdigest())
    elif cmd == "download":        # PORT [tls]: sha256 and length of everything read
        tls = len(sys.argv) > 3 and sys.argv[3] == "tls"
        s = connect(int(sys.argv[2]), tls)
        h, n = hashlib.sha256(), 0
        while True:
            try:
                d = s.recv(1 << 16)
            except ssl.SSLZeroReturnError:
                break
            if not d:
                break
            h.update(d)
            n += len(d)
        print(h.hexdigest(), n)
    elif cmd == "half-close":      # PORT: send, shut write, expect the echo back in full
        s = connect(int(sys.argv[2]))
        msg = b"half-close payload " * 1000
        s.sendall(msg)
        s.shutdown(socket.SHUT_WR)
        got = read_all(s)
        print("ok" if got == msg else "mismatch %d/%d" % (len(got), len(msg)))
    elif cmd == "hello":           # PORT SNI PAD RECSIZE SEGMENT: send a ClientHello, print first line back, check echo
        port, sni, pad, rec, seg = int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
        data = records(client_hello(sni if sni != "-" else None, pad), rec)
        s = connect(port)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for i in range(0, len(data), seg):
            s.sendall(data[i:i + seg])
            if seg < 16:
                time.sleep(0.0005)
        f = s.makefile("rb")
        name = f.readline().decode().strip()
        echo = f.read(len(data))
        print(name, "echo-ok" if echo == data else "echo-bad", len(data))
    elif cmd == "raw":             # PORT TEXT [shut]: send bytes (then half-close), print what comes back and when it closed
        s = connect(int(sys.argv[2]))
        s.sendall(sys.argv[3].encode())
        if len(sys.argv) > 4:
            s.shutdown(socket.SHUT_WR)
        t = time.time()
        b = read_all(s)
        print(repr(b[:60]), "%.2f" % (time.time() - t))
    elif cmd == "rawhex":          # PORT HEX: like raw, bytes given in hex
        s = connect(int(sys.argv[2]))
        s.sendall(bytes.fromhex(sys.argv[3]))
        t = time.time()
        b = read_all(s)
        print(repr(b[:60]), "%.2f" % (time.time() - t))
    elif cmd == "limit":           # PORT N: hold N echo connections, then one more; print "refused" or "served"
        port, n = int(sys.argv[2]), int(sys.argv[3])
        held = []
        for i in range(n):
            s = connect(port)
            s.sendall(b"x")
            assert s.recv(10) == b"x"
            held.append(s)
        s = connect(port)
        s.settimeout(5)
        try:
            s.sendall(b"y")
            b = s.recv(10)
        except OSError:
            b = b""
        print("served" if b == b"y" else "refused")
    elif cmd == "echo-loop":       # PORT SECS [FLAG]: echo a byte every 0.1 s for SECS (FLAG created once connected); print the count
        s = connect(int(sys.argv[2]))
        s.settimeout(5)
        s.sendall(b"z")
        s.recv(10)
        if len(sys.argv) > 4:
            open(sys.argv[4], "w").close()
        ok = 0
        end = time.time() + float(sys.argv[3])
        try:
            while time.time() < end:
                s.sendall(b"z")
                if s.recv(10) == b"z":
                    ok += 1
                time.sleep(0.1)
        except OSError:
            pass
        print(ok)
    elif cmd == "names":           # PORT N: N connections sending "x" then EOF; print "NAME:count ..." sorted
        counts = {}
        for i in range(int(sys.argv[3])):
            s = connect(int(sys.argv[2]))
            s.sendall(b"x")
            s.shutdown(socket.SHUT_WR)
            b = read_all(s).decode(errors="replace")
            k = b.split("\n")[0] if b.endswith("x") else "bad:" + b[:20]
            counts[k] = counts.get(k, 0) + 1
        print(" ".join("%s:%d" % kv for kv in sorted(counts.items())))
    elif cmd == "many":            # PORT N SECS: N connections each sending "x"; print how many got the echo within SECS
        port, n, secs = int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
        socks = []
        for i in range(n):
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            s.sendall(b"x")
            socks.append(s)
        end = time.time() + secs
        served = 0
        for s in socks:
            s.settimeout(max(0.01, end - time.time()))
            try:
                if s.recv(10).endswith(b"x"):
                    served += 1
            except OSError:
                pass
        print(served)
    elif cmd == "idle":            # PORT: connect, send nothing, seconds until the proxy closes
        s = connect(int(sys.argv[2]))
        t = time.time()
        try:
            b = s.recv(100)
        except OSError:
            b = b""
        print("%.2f" % (time.time() - t), len(b))
    elif cmd == "blast":           # PORT BYTES: write until blocked (backend never reads); seconds until closed
        s = connect(int(sys.argv[2]))
        s.settimeout(30)
        t = time.time()
        sent = 0
        try:
            while True:
                sent += s.send(b"x" * 65536)
        except OSError:
            pass
        print("%.2f" % (time.time() - t), sent)
    elif cmd == "tls-get":         # PORT SNI [CA]: TLS connect, send a line, print the reply line
        s = connect(int(sys.argv[2]), True, sys.argv[3], sys.argv[4] if len(sys.argv) > 4 else None)
        s.sendall(b"ping\n")
        print(s.recv(1000).decode().strip())

main()
PY
