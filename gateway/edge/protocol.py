"""Sanic's HTTP/1 protocol with the gateway's strict edge (`gateway.edge.rules`) in its parser.

Sanic 25.12's own parser is lenient where RFC 9112 requires a 400 (Python's `int()` and `strip()`
on framing fields, no check of the CRLF after chunk data, field lines forwarded as sent). Here
`StrictHttp` replaces the two methods of `sanic.http.Http` that read the request: the head
(`http1_request_header`) and the body (`read`); everything else (routing, responses, keep-alive)
stays Sanic's. Every violation is answered with the gateway's error body and the connection is
closed; WAIIDE only ever gets heads built from validated fields.

Also here, per worker (`EdgeGuard`):

- GATEWAY_HEADER_TIMEOUT: the head must be complete this many seconds after the header phase
  began — at the connection's first byte, or, on a keep-alive connection, when the previous
  response ended and the next request's bytes are there. Then 408 and close. (Sanic's own
  REQUEST_TIMEOUT restarts with every byte, so a client dripping one byte a second held a
  connection forever.)
- GATEWAY_MAX_HEADER_CONNECTIONS: connections still in the header phase (new ones that have sent
  nothing yet included). At the cap, the one that has been in the phase longest is let go (408
  if it sent anything): a real client sends its head in milliseconds, so the oldest is the
  likeliest to be a slow or idle attacker.

Sanic internals used (sanic 25.12, pinned < 26): `Http`'s fields and stages, `HttpProtocol`'s
`recv_buffer`, `_data_received` and `receive_more`.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sanic import Sanic
from sanic.compat import Header
from sanic.exceptions import BadRequest
from sanic.http import Http
from sanic.http.http1 import HTTP_CONTINUE
from sanic.request import Request
from sanic.response import HTTPResponse
from sanic.server.protocols.http_protocol import HttpProtocol

from gateway.edge.rules import (
    MAX_CHUNK_LINE,
    HttpViolation,
    RequestHead,
    chunk_size,
    parse_head,
)
from gateway.pages import error_body

logger = logging.getLogger(__name__)

_BARE_LF = re.compile(rb"(?<!\r)\n")


@dataclass(frozen=True, slots=True)
class EdgeSettings:
    """The edge's limits (from GatewayConfig)."""

    header_timeout_s: float = 20.0
    max_header_connections: int = 256
    max_body_bytes: int = 0  # 0 = unlimited


class BodyRejected(HttpViolation, BadRequest):
    """A violation found while reading a body.

    Also a Sanic BadRequest, because Sanic drains an unread body after the handler and treats
    only its own errors there as "close the connection" (anything else escapes as a traceback).
    """

    def __init__(self, status: int, detail: str) -> None:
        HttpViolation.__init__(self, status, detail)
        self.status_code = status


class EdgeGuard:
    """The connections of one worker that have not finished a request head, oldest first."""

    def __init__(self, settings: EdgeSettings) -> None:
        self.settings = settings
        self._waiting: dict[StrictHttpProtocol, None] = {}
        self.evicted = 0

    def enter(self, protocol: StrictHttpProtocol) -> None:
        waiting = self._waiting
        if protocol in waiting or protocol.evicted:
            return
        while len(waiting) >= self.settings.max_header_connections > 0:
            oldest = next(iter(waiting))
            del waiting[oldest]
            self.evicted += 1
            oldest.evict()
        waiting[protocol] = None

    def leave(self, protocol: StrictHttpProtocol) -> None:
        self._waiting.pop(protocol, None)

    def __len__(self) -> int:
        return len(self._waiting)


def edge_guard(app: Sanic[Any, Any]) -> EdgeGuard:
    guard = getattr(app.ctx, "edge_guard", None)
    if guard is None:
        guard = app.ctx.edge_guard = EdgeGuard(EdgeSettings())
    assert isinstance(guard, EdgeGuard)
    return guard


class StrictHttp(Http):
    """Sanic's HTTP/1 request cycle with a strict request reader (see the module docstring)."""

    __slots__ = ("_chunked", "_guard")

    def __init__(self, protocol: StrictHttpProtocol) -> None:
        super().__init__(protocol)  # type: ignore[no-untyped-call]
        self._guard = protocol.guard
        self._chunked = False

    async def http1_request_header(self) -> None:
        protocol: StrictHttpProtocol = self.protocol  # type: ignore[assignment]
        guard = self._guard
        buf = self.recv_buffer
        end = buf.find(b"\r\n\r\n")
        if 0 <= end < self.HEADER_MAX_SIZE:  # the usual case: the whole head came in one read
            guard.leave(protocol)
        else:
            guard.enter(protocol)
            try:
                end = await self._await_head(protocol)
            finally:
                guard.leave(protocol)
        head_bytes = bytes(buf[:end])
        self.url = None
        head = parse_head(head_bytes)
        self._start_request(head, head_bytes)
        del buf[:end + 4]

    async def _await_head(self, protocol: StrictHttpProtocol) -> int:
        """Offset of the CRLF CRLF ending the head, within the header deadline."""
        buf = self.recv_buffer
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._guard.settings.header_timeout_s
        try:
            async with asyncio.timeout_at(deadline):
                while True:
                    end: int = buf.find(b"\r\n\r\n")
                    if end >= self.HEADER_MAX_SIZE or (end < 0 and
                                                      len(buf) >= self.HEADER_MAX_SIZE):
                        raise HttpViolation(413, "The request head exceeds "
                                                 f"{self.HEADER_MAX_SIZE} bytes.")
                    if end >= 0:
                        return end
                    if _BARE_LF.search(buf):  # it could never end with CRLF CRLF
                        raise HttpViolation(400, "Request lines must end with CRLF.")
                    if protocol.evicted:
                        raise HttpViolation(408, "Too many connections are sending request "
                                                 "heads; this one waited longest.")
                    await self._receive_more()
        except TimeoutError:
            raise HttpViolation(408, "The request head was not complete within "
                                     f"{self._guard.settings.header_timeout_s:g}s "
                                     "(GATEWAY_HEADER_TIMEOUT).") from None

    def _start_request(self, head: RequestHead, head_bytes: bytes) -> None:
        protocol = self.protocol
        app = protocol.app
        self.head_only = head.method == "HEAD"
        self.keep_alive = head.keep_alive and app.config.KEEP_ALIVE
        self.upgrade_websocket = head.upgrade == "websocket"
        self.url = head.target.decode("ascii")
        request = protocol.request_class(
            url_bytes=head.target, headers=Header(head.fields), head=head_bytes,
            version=head.version, method=head.method,
            transport=protocol.transport,  # type: ignore[arg-type]
            app=app)
        protocol.request_class._current.set(request)
        self.request_bytes_left = self.request_bytes = 0
        self._chunked = head.chunked
        if head.chunked or head.content_length is not None:
            if head.expect is not None:
                if head.expect != "100-continue":
                    raise HttpViolation(417, f"Unknown expectation: {head.expect}")
                self.expecting_continue = True
            if head.chunked:
                self.request_body = "chunked"  # type: ignore[assignment]
            else:
                self.request_body = True  # type: ignore[assignment]
                self.request_bytes_left = self.request_bytes = head.content_length
        self.request, request.stream = request, self
        protocol.state["requests_count"] += 1

    # -- body ------------------------------------------------------------------------------------
    async def read(self) -> bytes | None:
        """The next piece of the request body; None at its end."""
        if self.expecting_continue:
            self.expecting_continue = False
            await self._send(HTTP_CONTINUE)
        try:
            left: int = self.request_bytes_left or 0
            if self._chunked and self.request_body and left == 0:
                left = await self._next_chunk()
                if left == 0:
                    await self._end_of_chunks()
                    self.request_body = None
                    return None
                self.request_bytes_left = left
                self.request_bytes = total = (self.request_bytes or 0) + left
                self._check_size(total)
            elif (self.request_bytes or 0) > self.request_max_size:  # Content-Length
                raise HttpViolation(413, "The body exceeds the size limit.")
            if not left:
                self.request_body = None
                return None
            return await self._piece(left)
        except HttpViolation as exc:
            self.keep_alive = False
            self.request_body = None
            raise BodyRejected(exc.status, exc.detail) from None

    def _check_size(self, total: int) -> None:
        limit = self._guard.settings.max_body_bytes
        if limit and total > limit:
            raise HttpViolation(413, f"The body exceeds {limit} bytes "
                                     "(GATEWAY_MAX_BODY_BYTES).")
        if total > self.request_max_size:
            raise HttpViolation(413, "The body exceeds the size limit.")

    async def _piece(self, left: int) -> bytes:
        buf = self.recv_buffer
        if not buf:
            await self._receive_more()
        take = min(len(buf), left)
        if take == left and self._chunked:
            # The chunk's last piece is handed on only once the CRLF after it is there and right.
            while len(buf) < take + 2:
                await self._receive_more()
            if buf[take:take + 2] != b"\r\n":
                raise HttpViolation(400, "Chunk data must be followed by CRLF.")
            data = bytes(buf[:take])
            del buf[:take + 2]
        else:
            data = bytes(buf[:take])
            del buf[:take]
        self.request_bytes_left = left - take
        return data

    async def _line(self) -> bytes:
        """One CRLF-ended line of chunked framing, without its CRLF."""
        buf = self.recv_buffer
        while True:
            lf = buf.find(b"\n")
            if lf >= 0:
                if lf == 0 or buf[lf - 1] != 0x0D:
                    raise HttpViolation(400, "Chunked framing lines must end with CRLF.")
                line = bytes(buf[:lf - 1])
                del buf[:lf + 1]
                return line
            if len(buf) > MAX_CHUNK_LINE:
                raise HttpViolation(400, "A chunk size line is too long.")
            await self._receive_more()

    async def _next_chunk(self) -> int:
        return chunk_size(await self._line())

    async def _end_of_chunks(self) -> None:
        if await self._line():
            raise HttpViolation(400, "Trailer fields after a chunked body are not accepted.")


class StrictHttpProtocol(HttpProtocol):
    """Sanic's HttpProtocol with `StrictHttp` and the worker's `EdgeGuard`."""

    HTTP_CLASS = StrictHttp
    __slots__ = ("evicted", "guard")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.guard = edge_guard(self.app)
        self.evicted = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # type: ignore[no-untyped-call]
        self.guard.enter(self)  # a new connection is in its header phase until its head is in

    def connection_lost(self, exc: Exception | None) -> None:
        self.guard.leave(self)
        super().connection_lost(exc)  # type: ignore[no-untyped-call]

    def evict(self) -> None:
        """Let this connection go: at once if it has sent nothing, else with a 408."""
        self.evicted = True
        http = self._http if hasattr(self, "_http") else None
        if http is None or not self.recv_buffer:
            logger.debug("closing an idle new connection: too many in the header phase")
            self.close()
        else:
            self._data_received.set()  # StrictHttp._await_head answers 408


def _violation_response(request: Request, exc: Exception) -> HTTPResponse:
    assert isinstance(exc, HttpViolation)
    body, content_type = error_body(exc.status, exc.detail,
                                    accept=request.headers.get("accept", ""))
    logger.debug("refused at the edge: %d %s", exc.status, exc.detail)
    return HTTPResponse(body, status=exc.status, content_type=content_type,
                        headers={"Cache-Control": "no-store", "Connection": "close"})


def install_edge(app: Sanic[Any, Any], settings: EdgeSettings) -> None:
    """Give `app`'s workers the edge settings and answer violations with the gateway's page.

    Serve with `protocol=StrictHttpProtocol` (gateway.__main__, gateway.mainport).
    """
    app.ctx.edge_guard = EdgeGuard(settings)
    handler: Callable[[Request, Exception], HTTPResponse] = _violation_response
    app.error_handler.add(HttpViolation, handler)
