#!/usr/bin/env python3
"""backend.py - test backends for the e2e suites (python3 stdlib only).

  backend.py http PORT [NAME]   HTTP/1.1 keep-alive server; every GET answers NAME\\n
  backend.py echo PORT          echoes bytes back; half-closes after the client does

Listens on 127.0.0.1 only. Prints "ready" once listening. Runs until killed.
"""
import http.server
import socket
import socketserver
import sys
import threading


def serve_http(port, name):
    body = (name + "\n").encode()

    class H(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    class S(socketserver.ThreadingMixIn, http.server.HTTPServer):
        daemon_threads = True
        allow_reuse_address = True
        request_queue_size = 1024

    srv = S(("127.0.0.1", port), H)
    print("ready", flush=True)
    srv.serve_forever()


def serve_echo(port):
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", port))
    ls.listen(1024)
    print("ready", flush=True)

    def handle(c):
        with c:
            while True:
                d = c.recv(65536)
                if not d:
                    c.shutdown(socket.SHUT_WR)
                    return
                c.sendall(d)

    while True:
        c, _ = ls.accept()
        threading.Thread(target=handle, args=(c,), daemon=True).start()


if __name__ == "__main__":
    mode, port = sys.argv[1], int(sys.argv[2])
    if mode == "http":
        serve_http(port, sys.argv[3] if len(sys.argv) > 3 else "backend")
    elif mode == "echo":
        serve_echo(port)
    else:
        sys.exit("unknown mode " + mode)
