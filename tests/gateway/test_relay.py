"""The HTTP relay end to end in one process: a client socket, the real gateway app served by
Sanic, and a scripted upstream on a real socket.

What the client of the gateway sees when WAIIDE sends interim responses, ambiguous framing, a body
cut off or nothing at all, and when a pooled upstream socket turns out closed: retried once when
nothing was consumed, never when the request's body was already sent or the response started.
"""

from __future__ import annotations

import asyncio
import json

import pytest

from tests.gateway.rawhttp import (
    STEP_TIMEOUT_S,
    Peer,
    inproc_gateway,
    raw_upstream,
    read_response,
)

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"


def get(path: str, extra: bytes = b"") -> bytes:
    return b"GET " + path.encode() + b" HTTP/1.1\r\nHost: gw\r\n" + extra + b"\r\n"


async def serve_forever(peer: Peer, response: bytes = OK) -> None:
    while await peer.request():
        await peer.send(response)


async def test_interim_responses_before_the_final_one_reach_the_client_as_one_response() -> None:
    async def script(peer: Peer) -> None:
        await peer.request()
        await peer.send(b"HTTP/1.1 100 Continue\r\n\r\n",
                        b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n",
                        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Final: yes\r\n\r\nhello")
        await serve_forever(peer)

    async with raw_upstream(script) as upstream, inproc_gateway(upstream) as gw:
        reader, writer = await gw.open()
        writer.write(get("/page"))
        resp = await read_response(reader)
        assert (resp.status, resp.body, resp.complete) == (200, b"hello", True)
        assert resp.header(b"x-final") == b"yes" and resp.header(b"link") is None
        writer.write(get("/again"))  # the client connection and the upstream one both go on
        resp = await read_response(reader)
        assert (resp.status, resp.body) == (200, b"hello")
        assert upstream.connections == 1
        writer.close()


async def test_content_length_with_chunked_becomes_502_and_nothing_of_it_is_relayed() -> None:
    async def script(peer: Peer) -> None:
        if peer.index == 0:
            await peer.request()
            await peer.send(b"HTTP/1.1 200 OK\r\nContent-Length: 40\r\n"
                            b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
                            b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nsmuggled")
            await peer.wait_closed_by_client()
            return
        await serve_forever(peer)

    async with raw_upstream(script) as upstream, inproc_gateway(upstream) as gw:
        reader, writer = await gw.open()
        writer.write(get("/ambiguous", b"Accept: application/json\r\n"))
        resp = await read_response(reader)
        assert resp.status == 502 and resp.complete
        assert b"hello" not in resp.body and b"smuggled" not in resp.body
        assert "invalid HTTP response" in json.loads(resp.body)["detail"]
        writer.write(get("/next"))  # the broken upstream socket was not pooled
        resp = await read_response(reader)
        assert (resp.status, resp.body) == (200, b"hello")
        assert upstream.connections == 2
        writer.close()


async def test_a_second_response_to_one_request_never_reaches_the_client() -> None:
    async def script(peer: Peer) -> None:
        await peer.request()
        if peer.index == 0:
            await peer.send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                            b"5\r\nhello\r\n0\r\n\r\n"
                            b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nsmuggled")
            await peer.wait_closed_by_client()
            return
        await peer.send(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nnext")
        await serve_forever(peer)

    async with raw_upstream(script) as upstream, inproc_gateway(upstream) as gw:
        reader, writer = await gw.open()
        writer.write(get("/first"))
        resp = await read_response(reader)
        assert (resp.status, resp.body, resp.complete) == (200, b"hello", True)
        writer.write(get("/second"))
        resp = await read_response(reader)
        assert (resp.status, resp.body) == (200, b"next")  # not "smuggled"
        assert upstream.connections == 2
        writer.close()


async def test_a_pooled_socket_closed_as_it_is_reused_is_retried_once_on_a_fresh_one() -> None:
    """WAIIDE closes an idle keep-alive socket just as the gateway writes the next request on it
    (it read the request, answered nothing). The GET goes again on a new connection; the
    client never notices."""
    async def script(peer: Peer) -> None:
        await peer.request()
        await peer.send(OK)
        if peer.index == 0:
            await peer.request()  # the second request on this socket: dropped unanswered
            peer.close()
            return
        await serve_forever(peer)

    async with raw_upstream(script) as upstream, inproc_gateway(upstream) as gw:
        reader, writer = await gw.open()
        for path in ("/one", "/two"):
            writer.write(get(path))
            resp = await read_response(reader)
            assert (resp.status, resp.body) == (200, b"hello"), path
        seen = [(index, request.split(b" ")[1]) for index, request in upstream.requests]
        assert seen == [(0, b"/one"), (0, b"/two"), (1, b"/two")]
        writer.close()


async def test_a_request_whose_body_was_sent_is_not_retried() -> None:
    async def script(peer: Peer) -> None:
        await peer.request()
        await peer.send(OK)
        if peer.index == 0:
            await peer.request()
            peer.close()
            return
        await serve_forever(peer)

    async with raw_upstream(script) as upstream, inproc_gateway(upstream) as gw:
        reader, writer = await gw.open()
        writer.write(get("/one"))
        assert (await read_response(reader)).status == 200
        writer.write(b"POST /save HTTP/1.1\r\nHost: gw\r\nAccept: application/json\r\n"
                     b"Content-Length: 4\r\n\r\ndata")
        resp = await read_response(reader)
        assert resp.status == 502, resp
        posts = [r for _, r in upstream.requests if r.startswith(b"POST")]
        assert len(posts) == 1 and posts[0].endswith(b"data")  # WAIIDE got it once, not twice
        writer.close()


async def test_a_response_that_started_is_not_retried() -> None:
    async def script(peer: Peer) -> None:
        await peer.request()
        await peer.send(OK)
        if peer.index == 0:
            await peer.request()
            await peer.send(b"HTTP/1.1 200 O")  # WAIIDE began answering, then went away
            peer.close()
            return
        await serve_forever(peer)

    async with raw_upstream(script) as upstream, inproc_gateway(upstream) as gw:
        reader, writer = await gw.open()
        writer.write(get("/one"))
        assert (await read_response(reader)).status == 200
        writer.write(get("/two", b"Accept: application/json\r\n"))
        resp = await read_response(reader)
        assert resp.status == 502
        assert [r.split(b" ")[1] for _, r in upstream.requests] == [b"/one", b"/two"]
        writer.close()


@pytest.mark.parametrize("response", [
    b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + b"x" * 3000,
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + b"bb8\r\n" + b"x" * 3000,
], ids=["length", "chunked"])
async def test_a_body_cut_off_upstream_is_cut_off_for_the_client(response: bytes) -> None:
    """The client must be able to tell: the gateway ends the connection before the body's end,
    instead of ending the body as if it were complete."""
    async def script(peer: Peer) -> None:
        await peer.request()
        await peer.send(response)
        peer.close()

    async with raw_upstream(script) as upstream, inproc_gateway(upstream) as gw:
        reader, writer = await gw.open()
        writer.write(get("/big"))
        resp = await read_response(reader)
        assert resp.status == 200
        assert not resp.complete and 0 < len(resp.body) <= 3000
        assert await asyncio.wait_for(reader.read(), STEP_TIMEOUT_S) == b""  # closed
        writer.close()


async def test_no_answer_within_the_read_timeout_is_504() -> None:
    async def script(peer: Peer) -> None:
        await peer.request()
        await peer.wait_closed_by_client()

    async with raw_upstream(script) as upstream, \
            inproc_gateway(upstream, {"GATEWAY_READ_TIMEOUT": "0.5"}) as gw:
        reader, writer = await gw.open()
        writer.write(get("/slow", b"Accept: application/json\r\n"))
        resp = await read_response(reader)
        assert resp.status == 504
        assert "GATEWAY_READ_TIMEOUT" in json.loads(resp.body)["detail"]
        writer.close()


@pytest.mark.parametrize("response", [
    b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + b"x" * 3000,
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + b"bb8\r\n" + b"x" * 3000,
], ids=["length", "chunked"])
async def test_silence_mid_body_past_the_read_timeout_cuts_the_client_off(response: bytes
                                                                         ) -> None:
    async def script(peer: Peer) -> None:
        await peer.request()
        await peer.send(response)
        await peer.wait_closed_by_client()  # then nothing, with the socket open

    async with raw_upstream(script) as upstream, \
            inproc_gateway(upstream, {"GATEWAY_READ_TIMEOUT": "0.5"}) as gw:
        reader, writer = await gw.open()
        writer.write(get("/stalls"))
        resp = await read_response(reader)
        assert resp.status == 200 and not resp.complete and len(resp.body) <= 3000
        assert await asyncio.wait_for(reader.read(), STEP_TIMEOUT_S) == b""
        writer.close()


async def test_head_and_304_pass_without_a_body_and_the_connection_goes_on() -> None:
    async def script(peer: Peer) -> None:
        while request := await peer.request():
            if request.startswith(b"HEAD "):
                await peer.send(b"HTTP/1.1 200 OK\r\nContent-Length: 70000\r\nETag: \"e\"\r\n\r\n")
            elif b"if-none-match" in request.lower():
                await peer.send(b"HTTP/1.1 304 Not Modified\r\nETag: \"e\"\r\n\r\n")
            else:
                await peer.send(OK)

    async with raw_upstream(script) as upstream, inproc_gateway(upstream) as gw:
        reader, writer = await gw.open()
        writer.write(b"HEAD /file HTTP/1.1\r\nHost: gw\r\n\r\n")
        resp = await read_response(reader, head_only=True)
        assert resp.status == 200 and resp.header(b"content-length") == b"70000"
        writer.write(get("/file", b"If-None-Match: \"e\"\r\n"))
        resp = await read_response(reader)
        assert (resp.status, resp.body, resp.header(b"etag")) == (304, b"", b'"e"')
        writer.write(get("/after"))
        resp = await read_response(reader)
        assert (resp.status, resp.body) == (200, b"hello")
        # The client's connection goes on; upstream, the HEAD's socket is not reused (it
        # announced a body: tests/gateway/test_upstream.py), the 304's is.
        assert upstream.connections == 2
        writer.close()
