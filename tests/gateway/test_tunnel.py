"""The WebSocket byte tunnel (`gateway.ws.tunnel.Tunnel` with its `FrameScanner`s) on real
TCP sockets: a browser socket and a WAIIDE socket, with the tunnel holding the gateway's ends.

Frames are built with the websockets library's own encoder (an independent implementation), and
the tests read what each side receives byte for byte.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from websockets.frames import Close, Frame, Opcode

from gateway.ws.frames import OP_TEXT
from gateway.ws.tunnel import Tunnel

STEP_TIMEOUT_S = 10.0
PING_S = 0.2


def frame(opcode: Opcode, payload: bytes, *, masked: bool, fin: bool = True) -> bytes:
    return Frame(opcode, payload, fin=fin).serialize(mask=masked, extensions=None)


def close(code: int, reason: str = "", *, masked: bool) -> bytes:
    return frame(Opcode.CLOSE, Close(code, reason).serialize(), masked=masked)


@dataclass
class Received:
    fin: bool
    opcode: int
    masked: bool
    payload: bytes  # unmasked

    @property
    def close_code(self) -> int:
        assert self.opcode == Opcode.CLOSE
        return int(struct.unpack("!H", self.payload[:2])[0])


async def read_frame(reader: asyncio.StreamReader) -> Received:
    async def exactly(n: int) -> bytes:
        return await asyncio.wait_for(reader.readexactly(n), STEP_TIMEOUT_S)

    b0, b1 = await exactly(2)
    length = b1 & 0x7F
    if length == 126:
        length = struct.unpack("!H", await exactly(2))[0]
    elif length == 127:
        length = struct.unpack("!Q", await exactly(8))[0]
    mask = await exactly(4) if b1 & 0x80 else b""
    payload = await exactly(length)
    if mask:
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return Received(bool(b0 & 0x80), b0 & 0x0F, bool(mask), payload)


async def read_eof(reader: asyncio.StreamReader) -> bytes:
    """Everything until the tunnel closes this socket."""
    return await asyncio.wait_for(reader.read(), STEP_TIMEOUT_S)


def tcp_pair() -> tuple[socket.socket, socket.socket]:
    """Two ends of one TCP connection on 127.0.0.1."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        left = socket.create_connection(listener.getsockname(), timeout=STEP_TIMEOUT_S)
        right, _ = listener.accept()
    for sock in (left, right):
        sock.setblocking(False)
    return left, right


@dataclass
class Rig:
    tunnel: Tunnel
    browser: tuple[asyncio.StreamReader, asyncio.StreamWriter]
    waiide: tuple[asyncio.StreamReader, asyncio.StreamWriter]
    client_messages: list[tuple[int, int, bool, int]]

    def to_waiide(self, data: bytes) -> None:
        self.browser[1].write(data)

    def to_browser(self, data: bytes) -> None:
        self.waiide[1].write(data)


@contextlib.asynccontextmanager
async def tunnel_rig(*, max_message_bytes: int = 1 << 20, ping_interval_s: float = 0.0,
                     to_client: bytes = b"", to_upstream: bytes = b"") -> AsyncIterator[Rig]:
    loop = asyncio.get_running_loop()
    browser_sock, gw_client_sock = tcp_pair()
    gw_upstream_sock, waiide_sock = tcp_pair()
    messages: list[tuple[int, int, bool, int]] = []
    tunnel = Tunnel(max_message_bytes=max_message_bytes, ping_interval_s=ping_interval_s,
                    on_client_message=lambda *args: messages.append(args))
    transports: list[asyncio.Transport] = []
    writers: list[asyncio.StreamWriter] = []
    try:
        for sock in (gw_client_sock, gw_upstream_sock):
            transport, _ = await loop.connect_accepted_socket(asyncio.Protocol, sock=sock)
            assert isinstance(transport, asyncio.Transport)
            transports.append(transport)
        browser = await asyncio.open_connection(sock=browser_sock)
        waiide = await asyncio.open_connection(sock=waiide_sock)
        writers += [browser[1], waiide[1]]
        tunnel.start(transports[0], transports[1],
                     to_client=to_client, to_upstream=to_upstream)
        yield Rig(tunnel, browser, waiide, messages)
    finally:
        tunnel.abort()
        for writer in writers:
            writer.close()
        for transport in transports:
            transport.close()
        for sock in (browser_sock, gw_client_sock, gw_upstream_sock, waiide_sock):
            sock.close()


async def test_frames_pass_both_ways_byte_for_byte_and_are_counted() -> None:
    async with tunnel_rig() as rig:
        sent = frame(Opcode.TEXT, b"hello waiide", masked=True)
        rig.to_waiide(sent)
        assert await asyncio.wait_for(rig.waiide[0].readexactly(len(sent)), STEP_TIMEOUT_S) \
            == sent  # the browser's mask included: nothing is re-framed
        big = bytes(range(256)) * 1024  # 256 KiB: a 64-bit length, more than one socket read
        answer = frame(Opcode.BINARY, big, masked=False)
        rig.to_browser(answer)
        got = await read_frame(rig.browser[0])
        assert (got.opcode, got.masked, got.payload) == (Opcode.BINARY, False, big)
        assert rig.tunnel.take_message_counts() == (1, 1)
        assert rig.tunnel.take_message_counts() == (0, 0)
        assert rig.client_messages == [(OP_TEXT, 12, False, ord("h"))]


async def test_bytes_read_past_the_handshakes_are_relayed_first() -> None:
    early_up = frame(Opcode.TEXT, b"early from waiide", masked=False)
    early_client = frame(Opcode.TEXT, b"early from browser", masked=True)
    async with tunnel_rig(to_client=early_up, to_upstream=early_client) as rig:
        assert (await read_frame(rig.browser[0])).payload == b"early from waiide"
        assert (await read_frame(rig.waiide[0])).payload == b"early from browser"
        assert rig.tunnel.take_message_counts() == (1, 1)


async def test_a_fragmented_message_with_a_ping_inside_is_one_message() -> None:
    async with tunnel_rig() as rig:
        rig.to_waiide(frame(Opcode.TEXT, b"ab", masked=True, fin=False)
                      + frame(Opcode.PING, b"p", masked=True)
                      + frame(Opcode.CONT, b"cd", masked=True))
        got = [await read_frame(rig.waiide[0]) for _ in range(3)]
        assert [(f.fin, f.opcode, f.payload) for f in got] == [
            (False, Opcode.TEXT, b"ab"), (True, Opcode.PING, b"p"), (True, Opcode.CONT, b"cd")]
        assert rig.tunnel.take_message_counts() == (1, 0)
        assert [m[0] for m in rig.client_messages] == [OP_TEXT]


async def test_the_browser_closing_reaches_waiide_and_waiides_answer_ends_the_tunnel() -> None:
    async with tunnel_rig() as rig:
        rig.to_waiide(close(1000, "tab closed", masked=True))
        got = await read_frame(rig.waiide[0])
        assert (got.close_code, got.payload[2:]) == (1000, b"tab closed")
        rig.to_browser(close(1000, masked=False))
        rig.waiide[1].close()  # the server closes the TCP connection after its close frame
        got = await read_frame(rig.browser[0])
        assert got.close_code == 1000
        assert await read_eof(rig.browser[0]) == b""
        await asyncio.wait_for(rig.tunnel.wait_closed(), STEP_TIMEOUT_S)


async def test_waiide_closing_with_its_own_code_reaches_the_browser() -> None:
    async with tunnel_rig() as rig:
        rig.to_browser(close(4001, "workspace gone", masked=False))
        got = await read_frame(rig.browser[0])
        assert (got.close_code, got.payload[2:]) == (4001, b"workspace gone")
        rig.to_waiide(close(4001, masked=True))
        rig.browser[1].close()
        assert (await read_frame(rig.waiide[0])).close_code == 4001
        assert await read_eof(rig.waiide[0]) == b""
        await asyncio.wait_for(rig.tunnel.wait_closed(), STEP_TIMEOUT_S)


@pytest.mark.parametrize("fragmented", [False, True])
async def test_a_message_over_the_limit_from_the_browser_closes_both_with_1009(
        fragmented: bool) -> None:
    async with tunnel_rig(max_message_bytes=1000) as rig:
        if fragmented:  # each fragment fits; the message does not
            rig.to_waiide(frame(Opcode.BINARY, b"a" * 600, masked=True, fin=False))
            first = await read_frame(rig.waiide[0])
            assert first.payload == b"a" * 600
            rig.to_waiide(frame(Opcode.CONT, b"b" * 600, masked=True))
        else:
            rig.to_waiide(frame(Opcode.BINARY, b"a" * 1001, masked=True))
        to_browser = await read_frame(rig.browser[0])
        assert (to_browser.close_code, to_browser.masked) == (1009, False)
        to_waiide = await read_frame(rig.waiide[0])  # in place of the message, never after it
        assert (to_waiide.close_code, to_waiide.masked) == (1009, True)  # a client's frame
        assert await read_eof(rig.browser[0]) == b""
        assert await read_eof(rig.waiide[0]) == b""
        await asyncio.wait_for(rig.tunnel.wait_closed(), STEP_TIMEOUT_S)


async def test_a_message_over_the_limit_from_waiide_closes_both_with_1009() -> None:
    async with tunnel_rig(max_message_bytes=1000) as rig:
        rig.to_browser(frame(Opcode.TEXT, b"z" * 5000, masked=False))
        assert (await read_frame(rig.browser[0])).close_code == 1009
        assert (await read_frame(rig.waiide[0])).close_code == 1009
        assert await read_eof(rig.browser[0]) == b""


@pytest.mark.parametrize("direction", ["unmasked-from-browser", "masked-from-waiide"])
async def test_a_masking_violation_closes_both_with_1002(direction: str) -> None:
    async with tunnel_rig() as rig:
        if direction == "unmasked-from-browser":
            rig.to_waiide(frame(Opcode.TEXT, b"no mask", masked=False))
        else:
            rig.to_browser(frame(Opcode.TEXT, b"masked", masked=True))
        browser_close = await read_frame(rig.browser[0])
        waiide_close = await read_frame(rig.waiide[0])
        assert browser_close.close_code == waiide_close.close_code == 1002
        assert (browser_close.masked, waiide_close.masked) == (False, True)
        assert await read_eof(rig.browser[0]) == b""
        assert await read_eof(rig.waiide[0]) == b""


async def test_the_gateway_pings_an_idle_browser_but_never_inside_a_frame() -> None:
    async with tunnel_rig(ping_interval_s=PING_S) as rig:
        ping = await read_frame(rig.browser[0])  # nothing was sent: the gateway's own ping
        assert (ping.opcode, ping.masked, ping.payload) == (Opcode.PING, False, b"")
        # The browser's pong is relayed to WAIIDE as any frame; WAIIDE never sees our ping.
        rig.to_waiide(frame(Opcode.PONG, b"", masked=True))
        assert (await read_frame(rig.waiide[0])).opcode == Opcode.PONG

        # WAIIDE stops in the middle of a frame for several ping intervals.
        whole = frame(Opcode.BINARY, b"x" * 100, masked=False)
        rig.to_browser(whole[:50])
        await asyncio.sleep(4 * PING_S)  # pings would be due; none may split the frame
        rig.to_browser(whole[50:])
        got = await read_frame(rig.browser[0])
        while got.opcode == Opcode.PING:  # one may precede the frame (sent before it began)
            got = await read_frame(rig.browser[0])
        assert (got.opcode, got.payload) == (Opcode.BINARY, b"x" * 100)


async def test_shutdown_tells_both_sides_the_gateway_is_going_away() -> None:
    async with tunnel_rig() as rig:
        rig.to_waiide(frame(Opcode.TEXT, b"open", masked=True))
        await read_frame(rig.waiide[0])
        rig.tunnel.shutdown()
        to_browser = await read_frame(rig.browser[0])
        to_waiide = await read_frame(rig.waiide[0])
        assert (to_browser.close_code, to_browser.masked) == (1001, False)
        assert (to_waiide.close_code, to_waiide.masked) == (1001, True)
        assert await read_eof(rig.browser[0]) == b""
        assert await read_eof(rig.waiide[0]) == b""
        await asyncio.wait_for(rig.tunnel.wait_closed(), STEP_TIMEOUT_S)
