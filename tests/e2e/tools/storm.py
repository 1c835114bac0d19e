#!/usr/bin/env python3
"""storm.py - N API mutations in a row over one keep-alive connection.

  storm.py API_URL TOKEN N CERT_ID SIDE1_JSON SIDE2_JSON

Cycles through: create a target group, add a target to it, delete it,
rotate certificate CERT_ID to SIDE2, rotate it back to SIDE1. Exits 1 at the
first unexpected status, printing it; prints "mutations=N" at the end.
"""
import http.client
import json
import sys
import urllib.parse

api, token, n, cert = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
side = [open(sys.argv[5]).read(), open(sys.argv[6]).read()]
u = urllib.parse.urlparse(api)
conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
hdrs = {"Authorization": "Bearer " + token, "Content-Type": "application/json"}


def call(method, path, body, want):
    conn.request(method, path, body=body, headers=hdrs)
    r = conn.getresponse()
    data = r.read()
    if r.status != want:
        print(f"{method} {path}: want {want}, got {r.status}: {data[:300]!r}", flush=True)
        sys.exit(1)


for i in range(n):
    k = i % 5
    if k == 0:
        call("POST", "/v1/target-groups", json.dumps({"name": f"storm{i}", "protocol": "tcp",
             "targets": [{"host": "127.0.0.1", "port": 9}]}), 201)
    elif k == 1:
        call("POST", f"/v1/target-groups/storm{i - 1}/targets",
             json.dumps({"host": "127.0.0.1", "port": 10}), 201)
    elif k == 2:
        call("DELETE", f"/v1/target-groups/storm{i - 2}", None, 204)
    elif k == 3:
        call("PUT", f"/v1/certificates/{cert}", side[1], 200)
    else:
        call("PUT", f"/v1/certificates/{cert}", side[0], 200)
print(f"mutations={n}", flush=True)
