#!/usr/bin/env python3
"""hold.py - one long-lived TLS connection that keeps transferring.

  hold.py HOST PORT SECONDS [SNI]

Opens one TLS connection (no verification), then sends an HTTP/1.1
keep-alive GET every 50 ms on it until SECONDS have passed. Prints one line
per request: "<unix ms> ok|fail <fingerprint16>", where the fingerprint is of
the certificate this connection saw at its handshake (so it must never
change). Exits 0 if every request succeeded, 1 otherwise.
"""
import hashlib
import socket
import ssl
import sys
import time

host, port, secs = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
sni = sys.argv[4] if len(sys.argv) > 4 else None
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
raw = socket.create_connection((host, port), timeout=10)
s = ctx.wrap_socket(raw, server_hostname=sni)
fp = hashlib.sha256(s.getpeercert(binary_form=True)).hexdigest()[:16]
f = s.makefile("rb")
end = time.time() + secs
ok = True
while time.time() < end:
    now = int(time.time() * 1000)
    try:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        line = f.readline()
        clen = 0
        while True:
            h = f.readline()
            if h in (b"\r\n", b""):
                break
            if h.lower().startswith(b"content-length:"):
                clen = int(h.split(b":")[1])
        body = f.read(clen)
        good = line.startswith(b"HTTP/1.1 200") and len(body) == clen
    except OSError:
        good = False
    print(now, "ok" if good else "fail", fp, flush=True)
    if not good:
        ok = False
        break
    time.sleep(0.05)
sys.exit(0 if ok else 1)
