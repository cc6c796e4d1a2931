"""A bounded load for the gateway in front of the fake IDE, shaped to touch every metric.

A few hundred requests at a fixed concurrency, and nothing else: proxied GETs and uploads,
answers the IDE makes 4xx/5xx (/status/CODE), requests the gateway times out (/slow, so
upstream timeouts and 504s), the gateway's own /api routes, and WebSockets that exchange
messages and close. Every request has a deadline; the whole run takes a few seconds.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import aiohttp

CONCURRENCY = 16
REQUEST_TIMEOUT_S = 15.0
PROXIED_GETS = 300
IDE_503S = 40
IDE_404S = 20
UPLOADS = 20
UPLOAD_BYTES = 64 * 1024
SLOW_REQUESTS = 2
SLOW_DELAY_S = 2.0  # above the gateway's GATEWAY_READ_TIMEOUT=1 in these tests
API_ROUNDS = 10
API_PATHS = ("/api", "/api/status", "/api/services")
WEBSOCKETS = 2
WS_MESSAGES = 5


@dataclass
class LoadReport:
    """What the load got back: (kind of request, HTTP status) counts, WebSocket echoes."""

    statuses: collections.Counter[tuple[str, int]] = field(default_factory=collections.Counter)
    ws_echoes: int = 0

    @property
    def requests(self) -> int:
        return sum(self.statuses.values())

    def of(self, kind: str) -> dict[int, int]:
        """Status counts of one kind of request."""
        return {status: n for (k, status), n in self.statuses.items() if k == kind}


async def _request(session: aiohttp.ClientSession, report: LoadReport, kind: str, method: str,
                   url: str, data: bytes | None = None) -> None:
    async with session.request(method, url, data=data) as resp:
        await resp.read()
        report.statuses[(kind, resp.status)] += 1


async def _websocket(session: aiohttp.ClientSession, report: LoadReport, url: str) -> None:
    async with session.ws_connect(url, heartbeat=None) as ws:
        for i in range(WS_MESSAGES):
            await ws.send_str(f"message {i}")
            msg = await ws.receive(timeout=REQUEST_TIMEOUT_S)
            if msg.type == aiohttp.WSMsgType.TEXT and msg.data == f"message {i}":
                report.ws_echoes += 1
        await ws.close()


def _plan(base: str, session: aiohttp.ClientSession,
          report: LoadReport) -> list[Callable[[], Awaitable[None]]]:
    def req(kind: str, method: str, path: str,
            data: bytes | None = None) -> Callable[[], Awaitable[None]]:
        return lambda: _request(session, report, kind, method, base + path, data)

    jobs = [req("get", "GET", f"/load/{i}?n={i}") for i in range(PROXIED_GETS)]
    jobs += [req("ide-503", "GET", "/status/503") for _ in range(IDE_503S)]
    jobs += [req("ide-404", "GET", "/status/404") for _ in range(IDE_404S)]
    jobs += [req("upload", "POST", "/upload", b"x" * UPLOAD_BYTES) for _ in range(UPLOADS)]
    jobs += [req("slow", "GET", f"/slow?delay={SLOW_DELAY_S}") for _ in range(SLOW_REQUESTS)]
    jobs += [req(path, "GET", path) for _ in range(API_ROUNDS) for path in API_PATHS]
    ws_url = base.replace("http://", "ws://", 1) + "/ws"
    jobs += [lambda: _websocket(session, report, ws_url) for _ in range(WEBSOCKETS)]
    return jobs


async def _run(base: str) -> LoadReport:
    report = LoadReport()
    limit = asyncio.Semaphore(CONCURRENCY)
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
    async with aiohttp.ClientSession(timeout=timeout) as session:

        async def bounded(job: Callable[[], Awaitable[None]]) -> None:
            async with limit:
                await job()

        await asyncio.gather(*(bounded(job) for job in _plan(base, session, report)))
    return report


def generate(base_url: str) -> LoadReport:
    """Run the whole load against `base_url` (the gateway) and return what came back."""
    return asyncio.run(_run(base_url))


def burst(base_url: str, path: str, count: int) -> LoadReport:
    """`count` GETs of `path`, one at a time (e.g. while the IDE restarts), kind = `path`."""

    async def run() -> LoadReport:
        report = LoadReport()
        async with aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)) as session:
            for _ in range(count):
                await _request(session, report, path, "GET", base_url + path)
        return report

    return asyncio.run(run())
