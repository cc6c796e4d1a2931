"""End to end with a real JupyterHub and configurable-http-proxy on loopback, in both modes.

The hub (examples/jupyterhub_config_local.py) spawns scripts/entrypoint-jupyterhub.sh as alice's
default server with SimpleLocalProcessSpawner; the IDE is the stand-in
tests/resources/fake_waiide.py (echo JSON, /ws echo). Every test runs once per mode (full:
jupyterhub-singleuser + jupyter-server-proxy on the hub's port; lightweight: the gateway there),
in any order, against one hub per mode and its running server (see conftest.py).

Scenarios:
 1. The hub starts; spawning alice's server through the REST API becomes ready, with every
    component of the mode running and answering the hub's readiness URL.
 2. alice logs in through the hub's login form and reaches /user/alice/WAIIDE/ (the README's): the
    stand-in gets the request with {prefix}WAIIDE stripped; a visitor without login does not.
 3. A WebSocket through the hub at {prefix}WAIIDE/ws, with alice's login cookies, echoes and
    keeps the subprotocol; without them the upgrade is refused.
 4. {prefix}api/status answers through the hub (full: Jupyter's, needs auth; lightweight: the
    gateway's), and so does the gateway's own /api/status on API_SERVER_PORT.
 5. Hub auth on the gateway port: alice's token is admitted, bob's refused with 403, none 401
    (HTTP and WebSocket upgrade); the token and hub cookies do not reach WAIIDE.
 6. Activity through the gateway port reaches the hub's users API.
 7. A WebSocket on the gateway port carrying only VS Code KeepAlive/Ack frames does not move
    last_activity, nor does opening it; a real message on the same socket does (no IDE extension
    has reported here, so messages count as they did before it: gateway.activity.classify).
 8. Hub credentials sent through the hub (login cookies, a token) do not reach WAIIDE.
 9. Stopping the server through the hub leaves none of its processes and no status record.
10. The server's log (relayed into the hub's) shows no error, and every child stopped
    gracefully when the hub stopped the server.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import psutil
import pytest
from yarl import URL

from tests.e2e.conftest import ServerSlot
from tests.e2e.hub import BROWSER_ACCEPT, HubProcess, browser_session, login
from tests.e2e.servers import STOP_TIMEOUT_S, WaiideServer, stop, wait_gateway_healthy

pytestmark = pytest.mark.slow  # a real JupyterHub per mode, servers spawned through it

IDE = "WAIIDE"
VSCODE_KEEPALIVE = bytes([9]) + bytes(12)  # 13-byte header, type 9, empty body
VSCODE_ACK = bytes([3]) + bytes(12)
HTTP_TIMEOUT = aiohttp.ClientTimeout(total=20)


def header_names(echo: dict[str, Any]) -> set[str]:
    return {name.lower() for name, _ in echo["headers"]}


def cookie_names(echo: dict[str, Any]) -> set[str]:
    names: set[str] = set()
    for name, value in echo["headers"]:
        if name.lower() == "cookie":
            names.update(part.split("=", 1)[0].strip() for part in value.split(";"))
    return names


def token_header(token: str) -> dict[str, str]:
    return {"Authorization": f"token {token}"}


def component_names(server: WaiideServer) -> set[str]:
    names: set[str] = set()
    for info in server.snapshot():
        if not info.alive():
            continue
        if "fake_waiide.py" in info.cmdline:
            names.add("waiide")
        elif "jupyterhub.singleuser" in info.cmdline:
            names.add("singleuser")
        elif "-m gateway" in info.cmdline:
            names.add("gateway")
        elif "-m monitor" in info.cmdline:
            names.add("monitor")
    return names


async def wait_activity_after(hub: HubProcess, after: datetime, timeout_s: float) -> datetime:
    """Poll the users API until servers.waiide.last_activity >= `after`; the value seen."""
    deadline = time.monotonic() + timeout_s
    seen = None
    while time.monotonic() < deadline:
        seen = await asyncio.to_thread(hub.api.last_activity)
        if seen >= after:
            return seen
        await asyncio.sleep(0.2)
    raise hub.fail(f"last_activity stayed at {seen}, not >= {after}, for {timeout_s}s")


def now_utc() -> datetime:
    # The hub stores microseconds; keep a margin for the sub-millisecond clock reads.
    return datetime.now(UTC) - timedelta(milliseconds=5)


# ---- 1 -----------------------------------------------------------------------------------------
async def test_server_spawns_and_is_ready(hub: HubProcess, server: WaiideServer) -> None:
    model = await asyncio.to_thread(hub.api.server, "alice")
    assert model is not None and model["ready"] and not model["pending"]
    assert model["url"] == server.prefix == "/user/alice/"  # the default server, as the README says
    # The spawner ran the project's entrypoint, which said what it decided and exec'd the
    # supervisor, whose children are the components of this mode.
    assert (f"waiide-hub entrypoint: starting WAIIDE Hub ({hub.mode} mode, under JupyterHub as "
            f"alice at {server.prefix})") in hub.log.read_text(errors="replace")
    assert psutil.Process(server.pid).cmdline()[-1].endswith("supervisor_main.py")
    expected = {"waiide", "gateway", "monitor"} | ({"singleuser"} if hub.mode == "full" else set())
    # The hub calls a lightweight server ready when the gateway answers on PORT; the supervisor
    # starts the monitor after that (its readiness needs the gateway), so it may come a moment
    # later.
    deadline = time.monotonic() + 30
    while (names := component_names(server)) != expected and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    assert names == expected
    # What the hub polled before it called the server ready, now through its proxy.
    async with aiohttp.ClientSession(timeout=HTTP_TIMEOUT) as session, \
            session.get(f"{server.public_url}api") as resp:
        assert resp.status == 200
        assert "version" in await resp.json()
        assert resp.headers.get("X-JupyterHub-Version")


# ---- 2 -----------------------------------------------------------------------------------------
async def test_login_form_reaches_waiide(hub: HubProcess, server: WaiideServer) -> None:
    async with browser_session() as session:
        resp = await login(session, hub.url, "alice", f"{server.prefix}{IDE}/")
        async with resp:
            assert resp.status == 200, await resp.text()
            assert str(resp.url) == f"{server.public_url}{IDE}/"
            hops = [str(r.url) for r in resp.history]
            echo = await resp.json(content_type=None)
        # The hub's OAuth for this server took place (the server's own client).
        assert any("/hub/api/oauth2/authorize" in hop for hop in hops), hops
        assert any(f"{server.prefix}oauth_callback" in hop for hop in hops), hops
        assert echo["method"] == "GET"
        assert echo["raw_path"] == "/"  # {prefix}WAIIDE stripped in both modes
        assert any(c.key == "jupyterhub-user-alice" for c in session.cookie_jar)

        # encoded=True: yarl would otherwise send %2F in a query as "/".
        target = URL(f"{server.public_url}{IDE}/some/file%20name.txt?q=1&b=%2F", encoded=True)
        async with session.get(target, headers={"Accept": BROWSER_ACCEPT}) as resp:
            assert resp.status == 200
            echo = await resp.json(content_type=None)
        assert echo["raw_path"] == "/some/file%20name.txt?q=1&b=%2F"

    # Without a login: sent to the hub's login, never to the IDE.
    async with aiohttp.ClientSession(timeout=HTTP_TIMEOUT) as anonymous, \
            anonymous.get(f"{server.public_url}{IDE}/", allow_redirects=False,
                          headers={"Accept": BROWSER_ACCEPT}) as resp:
        assert resp.status == 302
        assert "/hub/" in resp.headers["Location"]


# ---- 3 -----------------------------------------------------------------------------------------
async def test_websocket_through_hub(hub: HubProcess, server: WaiideServer) -> None:
    async with browser_session() as session:
        resp = await login(session, hub.url, "alice", f"{server.prefix}{IDE}/")
        async with resp:
            assert resp.status == 200
        async with session.ws_connect(f"{server.public_url}{IDE}/ws",
                                      protocols=("chosen",), heartbeat=None) as ws:
            assert ws.protocol == "chosen"
            await ws.send_str("hello through the hub")
            assert (await ws.receive_str(timeout=10)) == "hello through the hub"
            await ws.send_bytes(b"\x00\x01binary\xff")
            assert (await ws.receive_bytes(timeout=10)) == b"\x00\x01binary\xff"
            await ws.send_str("info")
            info = json.loads(await ws.receive_str(timeout=10))
            assert info["subprotocol"] == "chosen"

    async with aiohttp.ClientSession(timeout=HTTP_TIMEOUT) as anonymous:
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await anonymous.ws_connect(f"{server.public_url}{IDE}/ws")
        assert refused.value.status in (401, 403)


# ---- 4 -----------------------------------------------------------------------------------------
async def test_status_through_hub_and_on_gateway_port(hub: HubProcess, server: WaiideServer,
                                                     tokens: dict[str, str]) -> None:
    body = await asyncio.to_thread(wait_gateway_healthy, server)
    expected = {"waiide", "gateway"} | ({"singleuser"} if hub.mode == "full" else set())
    assert expected <= set(body["components"]), body
    assert all(body["components"][name]["state"] == "up" for name in expected), body

    url = f"{server.public_url}api/status"
    if hub.mode == "lightweight":
        # The gateway's status JSON, open as on its own port.
        body = await asyncio.to_thread(wait_gateway_healthy, server, url=url)
        assert body["healthy"] is True and "waiide" in body["components"]
        return
    # Full mode: jupyter_server's status, which needs a credential for this server.
    async with aiohttp.ClientSession(timeout=HTTP_TIMEOUT) as session:
        async with session.get(url) as resp:
            assert resp.status == 403
        async with session.get(url, headers=token_header(tokens["alice"])) as resp:
            assert resp.status == 200
            status = await resp.json()
    assert {"connections", "kernels", "last_activity", "started"} <= set(status)


# ---- 5 -----------------------------------------------------------------------------------------
async def test_gateway_port_requires_hub_token_of_this_user(server: WaiideServer,
                                                          tokens: dict[str, str]) -> None:
    url = f"{server.gateway_url}/echo/path?x=1"
    cookies = {"Cookie": "jupyterhub-session-id=s3cret; editor-theme=dark"}
    async with aiohttp.ClientSession(timeout=HTTP_TIMEOUT) as session:
        async with session.get(url, headers={**token_header(tokens["alice"]), **cookies}) as resp:
            assert resp.status == 200
            echo = await resp.json()
        assert echo["raw_path"] == "/echo/path?x=1"
        # The hub token and the hub's cookie stay at the gateway; the IDE's own cookie passes.
        assert "authorization" not in header_names(echo), echo
        assert tokens["alice"] not in json.dumps(echo)
        assert cookie_names(echo) == {"editor-theme"}, echo

        async with session.get(url, headers=token_header(tokens["bob"])) as resp:
            assert resp.status == 403
        async with session.get(url) as resp:
            assert resp.status == 401
        async with session.get(url, headers=token_header("not-a-hub-token")) as resp:
            assert resp.status == 403

        ws_url = f"{server.gateway_url}/ws"
        async with session.ws_connect(ws_url, headers=token_header(tokens["alice"]),
                                      protocols=("chosen",), heartbeat=None) as ws:
            assert ws.protocol == "chosen"
            await ws.send_str("hello through the gateway")
            assert (await ws.receive_str(timeout=10)) == "hello through the gateway"
        for headers, status in ((token_header(tokens["bob"]), 403), ({}, 401)):
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await session.ws_connect(ws_url, headers=headers)
            assert refused.value.status == status


# ---- 6 -----------------------------------------------------------------------------------------
async def test_gateway_activity_reaches_hub(hub: HubProcess, server: WaiideServer,
                                            tokens: dict[str, str]) -> None:
    before = await asyncio.to_thread(hub.api.last_activity)
    used_at = now_utc()
    assert used_at > before
    async with aiohttp.ClientSession(timeout=HTTP_TIMEOUT) as session, \
            session.get(f"{server.gateway_url}/some/file",
                        headers=token_header(tokens["alice"])) as resp:
        assert resp.status == 200
    # Only this request can be newer than `used_at`: nothing else touches the server now.
    seen = await wait_activity_after(hub, used_at, 6 * hub.activity_interval_s + 5)
    assert seen > before


# ---- 7 -----------------------------------------------------------------------------------------
async def test_keepalive_frames_do_not_count_as_activity(hub: HubProcess, server: WaiideServer,
                                                         tokens: dict[str, str]) -> None:
    interval = hub.activity_interval_s
    # Every report is due within 1.1 intervals (10 % jitter); wait a little more than that.
    settle_s = 1.5 * interval + 0.5
    async with aiohttp.ClientSession(timeout=HTTP_TIMEOUT) as session:
        # A plain request (a non-browser client) is use: let its report land, then settle.
        used_at = now_utc()
        async with session.get(f"{server.gateway_url}/some/file",
                               headers=token_header(tokens["alice"])) as resp:
            assert resp.status == 200
        await wait_activity_after(hub, used_at, 6 * interval + 5)
        async with session.ws_connect(f"{server.gateway_url}/ws", heartbeat=None,
                                      headers=token_header(tokens["alice"])) as ws:
            # Opening a socket is not use (an idle tab reconnects by itself).
            await asyncio.sleep(settle_s)
            baseline = await asyncio.to_thread(hub.api.last_activity)

            # An idle VS Code tab: KeepAlive and Ack frames only, for three intervals.
            quiet_until = time.monotonic() + 3 * interval
            while time.monotonic() < quiet_until:
                for frame in (VSCODE_KEEPALIVE, VSCODE_ACK):
                    await ws.send_bytes(frame)
                    assert (await ws.receive_bytes(timeout=10)) == frame
                await asyncio.sleep(0.2)
            await asyncio.sleep(settle_s)
            after_keepalives = await asyncio.to_thread(hub.api.last_activity)
            assert after_keepalives == baseline, (
                "VS Code keepalive frames moved last_activity "
                f"from {baseline} to {after_keepalives}")

            # The same socket with one real message does count (so the check above can fail).
            typed_at = now_utc()
            await ws.send_bytes(bytes([1]) + bytes(12) + b"user typed")
            await ws.receive_bytes(timeout=10)
            await wait_activity_after(hub, typed_at, 6 * interval + 5)


# ---- 8 -----------------------------------------------------------------------------------------
async def test_hub_credentials_do_not_reach_waiide_through_hub(
        hub: HubProcess, server: WaiideServer, tokens: dict[str, str]) -> None:
    """DESIGN.md, security stance: "Hub tokens and cookies are not forwarded to WAIIDE".

    A logged-in browser sends the hub's cookies (jupyterhub-session-id, and this server's
    jupyterhub-user-alice-waiide, which carries the OAuth access token); an API client sends
    `Authorization: token`. WAIIDE is the user's shell and may log or leak what it gets.
    """
    async with browser_session() as session:
        resp = await login(session, hub.url, "alice", f"{server.prefix}{IDE}/")
        async with resp:
            assert resp.status == 200
        async with session.get(f"{server.public_url}{IDE}/after-login",
                               headers=token_header(tokens["alice"])) as resp:
            assert resp.status == 200
            echo = await resp.json(content_type=None)
    assert echo["raw_path"] == "/after-login"
    hub_cookies = sorted(n for n in cookie_names(echo) if n.startswith("jupyterhub-"))
    authorization = [v for k, v in echo["headers"] if k.lower() == "authorization"]
    where = ("through jupyter-server-proxy, which copies every request header "
             "(supervisor/jupyter.py proxy_config: no header filtering)"
             if hub.mode == "full" else "through the gateway on PORT")
    assert not hub_cookies and not authorization, (
        f"{hub.mode} mode: WAIIDE received hub credentials {where}: "
        f"cookies {hub_cookies}, Authorization {authorization}")


# ---- 9 -----------------------------------------------------------------------------------------
async def test_stop_through_hub_leaves_no_processes(hub: HubProcess,
                                                    server: WaiideServer) -> None:
    procs = server.snapshot()
    assert len([p for p in procs if p.alive()]) >= 4, procs
    record = Path("/dev/shm") / f"waiide-hub-{os.getuid()}-{server.api_port}.status"
    record_expected = record.parent.is_dir()
    if record_expected:
        assert record.exists(), f"no status record at {record} while running"

    status, alive = await asyncio.to_thread(stop, server)
    assert status in (202, 204)
    assert not alive, f"still running {STOP_TIMEOUT_S}s after DELETE: {alive}"
    if record_expected:
        assert not record.exists(), f"the status record {record} was left behind"
    async with aiohttp.ClientSession(timeout=HTTP_TIMEOUT) as session:
        with pytest.raises(aiohttp.ClientConnectionError):
            await session.get(f"{server.gateway_url}/api/healthz")


# ---- 10 ----------------------------------------------------------------------------------------
SERVER_PREFIXES = ("[gateway]", "[monitor]", "[waiide]", "[singleuser]")
BAD_SERVER_LINE = re.compile(r"Traceback \(most recent call last\)|\bERROR\b|\[E ")
BAD_SUPERVISOR_LINE = re.compile(
    r" (WARNING|ERROR|CRITICAL) |did not stop|exit code [1-9]|signal SIG")


def server_log_problems(log: str) -> list[str]:
    """Lines of the server's own output (relayed by the supervisor into the hub's log) that
    show something went wrong: tracebacks, errors, supervisor warnings, unclean exits."""
    problems = []
    for line in log.splitlines():
        ours = line.startswith(SERVER_PREFIXES) and BAD_SERVER_LINE.search(line)
        supervisor = "[supervisor]" in line and BAD_SUPERVISOR_LINE.search(line)
        if ours or supervisor:
            problems.append(line)
    return problems


def test_server_ran_and_stopped_cleanly(hub: HubProcess, server_slot: ServerSlot) -> None:
    """Everything above is normal use: no component may log an error, and the stop through
    the hub must end every child gracefully (SIGTERM, exit 0), not by the SIGKILL deadline.

    After the other tests this checks the servers they ran (without spawning another); on its
    own it runs a server first, so there is always a run and a stop to check."""
    if server_slot.current is None:
        server_slot.running()
    server_slot.stop()
    problems = server_log_problems(hub.log.read_text(errors="replace"))
    assert not problems, (
        f"{len(problems)} problem line(s) in the server's log ({hub.log}):\n"
        + "\n".join(problems[:40]))
