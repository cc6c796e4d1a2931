"""A switchable fake of every endpoint the monitor probes, on one loopback port (or unix socket).

    python health_upstream.py --port N [--mode up] [--slow-s 2]
    python health_upstream.py --socket PATH

It answers the IDE health route (/healthz), the single-user version route (any path ending in
/api) and the gateway liveness route (/api/healthz). `POST /_mode/<mode>` switches how they all
answer (the control route itself always answers at once):

  up          200, code-server JSON {"status": "alive", ...}
  expired     200, {"status": "expired", "lastHeartbeat": 0}
  wrong-json  200, a body that is not code-server's JSON
  slow        waits --slow-s seconds, then answers like "up"
  error       503
"""

from __future__ import annotations

import argparse
import json
import os
import socketserver
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MODES = ("up", "expired", "wrong-json", "slow", "error")


class _State:
    mode = "up"
    slow_s = 2.0
    hits = 0
    lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass  # quiet: the tests read the monitor's record, not this log

    def do_POST(self) -> None:
        if self.path.startswith("/_mode/"):
            mode = self.path.rsplit("/", 1)[-1]
            if mode not in MODES:
                self._send(400, b"unknown mode")
                return
            _State.mode = mode
            self._send(200, mode.encode())
            return
        self._send(404, b"")

    def do_GET(self) -> None:
        if self.path == "/_hits":
            self._send(200, str(_State.hits).encode())
            return
        with _State.lock:
            _State.hits += 1
        mode = _State.mode
        if mode == "slow":
            time.sleep(_State.slow_s)
        if mode == "error":
            self._send(503, b"unavailable")
        elif mode == "wrong-json":
            self._send(200, b"<html>not the health JSON</html>")
        elif self.path.endswith("/healthz") and self.path != "/api/healthz":
            status = "expired" if mode == "expired" else "alive"
            beat = 0 if mode == "expired" else int(time.time() * 1000)
            self._send(200, json.dumps({"status": status, "lastHeartbeat": beat}).encode())
        else:
            self._send(200, json.dumps({"version": "fake", "pid": os.getpid()}).encode())

    def _send(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class UnixHTTPServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True

    def get_request(self):  # type: ignore[no-untyped-def]
        sock, _ = super().get_request()
        return sock, ("local", 0)  # BaseHTTPRequestHandler wants a (host, port) address


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int)
    parser.add_argument("--socket")
    parser.add_argument("--mode", default="up", choices=MODES)
    parser.add_argument("--slow-s", type=float, default=2.0)
    args = parser.parse_args()
    _State.mode, _State.slow_s = args.mode, args.slow_s
    server: socketserver.BaseServer
    if args.socket:
        server = UnixHTTPServer(args.socket, Handler)
    else:
        ThreadingHTTPServer.allow_reuse_address = True
        ThreadingHTTPServer.daemon_threads = True
        server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.serve_forever(poll_interval=0.1)


if __name__ == "__main__":
    main()
