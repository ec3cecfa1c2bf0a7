#!/usr/bin/env python3
"""A user-style service for scenarios: an HTTP/1.1 server from Python's standard library
whose every GET costs about WORK_MS of CPU (SHA-256 over a buffer, calibrated against
this process's CPU clock at start), on a thread per connection.

    cpu_server.py PORT [WORK_MS]
"""
import hashlib
import http.server
import sys
import time

port = int(sys.argv[1])
work_ms = float(sys.argv[2]) if len(sys.argv) > 2 else 5.0
block = b"x" * 4096


def hash_rounds(n):
    h = hashlib.sha256()
    for _ in range(n):
        h.update(block)
    return h.hexdigest()


# Rounds per ms of CPU, measured on the thread CPU clock (not wall time, so a throttled
# or busy start does not skew it).
start = time.thread_time()
hash_rounds(2000)
per_ms = 2000 / max((time.thread_time() - start) * 1e3, 1e-3)
rounds = max(1, int(per_ms * work_ms))


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        body = hash_rounds(rounds).encode() + b"\n"
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


http.server.ThreadingHTTPServer.daemon_threads = True
http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
