#!/usr/bin/env python3
"""fake_cp.py - a stand-in control plane for data-plane e2e tests.

Listens on the control Unix socket, speaks the frames of
api-docs/control-channel.md, and serves a configuration read from a JSON
file:

  {"certificates": [{"id": "cert-a", "version": 1, "cert": "a.crt",
                     "key": "a.key", "chain": null}],          # key null: CA only
   "target_groups": [{"id": "tg-x", "protocol": "tcp",
                      "targets": [{"id": "tgt-1", "host": "127.0.0.1", "port": 8080}]}],
   "listeners": [{"id": "lsn-a", "port": 8443, "protocol": "tls",
                  "default_target_group_id": "tg-x", "certificate_ids": ["cert-a"]}]}

Missing members get the control plane's defaults. SIGHUP re-reads the file
and pushes it as the next version; SIGUSR1 sends a malformed frame, SIGUSR2
an oversized frame header. Everything the proxy says is logged, one line
per frame: "hello node=N applied=V certs=K", "ack V", "nack V: reason",
"stats {...}".
"""
import argparse
import hashlib
import json
import os
import select
import signal
import socket
import struct
import sys
import time

flags = {"reload": False, "bad": False, "huge": False}


def log(msg):
    sys.stdout.write("%.3f %s\n" % (time.time(), msg))
    sys.stdout.flush()


def read(path):
    with open(path) as f:
        return f.read()


def load(path):
    with open(path) as f:
        conf = json.load(f)
    certs = []
    for c in conf.get("certificates", []):
        body = {"id": c["id"], "version": c.get("version", 1), "certificate": read(c["cert"]),
                "chain": read(c["chain"]) if c.get("chain") else ""}
        if c.get("key"):
            body["private_key"] = read(c["key"])
        h = hashlib.sha256((body["certificate"] + body["chain"] +
                            body.get("private_key", "")).encode()).hexdigest()
        body["sha256"] = h
        certs.append(body)
    tgs = []
    for t in conf.get("target_groups", []):
        g = {"name": t["id"], "protocol": "tcp", "algorithm": "round_robin",
             "health_check": None, "deregistration_delay_s": 300, "proxy_protocol": None,
             "tls": None}
        g.update(t)
        targets = []
        for i, x in enumerate(g.get("targets", [])):
            y = {"id": "tgt-%d" % i, "weight": 1}
            y.update(x)
            targets.append(y)
        g["targets"] = targets
        tgs.append(g)
    lsns = []
    for l in conf.get("listeners", []):
        m = {"name": l["id"], "bind": "127.0.0.1", "protocol": "tcp", "certificate_ids": [],
             "ssl_policy": "intermediate", "alpn": [], "sni_routes": [],
             "max_connections": 10000, "handshake_timeout_ms": 10000,
             "connect_timeout_ms": 5000, "idle_timeout_ms": 300000}
        m.update(l)
        lsns.append(m)
    return certs, tgs, lsns


def frame(obj):
    data = json.dumps(obj).encode()
    return struct.pack(">I", len(data)) + data


class Peer:
    def __init__(self, sock):
        self.sock = sock
        self.buf = b""
        self.held = set()
        self.hello = False


def push(peer, certs, tgs, lsns, version):
    out = b""
    for c in certs:
        if c["sha256"] not in peer.held:
            out += frame(dict(c, type="certificate"))
            peer.held.add(c["sha256"])
    snap = {"type": "snapshot", "version": version,
            "certificates": [{"id": c["id"], "version": c["version"], "sha256": c["sha256"]}
                             for c in certs],
            "target_groups": tgs, "listeners": lsns}
    out += frame(snap)
    peer.sock.setblocking(True)
    peer.sock.sendall(out)
    peer.sock.setblocking(False)
    log("sent snapshot %d" % version)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--socket", required=True)
    ap.add_argument("--config", required=True)
    ap.add_argument("--version", type=int, default=1)
    args = ap.parse_args()

    for s, k in ((signal.SIGHUP, "reload"), (signal.SIGUSR1, "bad"), (signal.SIGUSR2, "huge")):
        signal.signal(s, lambda sig, f, k=k: flags.__setitem__(k, True))
    signal.signal(signal.SIGTERM, lambda s, f: sys.exit(0))

    certs, tgs, lsns = load(args.config)
    version = args.version
    try:
        os.unlink(args.socket)
    except FileNotFoundError:
        pass
    ls = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    ls.bind(args.socket)
    os.chmod(args.socket, 0o600)
    ls.listen(8)
    ls.setblocking(False)
    log("listening on %s" % args.socket)
    peers = []
    while True:
        if flags["reload"]:
            flags["reload"] = False
            certs, tgs, lsns = load(args.config)
            version += 1
            log("reloaded: version %d" % version)
            for p in peers:
                if p.hello:
                    push(p, certs, tgs, lsns, version)
        if flags["bad"]:
            flags["bad"] = False
            for p in peers:
                p.sock.sendall(struct.pack(">I", 9) + b"{not json")
                log("sent malformed frame")
        if flags["huge"]:
            flags["huge"] = False
            for p in peers:
                p.sock.sendall(struct.pack(">I", 0xFFFFFFF0) + b"{")
                log("sent oversized frame header")
        try:
            r, _, _ = select.select([ls] + [p.sock for p in peers], [], [], 0.1)
        except InterruptedError:
            continue
        for s in r:
            if s is ls:
                c, _ = ls.accept()
                c.setblocking(False)
                peers.append(Peer(c))
                log("proxy connected")
                continue
            p = next(p for p in peers if p.sock is s)
            try:
                data = s.recv(65536)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                data = b""
            if not data:
                log("proxy disconnected")
                peers.remove(p)
                s.close()
                continue
            p.buf += data
            while len(p.buf) >= 4:
                n = struct.unpack(">I", p.buf[:4])[0]
                if len(p.buf) < 4 + n:
                    break
                msg = json.loads(p.buf[4:4 + n])
                p.buf = p.buf[4 + n:]
                t = msg.get("type")
                if t == "hello":
                    p.hello = True
                    p.held = set(msg.get("certificates", []))
                    log("hello node=%s applied=%s certs=%d" % (
                        msg.get("node_id"), msg.get("applied_version"), len(p.held)))
                    push(p, certs, tgs, lsns, version)
                elif t == "ack":
                    log("ack %s" % msg.get("version"))
                elif t == "nack":
                    log("nack %s: %s" % (msg.get("version"), msg.get("error")))
                elif t == "stats":
                    log("stats " + json.dumps(msg, sort_keys=True))
                else:
                    log("frame %s" % t)


if __name__ == "__main__":
    main()
