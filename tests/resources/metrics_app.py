"""A stand-in gateway worker for the metrics tests: records what it is told, serves render().

    PROMETHEUS_MULTIPROC_DIR=DIR python metrics_app.py --port N [--record PATH]

Several of these share one multiprocess directory like the workers of one gateway; each can
serve the merged `/metrics`. Routes:

  GET  /metrics            gateway.metrics.GatewayMetrics.render()
  POST /traffic            JSON {"requests": [[method, route_class, status, bytes_in, bytes_out,
                           count], ...], "in_flight": {"proxy": n}, "ws_open": n,
                           "ws_messages": {"in": n, "out": n}, "upstream_errors": {"timeout": n}}
  POST /mark-dead/PID      gateway.metrics.mark_process_dead(PID, DIR)
"""

from __future__ import annotations

import argparse
import json
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from gateway.metrics import GatewayMetrics, mark_process_dead
from monitor.record import RecordReader

METRICS: GatewayMetrics
MULTIPROC_DIR = os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def apply_traffic(metrics: GatewayMetrics, doc: dict[str, Any]) -> None:
    for method, route_class, status, bytes_in, bytes_out, count in doc.get("requests", []):
        for _ in range(count):
            token = metrics.request_started(route_class)
            metrics.request_finished(token, method, route_class, status, bytes_in, bytes_out)
    for route_class, n in doc.get("in_flight", {}).items():
        for _ in range(n):
            metrics.request_started(route_class)  # never finished: stays in flight
    for _ in range(doc.get("ws_open", 0)):
        metrics.websocket_opened()
    for direction, n in doc.get("ws_messages", {}).items():
        metrics.websocket_messages(direction, n)
    for kind, n in doc.get("upstream_errors", {}).items():
        for _ in range(n):
            metrics.upstream_error(kind)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        if self.path == "/metrics":
            body, content_type = METRICS.render()
            self._send(200, body, content_type)
        else:
            self._send(404, b"", "text/plain")

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        data = self.rfile.read(length)
        if self.path == "/traffic":
            apply_traffic(METRICS, json.loads(data))
        elif self.path.startswith("/mark-dead/"):
            mark_process_dead(int(self.path.rsplit("/", 1)[-1]), MULTIPROC_DIR)
        else:
            self._send(404, b"", "text/plain")
            return
        self._send(200, json.dumps({"pid": os.getpid()}).encode(), "application/json")

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def main() -> None:
    global METRICS
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--record")
    args = parser.parse_args()
    reader = RecordReader(Path(args.record)) if args.record else None
    METRICS = GatewayMetrics(multiproc_dir=MULTIPROC_DIR, status_reader=reader)
    ThreadingHTTPServer.daemon_threads = True
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.serve_forever(poll_interval=0.1)


if __name__ == "__main__":
    main()
