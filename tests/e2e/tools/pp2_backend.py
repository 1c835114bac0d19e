#!/usr/bin/env python3
"""pp2_backend.py - a PROXY protocol v2 test backend and its client.

  pp2_backend.py serve PORT [CERT KEY]
      Listens on 127.0.0.1:PORT. Per connection: if the first 12 bytes are
      the v2 signature, reads the whole header (16 bytes + its length) and
      answers "hdr <hex of every header byte>\\n", else answers "none\\n"; with
      CERT and KEY the answer and everything after go through TLS, which
      starts right after the header. Then echoes. Prints "ready".

  pp2_backend.py client HOST PORT plain|tls [SNI]
      Connects, reads the answer line, and prints "ok" when it is the header
      this very connection must carry, byte for byte: signature, 0x21 (v2,
      PROXY), 0x11 (TCP over IPv4) or 0x21 (TCP over IPv6), the address
      length, then source = this socket's own address and port, destination
      = the address and port it connected to. Otherwise prints what came.
"""
import ipaddress
import socket
import ssl
import struct
import sys
import threading

SIG = b"\r\n\r\n\x00\r\nQUIT\n"


def recv_exact(c, n):
    b = b""
    while len(b) < n:
        d = c.recv(n - len(b))
        if not d:
            raise OSError("eof after %d of %d bytes" % (len(b), n))
        b += d
    return b


def handle(c, ctx):
    try:
        first = c.recv(12, socket.MSG_PEEK | socket.MSG_WAITALL)
        if first == SIG:
            head = recv_exact(c, 16)
            head += recv_exact(c, struct.unpack(">H", head[14:16])[0])
            answer = b"hdr " + head.hex().encode() + b"\n"
        else:
            answer = b"none\n"
        if ctx is not None:
            c = ctx.wrap_socket(c, server_side=True)
        c.sendall(answer)
        while True:
            d = c.recv(65536)
            if not d:
                break
            c.sendall(d)
    except (OSError, ssl.SSLError):
        pass
    finally:
        c.close()


def serve(port, cert, key):
    ctx = None
    if cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", port))
    ls.listen(128)
    print("ready", flush=True)
    while True:
        c, _ = ls.accept()
        threading.Thread(target=handle, args=(c, ctx), daemon=True).start()


def expected(s):
    src, dst = s.getsockname(), s.getpeername()
    if s.family == socket.AF_INET:
        fam, addrs = 0x11, (socket.inet_aton(src[0]) + socket.inet_aton(dst[0]))
    else:
        fam = 0x21
        addrs = ipaddress.IPv6Address(src[0]).packed + ipaddress.IPv6Address(dst[0]).packed
    body = addrs + struct.pack(">HH", src[1], dst[1])
    return SIG + bytes([0x21, fam]) + struct.pack(">H", len(body)) + body


def client(host, port, mode, sni):
    raw = socket.create_connection((host, port), timeout=10)
    want = expected(raw)
    s = raw
    if mode == "tls":
        ctx = ssl._create_unverified_context()
        s = ctx.wrap_socket(raw, server_hostname=sni)
    # Data first: a backend without a header waits for 12 bytes to decide.
    s.sendall(b"ping-ping-ping\n")
    f = s.makefile("rb")
    line = f.readline().decode().strip()
    echo = f.readline()
    if echo != b"ping-ping-ping\n":
        print("no echo after:", line)
    elif line == "hdr " + want.hex():
        print("ok")
    else:
        print(line, "want", want.hex())


if __name__ == "__main__":
    if sys.argv[1] == "serve":
        serve(int(sys.argv[2]), *(sys.argv[3:5] if len(sys.argv) > 4 else (None, None)))
    elif sys.argv[1] == "client":
        client(sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5] if len(sys.argv) > 5 else None)
    else:
        sys.exit(__doc__)
