"""`UpstreamConnection` and `UpstreamPool` against a scripted upstream on a real socket.

Each test scripts the upstream's bytes exactly (interim responses, conflicting framing, a body
cut off, silence, a close at the wrong moment) and checks what the client makes of them: the
response, the error class the relay turns into 502/504, and whether the connection may be reused.
"""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest

from gateway.errors import (
    UpstreamConnectError,
    UpstreamProtocolError,
    UpstreamReset,
    UpstreamTimeout,
)
from gateway.http.headers import ResponseHead
from gateway.http.pool import UpstreamPool
from gateway.http.upstream import UpstreamConnection
from tests.gateway.rawhttp import STEP_TIMEOUT_S, Peer, RawUpstream, raw_upstream

GET = b"GET /x HTTP/1.1\r\nHost: waiide\r\n\r\n"
HEAD = b"HEAD /x HTTP/1.1\r\nHost: waiide\r\n\r\n"
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"
SHORT_S = 0.3  # a read deadline the tests let expire on purpose


def pool_for(upstream: RawUpstream, *, max_idle: int = 8) -> UpstreamPool:
    if isinstance(upstream.address, str):
        return UpstreamPool(host="", port=0, unix_socket=upstream.address, label="WAIIDE",
                            connect_timeout_s=STEP_TIMEOUT_S, max_idle=max_idle)
    return UpstreamPool(host="127.0.0.1", port=upstream.port, unix_socket=None, label="WAIIDE",
                        connect_timeout_s=STEP_TIMEOUT_S, max_idle=max_idle)


async def body_of(conn: UpstreamConnection, timeout_s: float = STEP_TIMEOUT_S) -> bytes:
    pieces = []
    while chunk := await conn.read_body(timeout_s):
        pieces.append(chunk)
    return b"".join(pieces)


async def exchange(pool: UpstreamPool, request: bytes = GET, *, head_only: bool = False
                   ) -> tuple[UpstreamConnection, ResponseHead, bytes]:
    """One request and its whole response; the connection goes back to the pool."""
    conn = await pool.acquire()
    try:
        conn.send_head(request, head_only=head_only)
        head = await conn.read_head(STEP_TIMEOUT_S)
        body = await body_of(conn)
    finally:
        pool.release(conn)
    return conn, head, body


async def serve_forever(peer: Peer, *responses: bytes) -> None:
    """Answer every request on this connection with the next response (the last one repeats)."""
    n = 0
    while await peer.request():
        await peer.send(responses[min(n, len(responses) - 1)])
        n += 1


async def until(predicate: object, what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + STEP_TIMEOUT_S
    while not predicate():  # type: ignore[operator]
        if loop.time() > deadline:
            raise AssertionError(f"not within {STEP_TIMEOUT_S}s: {what}")
        await asyncio.sleep(0.01)


# ---- interim responses -----------------------------------------------------------------------

INTERIM = (b"HTTP/1.1 100 Continue\r\n\r\n",
           b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n")


@pytest.mark.parametrize("split", [False, True], ids=["one-write", "write-per-response"])
async def test_1xx_responses_are_skipped_and_the_final_one_is_returned(split: bool) -> None:
    async def script(peer: Peer) -> None:
        await peer.request()
        if split:
            await peer.send(*INTERIM, OK)
        else:
            await peer.send(b"".join(INTERIM) + OK)
        await serve_forever(peer, b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nbye")

    async with raw_upstream(script) as upstream:
        pool = pool_for(upstream)
        conn, head, body = await exchange(pool)
        assert (head.status, body) == (200, b"hello")
        # The hints' fields belong to the 103, not to the response.
        assert [name for name, _ in head.headers] == [b"Content-Length"]
        assert conn.reusable
        # The connection's parser is back in a clean state: the next response parses normally.
        conn2, head, body = await exchange(pool)
        assert conn2 is conn and (head.status, body) == (200, b"bye")
        assert upstream.connections == 1
        pool.close()


# ---- conflicting framing ---------------------------------------------------------------------

@pytest.mark.parametrize("fields", [
    b"Content-Length: 1000\r\nTransfer-Encoding: chunked\r\n",
    b"Transfer-Encoding: chunked\r\nContent-Length: 1000\r\n",
    b"Transfer-Encoding: gzip, chunked\r\nContent-Length: 3\r\n",
    b"Content-Length: 5\r\nContent-Length: 6\r\n",
], ids=["cl-then-te", "te-then-cl", "te-list-then-cl", "two-lengths"])
async def test_ambiguous_framing_is_rejected_not_guessed(fields: bytes) -> None:
    """RFC 9112 §6.3: a response with both Content-Length and Transfer-Encoding (or two
    different lengths) is a smuggling vector; its body must never be delimited by the length.
    The parser refuses it before the head is handed on, so nothing of it reaches the client."""
    async def script(peer: Peer) -> None:
        await peer.request()
        await peer.send(b"HTTP/1.1 200 OK\r\n" + fields + b"\r\n5\r\nhello\r\n0\r\n\r\n"
                        b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nsmuggled")
        await peer.wait_closed_by_client()

    async with raw_upstream(script) as upstream:
        pool = pool_for(upstream)
        conn = await pool.acquire()
        conn.send_head(GET, head_only=False)
        with pytest.raises(UpstreamProtocolError, match="invalid HTTP response"):
            await conn.read_head(STEP_TIMEOUT_S)
        assert not conn.reusable
        pool.release(conn)
        # The connection was dropped, not pooled: the next request takes a new one.
        conn2 = await pool.acquire()
        assert conn2 is not conn and not conn2.reused
        conn2.close()
        pool.close()


# ---- stale pooled connections ----------------------------------------------------------------

async def test_a_pooled_socket_the_upstream_closed_while_idle_is_replaced() -> None:
    async def script(peer: Peer) -> None:
        await peer.request()
        await peer.send(OK)  # keep-alive by default in HTTP/1.1 ...
        if peer.index == 0:
            peer.close()  # ... but the upstream closes the idle socket (Node after 5 s)
            return
        await serve_forever(peer, OK)

    async with raw_upstream(script) as upstream:
        pool = pool_for(upstream)
        first, _, _ = await exchange(pool)
        await until(lambda: not first.usable_idle, "the client sees the upstream's close")
        second, head, body = await exchange(pool)
        assert second is not first and not second.reused
        assert (head.status, body) == (200, b"hello")
        assert upstream.connections == 2
        pool.close()


@pytest.mark.parametrize("framing", ["chunked", "length"])
async def test_a_second_response_to_one_request_is_refused_never_relayed(framing: str) -> None:
    """An upstream that answers one request twice (in the same packet or just after) is
    broken: the extra response must not be appended to the body nor wait in the pooled
    connection for the next request; the connection is dropped."""
    first = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
             if framing == "chunked" else OK)
    extra = b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nsmuggled"

    async def script(peer: Peer) -> None:
        await peer.request()
        await peer.send(first + extra)
        await serve_forever(peer, OK)

    async with raw_upstream(script) as upstream:
        pool = pool_for(upstream)
        conn = await pool.acquire()
        conn.send_head(GET, head_only=False)
        head = await conn.read_head(STEP_TIMEOUT_S)
        assert head.status == 200
        assert await body_of(conn) == b"hello"
        await until(lambda: conn.transport is None or conn.transport.is_closing(),
                    "the connection that answered twice is closed")
        pool.release(conn)
        second, head, body = await exchange(pool)
        assert second is not conn and (head.status, body) == (200, b"hello")
        pool.close()


async def test_bytes_arriving_on_an_idle_connection_retire_it() -> None:
    async def script(peer: Peer) -> None:
        await peer.request()
        await peer.send(OK)
        if peer.index == 0:
            await peer.request()  # a second request, then an unsolicited third response
            await peer.send(OK, OK)
        await serve_forever(peer, OK)

    async with raw_upstream(script) as upstream:
        pool = pool_for(upstream)
        first, _, _ = await exchange(pool)
        second, _, _ = await exchange(pool)
        assert second is first
        await until(lambda: first.transport is None or first.transport.is_closing(),
                    "the stray response closes the idle connection")
        third, head, _ = await exchange(pool)
        assert third is not first and head.status == 200
        pool.close()


# ---- bodies cut off, silence -----------------------------------------------------------------

@pytest.mark.parametrize("response", [
    b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + b"x" * 1000,
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n3\r\nab",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
], ids=["length", "chunked-mid-chunk", "chunked-no-last-chunk"])
async def test_a_body_cut_off_is_an_upstream_reset_not_an_end(response: bytes) -> None:
    async def script(peer: Peer) -> None:
        await peer.request()
        await peer.send(response)
        peer.close()

    async with raw_upstream(script) as upstream:
        pool = pool_for(upstream)
        conn = await pool.acquire()
        conn.send_head(GET, head_only=False)
        head = await conn.read_head(STEP_TIMEOUT_S)
        assert head.status == 200
        received = 0
        with pytest.raises(UpstreamReset):
            while chunk := await conn.read_body(STEP_TIMEOUT_S):
                received += len(chunk)
        assert received < 100000
        assert not conn.reusable
        pool.release(conn)
        pool.close()


async def test_a_body_delimited_by_the_close_is_complete_at_the_close() -> None:
    async def script(peer: Peer) -> None:
        await peer.request()
        await peer.send(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n", b"until ", b"the end")
        peer.close()

    async with raw_upstream(script) as upstream:
        pool = pool_for(upstream)
        conn, head, body = await exchange(pool)
        assert (head.status, body) == (200, b"until the end")
        assert not conn.reusable
        pool.close()


async def test_no_response_head_within_the_deadline_is_a_timeout() -> None:
    async def script(peer: Peer) -> None:
        await peer.request()
        await peer.wait_closed_by_client()  # silence

    async with raw_upstream(script) as upstream:
        pool = pool_for(upstream)
        conn = await pool.acquire()
        conn.send_head(GET, head_only=False)
        with pytest.raises(UpstreamTimeout, match="no response within 0.3s"):
            await conn.read_head(SHORT_S)
        conn.close()
        pool.close()


@pytest.mark.parametrize("framing", [b"Content-Length: 10\r\n",
                                     b"Transfer-Encoding: chunked\r\n"])
async def test_silence_mid_body_is_a_timeout(framing: bytes) -> None:
    first = b"abc" if framing.startswith(b"Content") else b"3\r\nabc\r\n"

    async def script(peer: Peer) -> None:
        await peer.request()
        await peer.send(b"HTTP/1.1 200 OK\r\n" + framing + b"\r\n" + first)
        await peer.wait_closed_by_client()

    async with raw_upstream(script) as upstream:
        pool = pool_for(upstream)
        conn = await pool.acquire()
        conn.send_head(GET, head_only=False)
        await conn.read_head(STEP_TIMEOUT_S)
        assert await conn.read_body(STEP_TIMEOUT_S) == b"abc"
        with pytest.raises(UpstreamTimeout, match="sent nothing for 0.3s mid-body"):
            await conn.read_body(SHORT_S)
        conn.close()
        pool.close()


# ---- connecting ------------------------------------------------------------------------------

async def test_connection_refused_is_a_connect_error() -> None:
    with socket.socket() as sock:  # bound, never listening: connects are refused
        sock.bind(("127.0.0.1", 0))
        pool = UpstreamPool(host="127.0.0.1", port=sock.getsockname()[1], unix_socket=None,
                            label="WAIIDE", connect_timeout_s=STEP_TIMEOUT_S, max_idle=4)
        with pytest.raises(UpstreamConnectError, match="^WAIIDE: ") as refused:
            await pool.acquire()
    assert type(refused.value) is UpstreamConnectError and refused.value.status == 502
    assert isinstance(refused.value.__cause__, ConnectionRefusedError)


async def test_a_missing_unix_socket_is_a_connect_error(tmp_path: Path) -> None:
    pool = UpstreamPool(host="", port=0, unix_socket=str(tmp_path / "absent.sock"),
                        label="WAIIDE", connect_timeout_s=STEP_TIMEOUT_S, max_idle=4)
    with pytest.raises(UpstreamConnectError, match="No such file"):
        await pool.acquire()


async def test_unix_socket_upstream_with_keep_alive(tmp_path: Path) -> None:
    async def script(peer: Peer) -> None:
        await serve_forever(peer, OK)

    async with raw_upstream(script, unix_path=tmp_path / "waiide.sock") as upstream:
        pool = pool_for(upstream)
        first, head, body = await exchange(pool)
        second, _, body2 = await exchange(pool)
        assert (head.status, body, body2) == (200, b"hello", b"hello")
        assert second is first and second.reused and upstream.connections == 1
        pool.close()


# ---- responses without a body ----------------------------------------------------------------

async def answer_by_method(peer: Peer, *for_head: bytes, late_s: float = 0.0) -> None:
    """Answer HEAD requests with `for_head` (written apart, `late_s` between them), others OK."""
    while request := await peer.request():
        if not request.startswith(b"HEAD "):
            await peer.send(OK)
            continue
        for n, piece in enumerate(for_head):
            if n:
                await asyncio.sleep(late_s)
            await peer.send(piece)


async def test_head_response_announcing_a_length_has_no_body() -> None:
    async def script(peer: Peer) -> None:
        await answer_by_method(peer, b"HTTP/1.1 200 OK\r\nContent-Length: 123456\r\n\r\n")

    async with raw_upstream(script) as upstream:
        pool = pool_for(upstream)
        conn, head, body = await exchange(pool, HEAD, head_only=True)
        # Not waiting for 123456 body bytes: the response ends at its head.
        assert (head.status, head.content_length, body) == (200, 123456, b"")
        # But the socket is not reused: see the next test.
        assert not conn.reusable
        conn2, head, body = await exchange(pool)
        assert conn2 is not conn and (head.status, body) == (200, b"hello")
        pool.close()


@pytest.mark.parametrize("late_s", [0.0, 0.05], ids=["with-the-head", "after-the-head"])
async def test_a_body_sent_with_a_head_response_never_becomes_the_next_response(
        late_s: float) -> None:
    """A server that sends the announced body with its HEAD response anyway (the tests' own aiohttp
    stand-in does, when a handler streams): on a reused socket, the next request, unrelated,
    read those bytes as its response and got a 502 (seen once in the gateway suite)."""
    async def script(peer: Peer) -> None:
        # The body is not allowed after a HEAD.
        await answer_by_method(peer, b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", b"BODY!",
                               late_s=late_s)

    async with raw_upstream(script) as upstream:
        pool = pool_for(upstream)
        for _ in range(3):
            _, head, body = await exchange(pool, HEAD, head_only=True)
            assert (head.status, body) == (200, b"")
            _, head, body = await exchange(pool)
            assert (head.status, body) == (200, b"hello")
        pool.close()


@pytest.mark.parametrize("status_line", [
    b"HTTP/1.1 204 No Content\r\n",
    b"HTTP/1.1 304 Not Modified\r\nContent-Length: 9999\r\nETag: \"v1\"\r\n",
], ids=["204", "304-with-length"])
async def test_204_and_304_end_at_the_head(status_line: bytes) -> None:
    async def script(peer: Peer) -> None:
        if peer is upstream.peers[0]:  # the first connection's first answer; then only OK
            await peer.request()
            await peer.send(status_line + b"\r\n")
        await serve_forever(peer, OK)

    async with raw_upstream(script) as upstream:
        pool = pool_for(upstream)
        conn, head, body = await exchange(pool)
        assert head.status in (204, 304) and body == b""
        conn2, head, body = await exchange(pool)
        assert (head.status, body) == (200, b"hello")
        # Reused unless the bodiless response announced a body (then as with HEAD, above).
        assert (conn2 is conn) == (b"Content-Length" not in status_line)
        pool.close()


async def test_connection_close_response_is_not_pooled() -> None:
    async def script(peer: Peer) -> None:
        await peer.request()
        await peer.send(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok")
        await peer.wait_closed_by_client()

    async with raw_upstream(script) as upstream:
        pool = pool_for(upstream)
        conn, head, body = await exchange(pool)
        assert (head.status, body, conn.reusable) == (200, b"ok", False)
        conn2, _, body = await exchange(pool)
        assert conn2 is not conn and body == b"ok" and upstream.connections == 2
        pool.close()


# ---- the pool --------------------------------------------------------------------------------

async def test_pool_reuses_last_in_first_and_keeps_at_most_max_idle() -> None:
    closed: list[int] = []

    async def script(peer: Peer) -> None:
        while await peer.request():
            await peer.send(OK)
        closed.append(peer.index)

    async with raw_upstream(script) as upstream:
        pool = pool_for(upstream, max_idle=2)
        conns = [await pool.acquire() for _ in range(3)]
        for conn in conns:
            conn.send_head(GET, head_only=False)
            await conn.read_head(STEP_TIMEOUT_S)
            assert await body_of(conn) == b"hello"
        for conn in conns:
            pool.release(conn)
        # Only two stay idle; the third was closed, which the upstream sees.
        await until(lambda: closed == [2], "the connection over max_idle is closed")
        assert await pool.acquire() is conns[1]  # last in, first out
        assert await pool.acquire() is conns[0]
        fresh = await pool.acquire()
        assert fresh not in conns and upstream.connections == 4
        for conn in (*conns[:2], fresh):
            conn.close()
        pool.close()
