"""Bytes WAIIDE sends right after its 101 reach the tunnel, however many reads they arrive in.

Found with the benchmark's unix-socket row: a WebSocket that streams at once after its
handshake lost its first bytes when they came in two or more reads before the handler took the
socket over (each read replaced the previous one). Driven here on a real socket pair, read by
read, so the interleaving is exact.
"""

from __future__ import annotations

import asyncio
import socket

from gateway.http.upstream import UpstreamConnection

HEAD = (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: x\r\n\r\n")


async def _until(condition: object, what: str) -> None:
    for _ in range(1000):
        if callable(condition) and condition():
            return
        await asyncio.sleep(0.001)
    raise AssertionError(what)


async def test_every_read_after_the_101_is_kept_in_order() -> None:
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    loop = asyncio.get_running_loop()
    conn = UpstreamConnection("unix:test")
    transport, _ = await loop.connect_accepted_socket(lambda: conn, ours)
    try:
        conn.send_head(b"GET /ws HTTP/1.1\r\nHost: x\r\n\r\n", head_only=False)
        theirs.recv(4096)
        parts = [b"\x82\x05first", b"\x82\x06second", b"\x82\x05third"]
        theirs.sendall(HEAD + parts[0])
        head = await conn.read_head(5)
        assert head.upgrade
        for part in parts[1:]:  # each arrives in a read of its own, before detach
            seen = len(conn._upgrade_rest)
            theirs.sendall(part)
            await _until(lambda seen=seen: len(conn._upgrade_rest) > seen, "the read")
        _, rest = conn.detach()
        assert rest == b"".join(parts)
    finally:
        transport.close()
        theirs.close()
