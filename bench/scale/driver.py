#!/usr/bin/env python3
"""bench/scale/driver.py - the API and TLS side of bench/scale.sh.

Sub-commands (each prints one JSON object on stdout, progress on stderr):
  ports     find COUNT consecutive free TCP ports on 127.0.0.1
  load      import certificates (JSON lines from pc_mkcerts), one target group
            and the listeners, over one keep-alive HTTP connection
  rotate    PUT new bodies to one certificate, timing each call
  serve     after a proxy (re)start: wait until /v1/status shows the proxy
            applied the current version, then check a sample of SNI names
            get the right certificate
  rss       VmRSS of a process and its descendants, in KiB
Every loop is bounded in count and in time.
"""
import argparse
import hashlib
import http.client
import json
import math
import os
import socket
import ssl
import statistics
import sys
import time


def log(*a):
    print("scale:", *a, file=sys.stderr, flush=True)


class Api:
    """One keep-alive connection to the control plane (re-opened if it drops)."""

    def __init__(self, url, token, timeout=120):
        hostport = url.split("://", 1)[1].rstrip("/")
        self.host, port = hostport.rsplit(":", 1)
        self.port = int(port)
        self.timeout = timeout
        self.hdr = {"Authorization": "Bearer " + token, "Content-Type": "application/json"}
        self.conn = None

    def call(self, method, path, body=None):
        """Returns (status, parsed JSON or None, seconds from send to full response)."""
        data = body if body is None or isinstance(body, bytes) else json.dumps(body).encode()
        for attempt in range(2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
                self.conn.connect()
                self.conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            try:
                t0 = time.perf_counter()
                self.conn.request(method, path, body=data, headers=self.hdr)
                r = self.conn.getresponse()
                raw = r.read()
                dt = time.perf_counter() - t0
                if r.getheader("Connection", "").lower() == "close":
                    self.conn.close()
                    self.conn = None
                return r.status, (json.loads(raw) if raw else None), dt
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                # A keep-alive connection the server closed between calls:
                # retry once on a fresh one (mutations here are not retried
                # after a response, so nothing is applied twice).
                self.conn.close()
                self.conn = None
                if attempt == 1:
                    raise
        raise RuntimeError("unreachable")


def must(status, body, what, ok=(200, 201)):
    if status not in ok:
        raise SystemExit("scale: %s -> %d %s" % (what, status, json.dumps(body)[:500]))
    return body


def pct(values, p):
    """Nearest-rank percentile of a non-empty list."""
    s = sorted(values)
    k = max(0, min(len(s) - 1, math.ceil(p / 100.0 * len(s)) - 1))
    return s[k]


def summary_ms(values):
    if not values:
        return {}
    ms = [v * 1000.0 for v in values]
    return {"n": len(ms), "p50": round(pct(ms, 50), 2), "p99": round(pct(ms, 99), 2),
            "max": round(max(ms), 2), "mean": round(statistics.fmean(ms), 2)}


def buckets(values, size):
    """Mean ms per call over consecutive blocks of 'size' calls: shows whether
    the cost of call k grows with k."""
    out = []
    for i in range(0, len(values), size):
        blk = values[i:i + size]
        out.append({"from": i + 1, "to": i + len(blk),
                    "mean_ms": round(statistics.fmean(blk) * 1000.0, 2)})
    return out


# ---- ports ----

def cmd_ports(a):
    lo, _hi = (int(x) for x in open("/proc/sys/net/ipv4/ip_local_port_range").read().split())
    base = a.base
    for _ in range(a.tries):
        if base + a.count > 65535:
            break
        # Stay out of the ephemeral range: a connect() could take one of ours.
        if base < lo < base + a.count:
            base = lo + 1000 if lo + 1000 + a.count <= 65535 else 1024
            continue
        socks, ok = [], True
        try:
            for p in range(base, base + a.count):
                s = socket.socket()
                socks.append(s)
                try:
                    s.bind(("127.0.0.1", p))
                except OSError:
                    ok = False
                    break
        finally:
            for s in socks:
                s.close()
        if ok:
            print(json.dumps({"base": base, "count": a.count}))
            return
        base += a.count
    raise SystemExit("scale: no %d consecutive free ports found" % a.count)


# ---- load ----

def cmd_load(a):
    api = Api(a.api, a.token)
    lines = []
    with open(a.certs, "rb") as f:
        for line in f:
            if line.strip():
                lines.append(line)
    n = len(lines)
    per = a.per
    if n < a.listeners * per:
        raise SystemExit("scale: %d certificates < %d listeners x %d" % (n, a.listeners, per))
    ids, names, cert_t = [], [], []
    deadline = time.monotonic() + a.max_seconds
    t_all = time.perf_counter()
    for i, line in enumerate(lines):
        if time.monotonic() > deadline:
            raise SystemExit("scale: certificate import exceeded %d s at %d" % (a.max_seconds, i))
        st, b, dt = api.call("POST", "/v1/certificates", line)
        must(st, b, "POST /v1/certificates #%d" % (i + 1), ok=(201,))
        ids.append(b["id"])
        names.append(b["name"])
        cert_t.append(dt)
        if (i + 1) % 1000 == 0:
            log("%d certificates, last 1000 at %.2f ms each" %
                (i + 1, statistics.fmean(cert_t[-1000:]) * 1000))
    t_certs = time.perf_counter() - t_all

    st, tg, dt_tg = api.call("POST", "/v1/target-groups", {
        "name": "scale-origin", "protocol": "tcp",
        "targets": [{"host": "127.0.0.1", "port": a.backend_port}]})
    must(st, tg, "POST /v1/target-groups", ok=(201,))

    lsn_t, listeners, not_applied, truncated = [], [], 0, False
    t_l = time.perf_counter()
    for j in range(a.listeners):
        if time.monotonic() > deadline:
            # Bounded: report what was created rather than nothing.
            log("listener creation stopped by the %d s bound after %d" % (a.max_seconds, j))
            truncated = True
            break
        # Listener j gets certificates j, j+L, j+2L, ... so that every one
        # of the n certificates is used (n // L each, the first L*per at
        # least 'per'); the first is the default, SNI picks the others.
        mine = list(range(j, n, a.listeners))
        port = a.port_base + j
        st, b, dt = api.call("POST", "/v1/listeners", {
            "name": "scale-%d" % j, "bind": "127.0.0.1", "port": port, "protocol": "tls",
            "default_target_group_id": tg["id"], "certificate_ids": [ids[k] for k in mine]})
        must(st, b, "POST /v1/listeners #%d" % (j + 1), ok=(201,))
        if not b.get("applied"):
            not_applied += 1
        lsn_t.append(dt)
        listeners.append({"id": b["id"], "port": port, "certs": mine})
        if (j + 1) % 100 == 0:
            log("%d listeners, last 100 at %.2f ms each" %
                (j + 1, statistics.fmean(lsn_t[-100:]) * 1000))
    t_lsn = time.perf_counter() - t_l

    # Where each certificate is served (listener port), for the checks.
    where = {}
    for l in listeners:
        for pos, k in enumerate(l["certs"]):
            where[names[k]] = {"port": l["port"], "default": pos == 0, "id": ids[k]}
    with open(a.map_out, "w") as f:
        json.dump(where, f)
    st, status, _ = api.call("GET", "/v1/status")
    print(json.dumps({
        "certificates": n, "listeners": len(listeners), "listeners_asked": a.listeners,
        "listeners_truncated_by_time_bound": truncated,
        "certs_served": sum(len(l["certs"]) for l in listeners),
        "certs_per_listener": n // a.listeners,
        "certs_seconds": round(t_certs, 3), "certs_per_call": summary_ms(cert_t),
        "certs_by_1000": buckets(cert_t, 1000),
        "listeners_seconds": round(t_lsn, 3), "listeners_per_call": summary_ms(lsn_t),
        "listeners_by_100": buckets(lsn_t, 100), "listeners_not_applied": not_applied,
        "target_group_ms": round(dt_tg * 1000, 2), "status": status}))


# ---- rotate ----

def cmd_rotate(a):
    api = Api(a.api, a.token)
    bodies = []
    with open(a.bodies) as f:
        for line in f:
            if line.strip():
                b = json.loads(line)
                bodies.append({"certificate": b["certificate"], "private_key": b["private_key"]})
    bodies = bodies[a.skip:a.skip + a.count]
    if len(bodies) < a.count:
        raise SystemExit("scale: only %d rotation bodies" % len(bodies))
    times, versions, not_applied = [], [], 0
    deadline = time.monotonic() + a.max_seconds
    for i, b in enumerate(bodies):
        if time.monotonic() > deadline:
            raise SystemExit("scale: rotations exceeded %d s at %d" % (a.max_seconds, i))
        st, r, dt = api.call("PUT", "/v1/certificates/" + a.id, b)
        must(st, r, "PUT /v1/certificates/%s #%d" % (a.id, i + 1), ok=(200,))
        if not r.get("applied"):
            not_applied += 1
        times.append(dt)
        versions.append(r.get("version"))
        if a.pause > 0:
            time.sleep(a.pause)
    last = bodies[-1]["certificate"]
    with open(a.last_out, "w") as f:
        f.write(last)
    print(json.dumps({"rotations": len(times), "put_to_response_ms": summary_ms(times),
                      "not_applied": not_applied, "first_version": versions[0],
                      "last_version": versions[-1],
                      "all_ms": [round(t * 1000, 3) for t in times]}))


# ---- serve ----

def der_of_pem(pem):
    return ssl.PEM_cert_to_DER_cert(pem)


def handshake_der(port, sni, timeout=5.0):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        with ctx.wrap_socket(s, server_hostname=sni) as t:
            return t.getpeercert(binary_form=True)


def cmd_serve(a):
    api = Api(a.api, a.token, timeout=10)
    where = json.load(open(a.map))
    expect = {}
    with open(a.certs) as f:
        for line in f:
            if line.strip():
                b = json.loads(line)
                if b["name"] in where:
                    expect[b["name"]] = hashlib.sha256(der_of_pem(b["certificate"])).hexdigest()
    if a.override:  # NAME=PEMFILE: a rotated certificate
        name, path = a.override.split("=", 1)
        expect[name] = hashlib.sha256(der_of_pem(open(path).read())).hexdigest()
    names = sorted(where, key=lambda x: int(x.split(".", 1)[0][1:]))
    step = max(1, len(names) // a.sample)
    sample = names[::step][:a.sample]
    if names[-1] not in sample:
        sample.append(names[-1])
    if a.override and a.override.split("=", 1)[0] not in sample:
        sample.append(a.override.split("=", 1)[0])
    t0 = a.t0  # CLOCK_REALTIME seconds when the proxy was started
    deadline = time.monotonic() + a.max_seconds
    t_connected = t_applied = None
    cv = None
    while time.monotonic() < deadline:
        try:
            st, s, _ = api.call("GET", "/v1/status")
        except OSError:
            st, s = 0, None
        if st == 200:
            cv = s.get("config_version")
            for d in s.get("dataplanes", []):
                if d.get("id") != a.node or not d.get("connected"):
                    continue
                if t_connected is None:
                    t_connected = time.time()
                if d.get("applied_version") == cv:
                    t_applied = time.time()
            if t_applied:
                break
        time.sleep(0.02)
    if t_applied is None:
        raise SystemExit("scale: proxy %s did not apply version %s within %d s" %
                         (a.node, cv, a.max_seconds))
    # Every sampled name must present its own certificate; a name that does
    # not yet is retried until the deadline.
    todo, bad = list(sample), {}
    rounds = 0
    while todo and time.monotonic() < deadline and rounds < 1000:
        rounds += 1
        left = []
        for name in todo:
            w = where[name]
            try:
                got = hashlib.sha256(handshake_der(w["port"], name)).hexdigest()
            except (OSError, ssl.SSLError) as e:
                got = "error: %s" % e
            if got != expect[name]:
                bad[name] = got
                left.append(name)
        todo = left
        if todo:
            time.sleep(0.05)
    t_served = time.time()
    print(json.dumps({
        "sample": len(sample), "wrong_or_failed": len(todo), "failed_names": todo[:10],
        "connected_s": round(t_connected - t0, 3) if t_connected else None,
        "applied_s": round(t_applied - t0, 3),
        "served_s": round(t_served - t0, 3), "check_rounds": rounds}))
    if todo:
        sys.exit(1)


# ---- rss ----

def tree_rss_kib(pid):
    pids, seen = [pid], set()
    total = 0
    while pids:
        p = pids.pop()
        if p in seen or len(seen) > 4096:
            continue
        seen.add(p)
        try:
            for line in open("/proc/%d/status" % p):
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
            for t in os.listdir("/proc/%d/task" % p):
                try:
                    kids = open("/proc/%d/task/%s/children" % (p, t)).read().split()
                except OSError:
                    kids = []
                pids.extend(int(k) for k in kids)
        except OSError:
            pass
    return total


def cmd_rss(a):
    print(tree_rss_kib(a.pid))


# ---- strace ----

def cmd_strace(a):
    """Sum the bytes the traced process wrote on sockets whose strace -yy
    annotation names the control socket path, per rotation. Lines split by
    -f (<unfinished ...> / <... resumed>) are joined per thread."""
    import re
    ret_re = re.compile(r"\)\s+=\s+(-?\d+)")
    pending = {}  # tid -> is control socket
    ctl_bytes = ctl_calls = other_bytes = 0
    sizes = []
    for line in open(a.file, errors="replace"):
        parts = line.split(None, 1)
        if len(parts) < 2:
            continue
        tid, rest = parts[0], parts[1]
        if not tid.isdigit():
            tid, rest = "0", line
        if "resumed>" in rest:
            is_ctl = pending.pop(tid, None)
            if is_ctl is None:
                continue
        else:
            # fd annotation: 32<UNIX-STREAM:[35319088->35319087,"/path/control.sock"]>
            m = re.match(r"(write|writev|sendmsg|sendto)\((\d+)<(.*?)>, ", rest)
            if not m:
                continue
            is_ctl = a.path in m.group(3) or (os.path.basename(a.path) + '"') in m.group(3)
            if "<unfinished" in rest:
                pending[tid] = is_ctl
                continue
        m = ret_re.search(rest)
        if not m or int(m.group(1)) < 0:
            continue
        n = int(m.group(1))
        if is_ctl:
            ctl_bytes += n
            ctl_calls += 1
            sizes.append(n)
        else:
            other_bytes += n
    print(json.dumps({"method": "strace -f -yy -e trace=write,writev,sendmsg,sendto on portcullisd",
                      "rotations": a.rotations, "control_bytes": ctl_bytes,
                      "control_calls": ctl_calls,
                      "control_bytes_per_rotation": round(ctl_bytes / max(1, a.rotations)),
                      "largest_writes": sorted(sizes, reverse=True)[:5],
                      "other_socket_and_file_bytes": other_bytes}))


# ---- report ----

def cmd_report(a):
    d = a.dir

    def ld(name):
        try:
            return json.load(open(os.path.join(d, name)))
        except (OSError, ValueError):
            return {}
    load, rot, st, srv = ld("load.json"), ld("rotate.json"), ld("strace.json"), ld("serve.json")
    rss, ha, meta = ld("rss.json"), ld("haproxy.json"), ld("meta.json")
    rows = []

    def row(metric, value, target=""):
        rows.append((metric, "-" if value is None or value == "" else str(value), target))
    n = load.get("certificates")
    row("certificates / listeners (certs per listener)",
        "%s / %s (%s)" % (n, load.get("listeners"), load.get("certs_per_listener")))
    row("import all certificates, s", load.get("certs_seconds"))
    c = load.get("certs_per_call", {})
    row("  per POST /v1/certificates, ms p50/p99/max",
        c and "%s / %s / %s" % (c["p50"], c["p99"], c["max"]))
    b = load.get("certs_by_1000", [])
    if b:
        row("  mean ms per import, first vs last 1000", "%s -> %s" % (b[0]["mean_ms"], b[-1]["mean_ms"]))
    row("create all listeners, s", load.get("listeners_seconds"))
    c = load.get("listeners_per_call", {})
    row("  per POST /v1/listeners, ms p50/p99/max",
        c and "%s / %s / %s" % (c["p50"], c["p99"], c["max"]))
    b = load.get("listeners_by_100", [])
    if b:
        row("  mean ms per listener, first vs last 100", "%s -> %s" % (b[0]["mean_ms"], b[-1]["mean_ms"]))
    row("  listener calls answered applied=false", load.get("listeners_not_applied"))
    row("proxy RSS, no config, MiB", rss.get("baseline_kib") and round(rss["baseline_kib"] / 1024, 1))
    row("proxy RSS, everything applied, MiB", rss.get("loaded_kib") and round(rss["loaded_kib"] / 1024, 1),
        "HAProxy 216 MB")
    if rss.get("loaded_kib") and n:
        row("proxy RSS per certificate, KB (KiB)",
            round((rss["loaded_kib"] - rss["baseline_kib"]) * 1.024 / n, 1), "<= 11 KB (HAProxy ~22)")
    if rss.get("fresh_kib") and n:
        row("fresh proxy after resync: RSS MiB, KB per cert",
            "%s, %s" % (round(rss["fresh_kib"] / 1024, 1),
                        round((rss["fresh_kib"] - rss["baseline_kib"]) * 1.024 / n, 1)))
    c = rot.get("put_to_response_ms", {})
    row("rotation PUT -> response (after proxy ACK), ms p50/p99/max (n=%s)" % c.get("n"),
        c and "%s / %s / %s" % (c["p50"], c["p99"], c["max"]), "p99 <= 10 ms (HAProxy p50 1.1, max 4.4, memory only)")
    row("  rotations answered applied=false", rot.get("not_applied"))
    row("  handshake after last rotation presents the new certificate", meta.get("rotation_verified"))
    row("control-socket bytes per rotation (strace, n=%s)" % st.get("rotations"),
        st.get("control_bytes_per_rotation"), "one certificate body (~%s B)" % meta.get("cert_frame_estimate", "1.2k"))
    c = ld("rotate_strace.json").get("put_to_response_ms", {})
    if c:
        row("  PUT -> response under strace, ms p50/max", "%s / %s" % (c["p50"], c["max"]))
    row("fresh proxy: connected to control plane, s after start", srv.get("connected_s"))
    row("fresh proxy: applied current version, s after start", srv.get("applied_s"))
    row("fresh proxy: sample of %s names served with the right cert, s" % srv.get("sample"),
        srv.get("served_s"), "<= 5 s after connecting")
    if ha:
        row("HAProxy 2.6 crt-list start with %s certs, s (same run)" % ha.get("certificates"),
            ha.get("start_s"), "README: 10.4 s")
        row("HAProxy 2.6 RSS after start, MiB (same run)",
            ha.get("rss_kib") and round(ha["rss_kib"] / 1024, 1), "README: 216 MB")
    w = max(len(r[0]) for r in rows)
    out = ["| figure | value | target / reference |", "|---|---|---|"]
    out += ["| %s | %s | %s |" % r for r in rows]
    txt = "\n".join(out) + "\n"
    open(os.path.join(d, "table.txt"), "w").write(txt)
    print(txt, end="")


def main():
    ap = argparse.ArgumentParser()
    sp = ap.add_subparsers(dest="cmd", required=True)
    p = sp.add_parser("ports")
    p.add_argument("--base", type=int, default=20000)
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--tries", type=int, default=20)
    for name in ("load", "rotate", "serve"):
        q = sp.add_parser(name)
        q.add_argument("--api", required=True)
        q.add_argument("--token", required=True)
        q.add_argument("--max-seconds", type=int, default=3600)
    q = sp.choices["load"]
    q.add_argument("--certs", required=True)
    q.add_argument("--listeners", type=int, required=True)
    q.add_argument("--per", type=int, default=10)
    q.add_argument("--port-base", type=int, required=True)
    q.add_argument("--backend-port", type=int, required=True)
    q.add_argument("--map-out", required=True)
    q = sp.choices["rotate"]
    q.add_argument("--id", required=True)
    q.add_argument("--bodies", required=True)
    q.add_argument("--count", type=int, required=True)
    q.add_argument("--skip", type=int, default=0)
    q.add_argument("--pause", type=float, default=0.0)
    q.add_argument("--last-out", required=True)
    q = sp.choices["serve"]
    q.add_argument("--map", required=True)
    q.add_argument("--certs", required=True)
    q.add_argument("--node", required=True)
    q.add_argument("--t0", type=float, required=True)
    q.add_argument("--sample", type=int, default=200)
    q.add_argument("--override", default="")
    p = sp.add_parser("strace")
    p.add_argument("--file", required=True)
    p.add_argument("--path", required=True)
    p.add_argument("--rotations", type=int, required=True)
    p = sp.add_parser("report")
    p.add_argument("--dir", required=True)
    p = sp.add_parser("rss")
    p.add_argument("pid", type=int)
    a = ap.parse_args()
    {"ports": cmd_ports, "load": cmd_load, "rotate": cmd_rotate, "serve": cmd_serve,
     "rss": cmd_rss, "strace": cmd_strace, "report": cmd_report}[a.cmd](a)


if __name__ == "__main__":
    main()
