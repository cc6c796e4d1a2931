"""monitor.http_get against real servers on real sockets: every framing a probe may meet, and
each failure kind (connect_error, timeout, protocol_error)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from monitor.errors import ProbeError
from monitor.http_get import http_get

ANSWERS = {
    b"/length": b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
    b"/chunked": (b"HTTP/1.1 503 Service Unavailable\r\nTransfer-Encoding: chunked\r\n\r\n"
                  b"3\r\nabc\r\n4;ext=1\r\ndefg\r\n0\r\n\r\n"),
    b"/eof": b"HTTP/1.0 200 OK\r\n\r\nuntil the end",
    b"/big": b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + b"x" * 100000,
    b"/garbage": b"SSH-2.0-OpenSSH\r\n\r\n",
    b"/cut": b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\nonly this",
}


async def _answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        request = await reader.readuntil(b"\r\n\r\n")
        path = request.split(b" ", 2)[1]
        if path == b"/silent":
            await reader.read()  # says nothing until the client gives up and closes
            return
        writer.write(ANSWERS[path])
        await writer.drain()
    finally:
        writer.close()


@pytest.fixture
async def tcp_port() -> AsyncIterator[int]:
    server = await asyncio.start_server(_answer, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


async def get(port: int, path: str, **options: object) -> tuple[int, bytes]:
    kwargs: dict[str, object] = {"socket": None, "timeout_s": 2.0, "max_body": 64 * 1024}
    kwargs.update(options)
    return await http_get(f"http://127.0.0.1:{port}{path}", **kwargs)  # type: ignore[arg-type]


async def test_framings(tcp_port: int) -> None:
    assert await get(tcp_port, "/length") == (200, b"hello")
    assert await get(tcp_port, "/chunked") == (503, b"abcdefg")
    assert await get(tcp_port, "/eof") == (200, b"until the end")
    status, body = await get(tcp_port, "/big", max_body=1000)
    assert status == 200 and body == b"x" * 1000


async def test_failures_have_their_kind(tcp_port: int) -> None:
    with pytest.raises(ProbeError) as garbage:
        await get(tcp_port, "/garbage")
    assert garbage.value.kind == "protocol_error"
    with pytest.raises(ProbeError) as cut:
        await get(tcp_port, "/cut")
    assert cut.value.kind == "protocol_error"
    with pytest.raises(ProbeError) as silent:
        await get(tcp_port, "/silent", timeout_s=0.5)
    assert silent.value.kind == "timeout" and "0.5s" in silent.value.reason


async def test_refused_and_missing_socket_are_connect_errors(tmp_path: Path) -> None:
    server = await asyncio.start_server(_answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    with pytest.raises(ProbeError) as refused:
        await get(port, "/length", shown_url="http://ide/")
    assert refused.value.kind == "connect_error"
    assert refused.value.reason.startswith("cannot connect to http://ide/")
    with pytest.raises(ProbeError) as missing:
        await http_get("http://localhost/healthz", socket=tmp_path / "none.sock", timeout_s=2,
                       max_body=10)
    assert missing.value.kind == "connect_error"


async def test_unix_socket(tmp_path: Path) -> None:
    path = tmp_path / "ide.sock"
    server = await asyncio.start_unix_server(_answer, str(path))
    try:
        assert await http_get("http://localhost/length", socket=path, timeout_s=2,
                              max_body=100) == (200, b"hello")
    finally:
        server.close()
        await server.wait_closed()
