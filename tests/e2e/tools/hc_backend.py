#!/usr/bin/env python3
"""hc_backend.py - backends for the health-check e2e tests (stdlib only).

  hc_backend.py MODE PORT [CERT KEY]

MODE:
  tcp       accept, read until EOF (at most 2 s), close
  http:N    answer "HTTP/1.0 N Status" to a request
  slow      read the request, wait 30 s before answering
  garbage   send endless bytes that are not HTTP
  huge      send "HTTP/1.1 200 " and a status line that never ends
  tls       TLS handshake with CERT/KEY, then close

Every accepted connection is logged as one line "conn pp2=yes|no" once
its first bytes arrived (or it closed): pp2=yes when they start with the
PROXY v2 signature and command LOCAL (16-byte header). Prints "ready" once
listening. Listens on 127.0.0.1 only. Runs until killed.
"""
import socket
import ssl
import sys
import threading
import time

SIG = b"\r\n\r\n\x00\r\nQUIT\n"
LOCK = threading.Lock()


def log(msg):
    with LOCK:
        print(msg, flush=True)


def read_first(c, want, secs):
    """Up to 'want' bytes within 'secs' (fewer on EOF or timeout)."""
    data = b""
    c.settimeout(secs)
    try:
        while len(data) < want:
            b = c.recv(want - len(data))
            if not b:
                break
            data += b
    except (socket.timeout, OSError):
        pass
    return data


def pp2_of(data):
    return "yes" if len(data) >= 16 and data[:12] == SIG and data[12] == 0x20 else "no"


def handle(mode, c, ctx):
    try:
        if mode == "tls":
            # A PROXY header would precede the handshake: peek for it.
            c.settimeout(2)
            head = c.recv(16, socket.MSG_PEEK)
            pp = pp2_of(head)
            if pp == "yes":
                c.recv(16)
            log("conn pp2=%s" % pp)
            s = ctx.wrap_socket(c, server_side=True)
            s.close()
            return
        if mode == "tcp":
            data = read_first(c, 16, 2)
            log("conn pp2=%s" % pp2_of(data))
            return
        # HTTP-ish modes: the request ends with an empty line.
        data = b""
        c.settimeout(2)
        while b"\r\n\r\n" not in data[16 if data.startswith(SIG) else 0:] and len(data) < 65536:
            b = c.recv(4096)
            if not b:
                break
            data += b
        log("conn pp2=%s" % pp2_of(data))
        if mode.startswith("http:"):
            code = int(mode[5:])
            c.sendall(b"HTTP/1.0 %d Status\r\nContent-Length: 0\r\n\r\n" % code)
        elif mode == "slow":
            time.sleep(30)
        elif mode == "garbage":
            c.settimeout(5)
            chunk = bytes(range(256)) * 64
            end = time.time() + 30
            while time.time() < end:
                c.sendall(chunk)
        elif mode == "huge":
            c.settimeout(5)
            c.sendall(b"HTTP/1.1 200 ")
            end = time.time() + 30
            while time.time() < end:
                c.sendall(b"A" * 16384)
    except OSError:
        pass
    finally:
        try:
            c.close()
        except OSError:
            pass


def main():
    mode, port = sys.argv[1], int(sys.argv[2])
    ctx = None
    if mode == "tls":
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(sys.argv[3], sys.argv[4])
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", port))
    ls.listen(128)
    print("ready", flush=True)
    while True:
        c, _ = ls.accept()
        threading.Thread(target=handle, args=(mode, c, ctx), daemon=True).start()


if __name__ == "__main__":
    main()
