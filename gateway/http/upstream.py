"""`UpstreamConnection`: the lean HTTP/1.1 client connection the gateway uses to talk to WAIIDE.

Why not aiohttp here: the proxy must pass the request target byte for byte, add no headers of its
own, never decompress, and cost as little as possible per request. A small asyncio protocol with
httptools' parser does exactly that: one `transport.write` for the request head, bodies handed on as
the bytes objects the socket produced, and backpressure in both directions:

- upload: `write()` + `drain()` wait while the upstream socket's write buffer is above its
  high-water mark (`pause_writing`/`resume_writing`);
- download: once more than `_READ_HIGH_WATER` bytes are buffered unread, the upstream socket stops
  being read (`pause_reading`) until the consumer catches up.

Library exceptions become `gateway.errors` here and nowhere else.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections import deque
from collections.abc import Callable

import httptools

from gateway.errors import (
    UpstreamConnectError,
    UpstreamError,
    UpstreamProtocolError,
    UpstreamReset,
    UpstreamTimeout,
)
from gateway.http.headers import Headers, ResponseHead

_READ_HIGH_WATER = 512 * 1024
_READ_LOW_WATER = 128 * 1024
_WRITE_HIGH_WATER = 256 * 1024
# Node (code-server) closes idle keep-alive sockets after 5 s; drop ours a little earlier so a
# request is never written onto a socket the upstream is closing (see `usable_idle`).
_POOL_IDLE_S = 4.0

logger = logging.getLogger(__name__)


def _retrieve(future: asyncio.Future[None]) -> None:
    if not future.cancelled():
        future.exception()


class _Sink:
    """Where `UpstreamConnection.relay_body` writes, and how it knows when to stop reading."""

    __slots__ = (
        "can_write",
        "done",
        "idle_timeout_s",
        "last_data",
        "on_progress",
        "timer",
        "transport",
    )

    def __init__(self, transport: asyncio.Transport, can_write: asyncio.Event,
                 done: asyncio.Future[None], idle_timeout_s: float,
                 on_progress: Callable[[float], None]) -> None:
        self.transport = transport
        self.on_progress = on_progress
        self.can_write = can_write
        self.done = done
        self.idle_timeout_s = idle_timeout_s
        self.last_data = time.monotonic()
        self.timer: asyncio.TimerHandle | None = None


class UpstreamConnection(asyncio.Protocol):
    """One connection to WAIIDE carrying one request at a time."""

    def __init__(self, upstream_label: str) -> None:
        self._label = upstream_label
        self._loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self._parser: httptools.HttpResponseParser | None = None
        self._head_only = False
        self._headers: Headers = []
        self._head: ResponseHead | None = None
        self._head_waiter: asyncio.Future[ResponseHead] | None = None
        self._body: deque[bytes] = deque()
        self._body_size = 0
        self._body_waiter: asyncio.Future[None] | None = None
        self._complete = False
        self._interim = False
        # Length-delimited bodies bypass the parser once the head is parsed (see data_received).
        self._raw_left = -1
        self._body_seen = 0
        self._sink: _Sink | None = None
        self._upgrade_rest = b""
        self._upgraded = False
        self._error: UpstreamError | None = None
        self._closed = False
        self._paused_reading = False
        self._can_write = asyncio.Event()
        self._can_write.set()
        self.reused = False
        self.idle_since = 0.0
        self.received_any = False

    # -- asyncio.Protocol ----------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without inheriting from it.
        self.transport = transport  # type: ignore[assignment]
        self.transport.set_write_buffer_limits(high=_WRITE_HIGH_WATER)  # type: ignore[union-attr]
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        self.received_any = True
        if self._upgraded:
            # Past a 101, before `detach`: WAIIDE may be streaming already; keep every read.
            self._upgrade_rest += data
            return
        if self._raw_left > 0:
            if self._sink is not None:
                self._sink_body(data)
            else:
                self._raw_body(data)
            return
        parser = self._parser
        if parser is None:  # bytes while idle: the upstream broke the protocol
            self._fail(UpstreamProtocolError(self._label, "unexpected bytes between responses"))
            return
        try:
            parser.feed_data(data)
        except httptools.HttpParserUpgrade as exc:
            offset = int(exc.args[0]) if exc.args else len(data)
            self._upgraded = True
            self._upgrade_rest += data[offset:]
        except httptools.HttpParserError as exc:
            self._fail(UpstreamProtocolError(self._label, f"invalid HTTP response: {exc}"))
            return
        head = self._head
        if head is not None and not self._complete and head.content_length is not None \
                and not self._head_only and self._raw_left < 0:
            # The rest of this body is plain bytes: hand on the socket's bytes objects as they
            # are, instead of the copies httptools would slice out of them.
            self._raw_left = head.content_length - self._body_seen
            self._parser = None
        if self._body_size > _READ_HIGH_WATER and not self._paused_reading and self.transport:
            self._paused_reading = True
            self.transport.pause_reading()

    def _raw_body(self, data: bytes) -> None:
        left = self._raw_left
        if len(data) > left:
            self._fail(UpstreamProtocolError(self._label, "more bytes than Content-Length"))
            return
        self._body.append(data)
        self._body_size += len(data)
        self._raw_left = left - len(data)
        if not self._raw_left:
            self._complete = True
        self._wake_body()
        if self._body_size > _READ_HIGH_WATER and not self._paused_reading and self.transport:
            self._paused_reading = True
            self.transport.pause_reading()

    def relay_body(self, transport: asyncio.Transport, can_write: asyncio.Event,
                   idle_timeout_s: float,
                   on_progress: Callable[[float], None]) -> asyncio.Future[None]:
        """Write the rest of a length-delimited body straight from the socket to `transport`.

        Each piece is written to the client from `data_received`, as the WebSocket tunnel does:
        no task wake-up, no queue. A 256 MiB download arrives in ~5,500 pieces of ~47 KiB here,
        so the per-piece cost decides its speed. While the client's buffer is above its
        high-water mark (`can_write` cleared by Sanic's protocol) the socket is not read.
        The future completes when the last byte is written, or fails with an UpstreamError.
        """
        done: asyncio.Future[None] = self._loop.create_future()
        # If the handler was cancelled (client gone) nobody awaits this; do not log that.
        done.add_done_callback(_retrieve)
        sink = _Sink(transport, can_write, done, idle_timeout_s, on_progress)
        if self._body and not transport.is_closing():
            transport.writelines(self._take_chunks())
        if self._complete or self._raw_left == 0:
            done.set_result(None)
            return done
        if self._error is not None:
            done.set_exception(self._error)
            return done
        self._sink = sink
        sink.timer = self._loop.call_later(idle_timeout_s, self._sink_idle_check)
        self._sink_backpressure()
        return done

    def _sink_body(self, data: bytes) -> None:
        sink = self._sink
        assert sink is not None
        left = self._raw_left - len(data)
        if left < 0:
            self._fail(UpstreamProtocolError(self._label, "more bytes than Content-Length"))
            return
        self._raw_left = left
        if sink.transport.is_closing():
            # The client went away mid-download: an ordinary abort, not an error. (Writing to
            # the closed transport would raise inside this callback: "Fatal error on transport".)
            logger.debug("client gone mid-body; dropping the upstream connection")
            self._end_sink(None)
            self.close()
            return
        sink.last_data = now = time.monotonic()
        sink.transport.write(data)
        sink.on_progress(now)
        if not left:
            self._complete = True
            self._end_sink(None)
            return
        self._sink_backpressure()

    def _sink_backpressure(self) -> None:
        sink = self._sink
        if sink is None or sink.can_write.is_set() or self.transport is None:
            return
        if not self._paused_reading:
            self._paused_reading = True
            self.transport.pause_reading()
            self._loop.create_task(self._resume_when_drained(sink))

    async def _resume_when_drained(self, sink: _Sink) -> None:
        await sink.can_write.wait()
        if self._sink is sink and self._paused_reading and self.transport is not None:
            self._paused_reading = False
            sink.last_data = time.monotonic()  # waiting on the client is not WAIIDE's silence
            self.transport.resume_reading()

    def _sink_idle_check(self) -> None:
        sink = self._sink
        if sink is None:
            return
        idle = time.monotonic() - sink.last_data
        if idle >= sink.idle_timeout_s and not self._paused_reading:
            self._fail(UpstreamTimeout(
                self._label, f"WAIIDE sent nothing for {sink.idle_timeout_s:g}s mid-body"))
            return
        sink.timer = self._loop.call_later(max(sink.idle_timeout_s - idle, 0.05),
                                           self._sink_idle_check)

    def _end_sink(self, error: UpstreamError | None) -> None:
        sink, self._sink = self._sink, None
        if sink is None:
            return
        if sink.timer is not None:
            sink.timer.cancel()
        if not sink.done.done():
            if error is None:
                sink.done.set_result(None)
            else:
                sink.done.set_exception(error)

    def eof_received(self) -> bool | None:
        return None  # close the transport; connection_lost finishes the bookkeeping

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        self._can_write.set()
        head = self._head
        if (head is not None and not self._complete and not head.upgrade
                and head.content_length is None and not head.chunked):
            self._complete = True  # the body was delimited by the connection's end
            self._wake_body()
            return
        reason = f"connection lost: {exc}" if exc else "connection closed by WAIIDE"
        self._fail(UpstreamReset(self._label, reason))

    def pause_writing(self) -> None:
        self._can_write.clear()

    def resume_writing(self) -> None:
        self._can_write.set()

    # -- httptools callbacks -------------------------------------------------------------------
    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name, value))

    def on_headers_complete(self) -> None:
        parser = self._parser
        assert parser is not None
        status = parser.get_status_code()
        if 100 <= status < 200 and status != 101:
            self._interim = True  # 100 Continue / 103 Early Hints: not the response
            self._headers = []
            return
        if self._head is not None:
            # A second response to one request (in the same read as the first, so the parser
            # went on): never part of this body, and the connection is out of step: drop it.
            self._fail(UpstreamProtocolError(self._label, "more than one response to a request"))
            return
        head = ResponseHead(status, self._headers, parser.should_keep_alive(),
                            status == 101 and parser.should_upgrade())
        self._headers = []
        self._head = head
        if self._head_only or status in (204, 304) or head.upgrade:
            self._complete = True
        waiter = self._head_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(head)

    def on_body(self, body: bytes) -> None:
        if self._head_only or self._error is not None:
            return
        self._body_seen += len(body)
        self._body.append(body)
        self._body_size += len(body)
        self._wake_body()

    def on_message_complete(self) -> None:
        if self._interim:
            self._interim = False
            return
        self._complete = True
        self._wake_body()

    # -- request side --------------------------------------------------------------------------
    def send_head(self, head: bytes, *, head_only: bool) -> None:
        """Send a request head and prepare to parse its response."""
        if self._closed or self.transport is None:
            raise UpstreamConnectError(self._label, "connection closed by WAIIDE")
        self._parser = httptools.HttpResponseParser(self)
        self._head_only = head_only
        self._head = None
        self._complete = False
        self._raw_left = -1
        self._body_seen = 0
        self._error = None
        self._upgraded = False
        self._upgrade_rest = b""
        self.received_any = False
        self.transport.write(head)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._closed or self.transport is None:
            raise self._error or UpstreamConnectError(self._label, "connection closed by WAIIDE")
        self.transport.write(data)

    async def drain(self) -> None:
        """Wait while the upstream socket is not taking more bytes (upload backpressure)."""
        if not self._can_write.is_set():
            await self._can_write.wait()
        if self._closed:
            raise self._error or UpstreamConnectError(self._label, "connection closed by WAIIDE")

    # -- response side -------------------------------------------------------------------------
    async def read_head(self, timeout_s: float) -> ResponseHead:
        """The response head, or UpstreamTimeout after `timeout_s` of waiting for it."""
        if self._head is not None:
            return self._head
        if self._error is not None:
            raise self._error
        waiter: asyncio.Future[ResponseHead] = self._loop.create_future()
        self._head_waiter = waiter
        timer = self._loop.call_later(timeout_s, self._head_timed_out, waiter, timeout_s)
        try:
            return await waiter
        finally:
            timer.cancel()
            self._head_waiter = None

    def _head_timed_out(self, waiter: asyncio.Future[ResponseHead], timeout_s: float) -> None:
        if not waiter.done():
            waiter.set_exception(UpstreamTimeout(
                self._label, f"no response within {timeout_s:g}s (GATEWAY_READ_TIMEOUT)"))

    def read_ready(self) -> bytes | None:
        """Everything buffered right now without waiting: bytes, or b'' at the end, or None."""
        if self._body:
            return self._take_body()
        if self._complete:
            return b""
        return None

    async def read_body(self, idle_timeout_s: float) -> bytes:
        """The next piece of the body as it arrived; b'' at its end."""
        chunks = await self.read_chunks(idle_timeout_s)
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    async def read_chunks(self, idle_timeout_s: float) -> list[bytes]:
        """Every body piece buffered now (waiting for at least one); [] at the body's end.

        The pieces are the bytes objects the socket produced, uncopied, for a vectored write.
        """
        while True:
            if self._body:
                return self._take_chunks()
            if self._complete:
                return []
            if self._error is not None:
                raise self._error
            waiter: asyncio.Future[None] = self._loop.create_future()
            self._body_waiter = waiter
            timer = self._loop.call_later(idle_timeout_s, self._body_timed_out, waiter,
                                          idle_timeout_s)
            try:
                await waiter
            finally:
                timer.cancel()
                self._body_waiter = None

    def _take_body(self) -> bytes:
        chunks = self._take_chunks()
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    def _take_chunks(self) -> list[bytes]:
        chunks = list(self._body)
        self._body.clear()
        self._body_size = 0
        if self._paused_reading and self.transport is not None:
            self._paused_reading = False
            self.transport.resume_reading()
        return chunks

    def _body_timed_out(self, waiter: asyncio.Future[None], timeout_s: float) -> None:
        if not waiter.done():
            waiter.set_exception(UpstreamTimeout(
                self._label, f"WAIIDE sent nothing for {timeout_s:g}s mid-body"))

    def _wake_body(self) -> None:
        waiter = self._body_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _fail(self, error: UpstreamError) -> None:
        if self._error is None:
            self._error = error
        self._end_sink(error)
        for waiter in (self._head_waiter, self._body_waiter):
            if waiter is not None and not waiter.done():
                waiter.set_exception(error)
        if self.transport is not None and not self.transport.is_closing():
            self.transport.abort()

    # -- lifecycle -----------------------------------------------------------------------------
    @property
    def reusable(self) -> bool:
        head = self._head
        return (not self._closed and self._complete and self._error is None
                and head is not None and head.keep_alive and not head.upgrade
                # A bodiless response (HEAD, 304) announcing a body: from a server that sends it
                # anyway, those bytes would be read as the next request's response.
                and not ((self._head_only or head.status == 304) and head.announces_body))

    @property
    def usable_idle(self) -> bool:
        return not self._closed and time.monotonic() - self.idle_since < _POOL_IDLE_S

    def park(self) -> None:
        """Mark the connection idle: any byte that arrives now fails it."""
        self._parser = None
        self.idle_since = time.monotonic()

    def detach(self) -> tuple[asyncio.Transport, bytes]:
        """Hand the socket over after a 101 (WebSocket); returns it with the bytes read past it."""
        assert self.transport is not None
        rest = self._upgrade_rest
        if self._body:
            rest = rest + b"".join(self._body)
        transport, self.transport = self.transport, None
        self._closed = True
        return transport, rest

    def close(self) -> None:
        self._closed = True
        if self.transport is not None and not self.transport.is_closing():
            self.transport.abort()
