#!/usr/bin/env python3
"""fake_proxy.py - a stand-in for portcullis-proxy on the control socket.

Connects, sends hello, and answers every snapshot according to the mode:
  ack    acknowledge it
  nack   refuse it with --nack-error
  never  say nothing (a hung proxy)
  resync acknowledge full snapshots; answer a snapshot_delta with
         nack {resync: true} (a proxy that cannot apply deltas)
The mode is re-read from --mode-file (when given and present) before each
answer, so a test can change it while the proxy runs.

Every frame received is appended to --log as one JSON line; certificate
frames are recorded without their PEM bodies (only whether a key came).
On reaching EOF the line {"type": "closed"} is written and it exits 0.

  fake_proxy.py --socket S --node-id n1 --mode ack --log frames.jsonl
        [--certs SHA,SHA] [--applied-version N] [--health TG:TARGET:STATE[:REASON]]
        [--stats-listener LSN_ID] [--mode-file FILE] [--ack-delay-ms MS]
--health frames are sent right after the hello, in order; --ack-delay-ms
delays every ack (a slow proxy).
"""
import argparse
import json
import os
import socket
import struct
import sys
import time


def send(sock, obj):
    data = json.dumps(obj).encode()
    sock.sendall(struct.pack(">I", len(data)) + data)


def recv_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--socket", required=True)
    ap.add_argument("--node-id", default="fake-1")
    ap.add_argument("--mode", default="ack", choices=["ack", "nack", "never", "resync"])
    ap.add_argument("--mode-file")
    ap.add_argument("--nack-error", default="fake proxy refuses this snapshot")
    ap.add_argument("--log", required=True)
    ap.add_argument("--certs", default="")
    ap.add_argument("--applied-version", type=int, default=0)
    ap.add_argument("--health", action="append", default=[])
    ap.add_argument("--stats-listener")
    ap.add_argument("--ack-delay-ms", type=int, default=0)
    args = ap.parse_args()

    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(args.socket)
    hello = {"type": "hello", "node_id": args.node_id, "applied_version": args.applied_version}
    if args.certs:
        hello["certificates"] = [c for c in args.certs.split(",") if c]
    send(sock, hello)
    for h in args.health:
        parts = h.split(":", 3)
        tg, target, state = parts[:3]
        reason = parts[3] if len(parts) > 3 else "reported by fake proxy"
        send(sock, {"type": "health", "target_group_id": tg, "target_id": target,
                    "state": state, "reason": reason})
    if args.stats_listener:
        send(sock, {"type": "stats",
                    "listeners": [{"id": args.stats_listener, "active": 2, "total": 7,
                                   "bytes_in": 100, "bytes_out": 200, "errors": 1}],
                    "targets": []})

    with open(args.log, "a", buffering=1) as log:
        log.write(json.dumps({"type": "connected", "node_id": args.node_id}) + "\n")
        while True:
            hdr = recv_exact(sock, 4)
            if hdr is None:
                break
            (n,) = struct.unpack(">I", hdr)
            body = recv_exact(sock, n)
            if body is None:
                break
            frame = json.loads(body)
            if frame.get("type") == "certificate":
                rec = {"type": "certificate", "id": frame.get("id"),
                       "version": frame.get("version"), "sha256": frame.get("sha256"),
                       "has_private_key": "private_key" in frame,
                       "key_is_pem": "PRIVATE KEY-----" in frame.get("private_key", "")}
                log.write(json.dumps(rec) + "\n")
                continue
            log.write(json.dumps(frame) + "\n")
            if frame.get("type") not in ("snapshot", "snapshot_delta"):
                continue
            mode = args.mode
            if args.mode_file and os.path.exists(args.mode_file):
                with open(args.mode_file) as f:
                    mode = f.read().strip() or mode
            if mode == "resync" and frame["type"] == "snapshot_delta":
                send(sock, {"type": "nack", "version": frame["version"], "resync": True,
                            "error": "fake proxy applies no deltas"})
            elif mode in ("ack", "resync"):
                if args.ack_delay_ms > 0:
                    time.sleep(args.ack_delay_ms / 1000.0)
                send(sock, {"type": "ack", "version": frame["version"]})
            elif mode == "nack":
                send(sock, {"type": "nack", "version": frame["version"],
                            "error": args.nack_error})
        log.write(json.dumps({"type": "closed"}) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
