"""CPU time to read one request head: Sanic's own `Http` against the gateway's `StrictHttp`.

    .venv/bin/python bench/head_cost.py

Both readers run in-process on the same bytes (a 2-line wrk GET and an 876-byte browser GET),
with Sanic's touch-up applied as in a served app, interleaved over rounds; the timer is the
process's CPU time, so a busy machine inflates both sides alike rather than the one that happened
to be descheduled. Prints the minimum over rounds, in microseconds per head.
"""

from __future__ import annotations

import sys
import time
import timeit
from collections.abc import Callable
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sanic.http import Http
from sanic.touchup import TouchUp

from gateway.app import create_app
from gateway.config import GatewayConfig
from gateway.edge.protocol import StrictHttp, edge_guard

WRK_GET = b"GET /f1k HTTP/1.1\r\nHost: 127.0.0.1:8091\r\n\r\n"
BROWSER_GET = (
    b"GET /stable-53c2f325/static/out/vs/workbench/workbench.web.main.js?v=1 HTTP/1.1\r\n"
    b"Host: 127.0.0.1:8091\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 "
    b"(KHTML, like Gecko) Chrome/126.0 Safari/537.36\r\nAccept: text/html,application/xhtml+xml,"
    b"application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8\r\nAccept-Language: en-US,en;q=0.9\r\n"
    b"Accept-Encoding: gzip, deflate, br\r\nConnection: keep-alive\r\nCookie: " + b"k=v; " * 60
    + b"z=1\r\nSec-Fetch-Dest: document\r\nSec-Fetch-Mode: navigate\r\nSec-Fetch-Site: none\r\n"
    b"Upgrade-Insecure-Requests: 1\r\nCache-Control: max-age=0\r\n"
    b"Referer: http://127.0.0.1:8091/\r\n\r\n")
ROUNDS = 7
PER_ROUND = 20_000


class _Protocol:
    """What the two readers use of Sanic's HttpProtocol, with the head already buffered."""

    def __init__(self, app: Any) -> None:
        self.recv_buffer = bytearray()
        self.app = app
        self.request_class = app.request_class
        self.transport = None
        self.state = {"requests_count": 0}
        self.request_max_size = 10**8
        self.guard = edge_guard(app)
        self.evicted = False

    async def send(self, data: bytes) -> None:
        raise AssertionError("a head reader must not write")

    async def receive_more(self) -> None:
        raise AssertionError("the whole head is buffered")


def _reader(app: Any, cls: type[Http], head: bytes) -> Callable[[], None]:
    protocol = _Protocol(app)
    http = cls(protocol)

    def once() -> None:
        protocol.recv_buffer += head
        http.init_for_request()  # type: ignore[no-untyped-call]
        try:
            http.http1_request_header().send(None)  # type: ignore[no-untyped-call]
        except StopIteration:
            pass

    return once


def main() -> int:
    app = create_app(GatewayConfig.from_env({"GATEWAY_TOKEN": "t"}))
    # What Sanic does to Http's methods when it serves the app:
    TouchUp.run(app)  # type: ignore[no-untyped-call]
    for label, head in (("2-line wrk GET", WRK_GET), ("876-byte browser GET", BROWSER_GET)):
        best: dict[str, float] = {}
        for _ in range(ROUNDS):
            for name, cls in (("sanic Http", Http), ("StrictHttp", StrictHttp)):
                timer = timeit.Timer(_reader(app, cls, head), timer=time.process_time)
                took = timer.timeit(PER_ROUND) / PER_ROUND * 1e6
                best[name] = min(best.get(name, took), took)
        print(f"{label}: " + ", ".join(f"{k} {v:.2f} us" for k, v in best.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
