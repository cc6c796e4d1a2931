"""What counts as use, through a real gateway (2 workers) in front of a real fake WAIIDE.

1. Without credentials /api/activity is refused; with them it answers what counts now.
2. A browser's background fetch is polling; a navigation, a download, an upload and a
   non-browser client are use, each with its cause.
3. Probes and scrapes are counted as ignored traffic, never as use.
4. VS Code's KeepAlive/Ack messages are never use; other messages are use until the IDE
   extension has reported anywhere (any worker), then they are its RPC polling. A notice poll
   alone says the extension runs too (an untouched workbench's extension never reports).
5. The extension's endpoints take only the per-start secret; a report is use with its cause,
   busy work is shown, an unknown cause is refused.
6. The notice endpoint shows the supervisor's plan once its warning time has come.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from common.activity_files import PLAN_FILE, IdlePlan
from tests.conftest import TEST_TOKEN, Server, gateway_process

SECRET = "activity-secret-for-tests"
AUTH = {"Authorization": f"token {TEST_TOKEN}"}
KEEPALIVE = bytes([9]) + bytes(12)
TYPED = bytes([1]) + bytes(12) + b"user typed"


@pytest.fixture()
def activity_gateway(tmp_path: Path, upstream: Server) -> Iterator[tuple[Server, Path]]:
    directory = tmp_path / "activity"
    directory.mkdir()
    env = {"GATEWAY_AUTH": "token", "GATEWAY_TOKEN": TEST_TOKEN,
           "WAIIDE_HUB_ACTIVITY_DIR": str(directory), "WAIIDE_ACTIVITY_SECRET": SECRET}
    with gateway_process(tmp_path, upstream.port, env) as server:
        yield server, directory


def call(server: Server, path: str, *, headers: dict[str, str] | None = None,
         data: bytes | None = None, method: str | None = None) -> tuple[int, bytes]:
    req = urllib.request.Request(f"{server.url}{path}", data=data, headers=headers or {},
                                 method=method)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def activity(server: Server) -> dict[str, Any]:
    status, body = call(server, "/api/activity", headers=AUTH)
    assert status == 200, body
    return json.loads(body)  # type: ignore[no-any-return]


def wait_for(server: Server, check: Callable[[dict[str, Any]], bool],
             timeout_s: float = 10) -> dict[str, Any]:
    """Poll /api/activity over fresh connections (any worker) until `check` holds."""
    deadline = time.monotonic() + timeout_s
    seen = activity(server)
    while not check(seen):
        if time.monotonic() > deadline:
            raise AssertionError(f"/api/activity never matched; last: {seen}")
        time.sleep(0.2)
        seen = activity(server)
    return seen


def report(server: Server, doc: dict[str, Any], secret: str = SECRET) -> int:
    status, _ = call(server, "/api/activity/ide", data=json.dumps(doc).encode(), method="POST",
                     headers={"X-Waiide-Activity-Secret": secret,
                              "Content-Type": "application/json"})
    return status


def test_api_activity_needs_the_servers_credentials(activity_gateway: tuple[Server, Path]) -> None:
    """1."""
    server, _ = activity_gateway
    assert call(server, "/api/activity")[0] == 401
    body = activity(server)
    assert body["last_activity"] is None and body["cause"] is None and body["busy"] is False
    assert body["extension"] == {"seen": False, "last_seen_at": None}
    assert body["self_shutdown"] is None


def test_http_use_by_kind(activity_gateway: tuple[Server, Path]) -> None:
    """2."""
    server, _ = activity_gateway
    poll = {**AUTH, "Sec-Fetch-Mode": "cors", "Sec-Fetch-Site": "same-origin"}
    for _ in range(5):
        assert call(server, "/poll", headers=poll)[0] == 200
    seen = wait_for(server, lambda a: a["ignored_last_60s"].get("http-poll", 0) >= 5)
    assert seen["last_activity"] is None, "a browser's background fetch counted as use"

    navigate = {**AUTH, "Sec-Fetch-Mode": "navigate"}
    cases: list[tuple[str, str, dict[str, str], bytes | None]] = [
        ("http-page", "/page", navigate, None),
        ("http-download", "/huge?size=2000000&cl=1", poll, None),
        ("http-upload", "/upload", poll, b"x" * 1000),
        ("http", "/curl", AUTH, None),
    ]
    for cause, path, headers, data in cases:
        before = time.time()
        assert call(server, path, headers=headers, data=data)[0] == 200
        seen = wait_for(server, lambda a, c=cause: a["cause"] == c)
        assert seen["idle_s"] is not None and seen["idle_s"] <= time.time() - before + 1


def test_probes_and_scrapes_are_ignored(activity_gateway: tuple[Server, Path]) -> None:
    """3."""
    server, _ = activity_gateway
    for path in ("/api/status", "/api/healthz", "/api", "/metrics", "/metrics"):
        call(server, path)
    seen = wait_for(server, lambda a: a["ignored_last_60s"].get("probe", 0) >= 3
                    and a["ignored_last_60s"].get("scrape", 0) >= 2)
    assert seen["last_activity"] is None


def test_vscode_messages_and_the_extension(activity_gateway: tuple[Server, Path]) -> None:
    """4."""
    server, _ = activity_gateway

    async def exchange(*messages: bytes) -> None:
        async with aiohttp.ClientSession() as session, session.ws_connect(
                f"{server.url}/ws", headers=AUTH, heartbeat=None) as ws:
            for message in messages:
                await ws.send_bytes(message)
                assert await ws.receive_bytes(timeout=10) == message

    asyncio.run(exchange(KEEPALIVE, KEEPALIVE))
    seen = wait_for(server, lambda a: a["ignored_last_60s"].get("keepalive", 0) >= 2)
    assert seen["last_activity"] is None, "opening a socket or a keepalive counted as use"
    asyncio.run(exchange(TYPED))
    wait_for(server, lambda a: a["cause"] == "websocket")

    assert report(server, {"v": 1, "session": "a1", "cause": None, "causes": [], "at": None,
                           "busy": []}) == 204  # the extension's first report
    # Every worker learns it through the directory within about a second.
    time.sleep(2.5)
    first = activity(server)["last_activity"]
    for _ in range(4):  # new connections: both workers get some
        asyncio.run(exchange(TYPED))
    seen = wait_for(server, lambda a: a["ignored_last_60s"].get("rpc-poll", 0) >= 4)
    assert seen["last_activity"] == first, "VS Code's own messages counted as use"


def test_a_notice_poll_says_the_extension_runs(activity_gateway: tuple[Server, Path]) -> None:
    """4, with an untouched workbench: its extension polls the notice and never reports."""
    server, _ = activity_gateway

    async def exchange(message: bytes) -> None:
        async with aiohttp.ClientSession() as session, session.ws_connect(
                f"{server.url}/ws", headers=AUTH, heartbeat=None) as ws:
            await ws.send_bytes(message)
            assert await ws.receive_bytes(timeout=10) == message

    status, _ = call(server, "/api/activity/ide/notice",
                     headers={"X-Waiide-Activity-Secret": SECRET})
    assert status == 204
    seen = wait_for(server, lambda a: a["extension"]["seen"])
    assert seen["last_activity"] is None, "a notice poll counted as use"
    time.sleep(2.5)  # every worker learns it through the directory within about a second
    for _ in range(4):  # new connections: both workers get some
        asyncio.run(exchange(TYPED))
    seen = wait_for(server, lambda a: a["ignored_last_60s"].get("rpc-poll", 0) >= 4)
    assert seen["last_activity"] is None, "an untouched workbench's RPC polling counted as use"


def ide_report(session: str, causes: list[str], at: float | None,
               busy: list[dict[str, str]] | None = None) -> dict[str, Any]:
    """A report as ide-extension/waiide-activity/CONTRACT.md defines it."""
    return {"v": 1, "session": session, "cause": causes[-1] if causes else None,
            "causes": causes, "at": at, "busy": busy or [], "busy_ttl_s": 90}


def test_extension_reports(activity_gateway: tuple[Server, Path]) -> None:
    """5."""
    server, _ = activity_gateway
    now = time.time()
    assert report(server, ide_report("a1", ["editor"], now), secret="wrong") == 403
    assert call(server, "/api/activity/ide", data=b"{}", method="POST")[0] == 403
    assert activity(server)["last_activity"] is None
    assert report(server, ide_report("a1", ["typing-furiously"], now)) == 400
    assert report(server, {"v": 1, "session": "a1", "at": "yesterday"}) == 400
    assert report(server, ide_report("a1", ["editor", "terminal-input"], now - 30)) == 204
    seen = wait_for(server, lambda a: a["cause"] == "terminal-input" and a["extension"]["seen"])
    assert 25 <= seen["idle_s"] <= 40, "`at` in the past is when the use happened"
    # An `at` from the future (a skewed clock) is taken as now, never later.
    assert report(server, ide_report("a1", ["input"], now + 3600)) == 204
    wait_for(server, lambda a: a["cause"] == "input" and a["idle_s"] < 10)

    sleeping = [{"kind": "terminal", "name": "sleep 300"}]
    assert report(server, ide_report("tab-1", [], None, sleeping)) == 204
    assert report(server, ide_report("tab-2", [], None, [])) == 204  # another tab: not busy
    # Workers see each other's reports within about a second (the activity directory).
    seen = wait_for(server, lambda a: a["busy"] and a["cause"] == "input")
    assert seen["busy_work"] == sleeping, "one tab's empty list cleared another tab's busy work"
    assert report(server, ide_report("tab-1", [], None, [])) == 204  # the command ended
    wait_for(server, lambda a: not a["busy"], timeout_s=15)


def test_notice_follows_the_plan(activity_gateway: tuple[Server, Path]) -> None:
    """6."""
    server, directory = activity_gateway
    notice = "/api/activity/ide/notice"
    secret = {"X-Waiide-Activity-Secret": SECRET}
    assert call(server, notice)[0] == 403
    assert call(server, notice, headers=secret)[0] == 204
    now = time.time()
    plan = IdlePlan(idle_timeout_s=600, warning_s=300, busy_counts=True, warn_at=now + 3600,
                    stops_at=now + 3900, updated_at=now)
    (directory / PLAN_FILE).write_bytes(plan.to_json())
    assert call(server, notice, headers=secret)[0] == 204  # not yet time to warn
    plan = IdlePlan(idle_timeout_s=600, warning_s=300, busy_counts=True, warn_at=now - 1,
                    stops_at=now + 230, updated_at=now)
    (directory / PLAN_FILE).write_bytes(plan.to_json())
    status, body = call(server, notice, headers=secret)
    assert status == 200
    got = json.loads(body)
    assert got == {"id": f"idle-{plan.stops_at:.0f}", "stops_at": plan.stops_at,
                   "message": "This server stops in 4 minutes because nobody used it."}
    shown = activity(server)["self_shutdown"]
    assert shown["idle_timeout_s"] == 600 and shown["stops_at"] is not None


async def test_busy_work_is_posted_to_the_hub_as_use(tmp_path: Path) -> None:
    """7. While busy work counts, the hub gets "now" (its culler must not stop a running job);
    without busy work, or when it does not count, only real use is posted."""
    from aiohttp import web

    from common.activity_files import BusyWork
    from gateway.activity.hub import ActivityReporter
    from gateway.activity.state import ActivityState

    posts: list[dict[str, Any]] = []

    async def record(request: web.Request) -> web.Response:
        posts.append(await request.json())
        return web.Response(status=200)

    app = web.Application()
    app.router.add_post("/activity", record)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        for busy_counts, expect_post in ((False, False), (True, True)):
            state = ActivityState(tmp_path)
            state.use("editor", time.time() - 3600)
            reporter = ActivityReporter(state, url=f"http://127.0.0.1:{port}/activity",
                                        token="t", server_name="", interval_s=300,
                                        directory=tmp_path, busy_counts=busy_counts)
            reporter.start()
            try:
                assert await reporter.flush()  # the hour-old use goes out once
                assert not await reporter.flush()  # nothing newer
                state.extension_report("tab", (BusyWork("terminal", "sleep 300"),), 90)
                before = time.time()
                assert await reporter.flush() is expect_post
                if expect_post:
                    stamp = posts[-1]["last_activity"]
                    assert stamp >= time.strftime("%Y-%m-%dT%H:%M", time.gmtime(before))
            finally:
                await reporter.stop()
    finally:
        await runner.cleanup()
    assert len(posts) == 3
