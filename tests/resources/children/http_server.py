"""Stand-in HTTP server for WAIIDE or the gateway: answers every GET with 200 and a JSON body.

    http_server.py (--port N | --port-env VAR | --socket PATH) [--name NAME] [--record FILE]
                   [--ready-after S] [--hang-after S] [--exit-after S --exit-code N]

--ready-after: listen only after S seconds (a slow IDE). --hang-after: after S seconds keep the
connection open but never answer (a hung gateway). The body is {"name", "pid", "path"}, so a test
can tell which process answered through a proxy.
"""

from __future__ import annotations

import argparse
import json
import os
import socketserver
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from childlib import cap_lifetime, record_start

STARTED = time.monotonic()


class Handler(BaseHTTPRequestHandler):
    server_version = "stand-in/1"
    options = argparse.Namespace()

    def do_GET(self) -> None:
        options = self.options
        if options.hang_after is not None and time.monotonic() - STARTED > options.hang_after:
            time.sleep(3600)  # hung: the connection stays open, no answer ever comes
        body = json.dumps({"name": options.name, "pid": os.getpid(), "path": self.path,
                           "internal": self.headers.get("X-Waiide-Hub-Internal")}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        print(f"{self.command} {self.path}", flush=True)


class UnixHTTPServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True

    def get_request(self):  # type: ignore[no-untyped-def]
        conn, _ = super().get_request()
        return conn, ("unix", 0)  # BaseHTTPRequestHandler expects a (host, port) address


def main() -> None:
    cap_lifetime()
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int)
    parser.add_argument("--port-env")
    parser.add_argument("--socket")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--name", default="stand-in")
    parser.add_argument("--record")
    parser.add_argument("--ready-after", type=float, default=0.0)
    parser.add_argument("--hang-after", type=float)
    parser.add_argument("--exit-after", type=float)
    parser.add_argument("--exit-code", type=int, default=1)
    options = parser.parse_args()
    record_start(options.record, name=options.name)
    time.sleep(options.ready_after)
    server: socketserver.BaseServer
    if options.socket:
        server = UnixHTTPServer(options.socket, Handler)
        where = options.socket
    else:
        port = options.port if options.port is not None else int(os.environ[options.port_env])
        ThreadingHTTPServer.daemon_threads = True
        server = ThreadingHTTPServer((options.host, port), Handler)
        where = f"{options.host}:{port}"
    Handler.options = options
    print(f"{options.name} listening on {where}", flush=True)
    if options.exit_after is not None:
        threading.Timer(options.exit_after, os._exit, [options.exit_code]).start()
    server.serve_forever()


if __name__ == "__main__":
    main()
