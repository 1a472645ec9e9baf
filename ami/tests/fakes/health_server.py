"""Fake ringbolt process for the deploy test: serves GET /healthz on ADDR.

usage: health_server.py ADDR STATUS [HEALTHY_AFTER_SECONDS]
Answers 503 until HEALTHY_AFTER_SECONDS have passed, then STATUS (200 or 500).
Exits by itself after 120 s so a crashed test never leaves it behind.
"""
import http.server
import sys
import threading
import time

host, port = sys.argv[1].rsplit(":", 1)
status = int(sys.argv[2])
ready_at = time.monotonic() + (float(sys.argv[3]) if len(sys.argv) > 3 else 0.0)


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (http.server API)
        code = 404
        if self.path == "/healthz":
            code = status if time.monotonic() >= ready_at else 503
        self.send_response(code)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


http.server.HTTPServer.allow_reuse_address = True
server = http.server.HTTPServer((host, int(port)), Handler)
threading.Timer(120, server.shutdown).start()
server.serve_forever()
