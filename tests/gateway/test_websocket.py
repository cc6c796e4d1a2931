"""WebSockets through the gateway: WAIIDE's handshake, faithful messages and close codes."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os

import aiohttp
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.conftest import Server

MIB = 1024 * 1024


def ws_url(server: Server, path: str = "/ws") -> str:
    return f"ws://127.0.0.1:{server.port}{path}"


def open_ws(server: Server, path: str = "/ws", **kw: object):  # type: ignore[no-untyped-def]
    kw.setdefault("max_size", None)
    kw.setdefault("compression", None)
    kw.setdefault("open_timeout", 10)
    kw.setdefault("proxy", None)
    return connect(ws_url(server, path), **kw)  # type: ignore[arg-type]


async def test_text_and_binary_messages_pass_unchanged(gateway: Server) -> None:
    async with open_ws(gateway) as ws:
        for text in ("hello", "ünïcødé ✓", "x" * 70_000):
            await ws.send(text)
            assert await ws.recv() == text
        for blob in (b"\x00\xff" * 10, os.urandom(200_000)):
            await ws.send(blob)
            assert await ws.recv() == blob


async def test_subprotocol_is_the_one_waiide_chose(gateway: Server) -> None:
    async with open_ws(gateway, subprotocols=["first", "chosen"]) as ws:  # type: ignore[list-item]
        assert ws.subprotocol == "chosen"
        await ws.send("info")
        info = json.loads(await ws.recv())
        assert info["subprotocol"] == "chosen"


async def test_origin_and_host_reach_waiide(gateway: Server) -> None:
    origin = f"http://127.0.0.1:{gateway.port}"
    async with open_ws(gateway, origin=origin) as ws:  # type: ignore[arg-type]
        await ws.send("info")
        info = json.loads(await ws.recv())
    assert info["origin"] == origin
    assert info["host"] == f"127.0.0.1:{gateway.port}"


async def test_refused_handshake_reaches_client_as_http_status(gateway: Server) -> None:
    with pytest.raises(InvalidStatus) as caught:
        async with open_ws(gateway, "/ws-refuse"):
            pass
    assert caught.value.response.status_code == 403
    assert b"origin mismatch" in caught.value.response.body


async def test_close_code_and_reason_from_waiide_reach_client(gateway: Server) -> None:
    async with open_ws(gateway) as ws:
        await ws.send("close:4321:custom reason")
        with pytest.raises(ConnectionClosed):
            await ws.recv()
        assert ws.close_code == 4321
        assert ws.close_reason == "custom reason"


async def test_a_closed_websocket_leaves_no_error_in_the_log(gateway: Server) -> None:
    start = len(gateway.log_text())
    async with open_ws(gateway) as ws:
        await ws.send("x")
        assert await ws.recv() == "x"
    await asyncio.sleep(0.3)
    log = gateway.log_text()[start:]
    assert "Invalid response type" not in log and "Traceback" not in log, log[-2000:]


async def test_close_code_and_reason_from_client_reach_waiide(gateway: Server) -> None:
    async with open_ws(gateway) as ws:
        await ws.close(code=4002, reason="client done")
    async with aiohttp.ClientSession() as session:
        for _ in range(50):
            async with session.get(f"{gateway.url}/ws/last-close") as resp:
                got = await resp.json()
            if got.get("code") == 4002:
                break
            await asyncio.sleep(0.05)
    assert got["code"] == 4002


@pytest.mark.slow
async def test_64mib_message_round_trips(gateway: Server) -> None:
    blob = os.urandom(64 * MIB)
    async with open_ws(gateway) as ws:
        await ws.send(blob)
        echoed = await asyncio.wait_for(ws.recv(), 60)
    assert hashlib.sha256(echoed).digest() == hashlib.sha256(blob).digest()  # type: ignore[arg-type]


async def test_server_stream_arrives_whole(gateway: Server) -> None:
    async with open_ws(gateway) as ws:
        await ws.send("stream:16")
        total = 0
        while True:
            msg = await asyncio.wait_for(ws.recv(), 30)
            if msg == "stream-end":
                break
            total += len(msg)
    assert total == 16 * MIB


async def test_gateway_pings_idle_clients(tight_gateway: Server) -> None:
    async with aiohttp.ClientSession() as session, session.ws_connect(
            f"{tight_gateway.url}/ws", autoping=False, timeout=aiohttp.ClientWSTimeout(ws_close=5)
    ) as ws:
        msg = await asyncio.wait_for(ws.receive(), 5)
        assert msg.type is aiohttp.WSMsgType.PING
        await ws.pong(msg.data)
        await ws.send_str("still fine")
        reply = await asyncio.wait_for(ws.receive(), 5)
        while reply.type is aiohttp.WSMsgType.PING:
            reply = await asyncio.wait_for(ws.receive(), 5)
        assert reply.data == "still fine"


async def test_message_over_the_limit_closes_with_1009(tight_gateway: Server) -> None:
    async with open_ws(tight_gateway) as ws:
        await ws.send(b"a" * 1000)
        assert await ws.recv() == b"a" * 1000
        await ws.send(b"b" * 100_000)
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 10)
    assert ws.close_code == 1009


@pytest.mark.slow
async def test_waiide_down_refuses_upgrade_with_502(session_tmp: object, dead_port: int) -> None:
    from tests.conftest import gateway_process

    with gateway_process(session_tmp, dead_port) as gw:  # type: ignore[arg-type]
        with pytest.raises(InvalidStatus) as caught:
            async with open_ws(gw):
                pass
        assert caught.value.response.status_code == 502



@pytest.mark.slow
async def test_stopping_the_gateway_says_going_away(session_tmp: object, upstream: Server) -> None:
    """SIGTERM to the gateway (as the supervisor sends it): open WebSockets get 1001, no traceback.

    VS Code reconnects by itself after a 1001; a torn connection (1006) would work too, but a
    clean close is what a restart should look like in the client and in the logs.
    """
    import signal

    from tests.conftest import gateway_process

    with gateway_process(session_tmp, upstream.port) as gw:  # type: ignore[arg-type]
        async with open_ws(gw) as ws:
            await ws.send("x")
            assert await ws.recv() == "x"
            os.kill(gw.pid, signal.SIGTERM)
            with pytest.raises(ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 20)
        assert ws.close_code == 1001
        for _ in range(100):
            if "Server Stopped" in gw.log_text():
                break
            await asyncio.sleep(0.1)
        log = gw.log_text()
        assert "Traceback" not in log, log[-3000:]
