"""The HTTP relay: one request to WAIIDE and its response back, streamed both ways.

The head goes out in one write, the body streams as it arrives (`_upload`), and the response
streams back as WAIIDE produces it (`relay_response`). A body of known length goes socket to
socket around Sanic's `send` (`_pump_length_delimited`), with Sanic's own flow control.

Errors before the response starts become 502/504 pages; after it started, the client connection
is cut so a truncated body can never pass for a complete one.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator

from sanic.request import Request
from sanic.response import HTTPResponse

from gateway.config import GatewayConfig
from gateway.edge.rules import HttpViolation
from gateway.errors import UpstreamConnectError, UpstreamError
from gateway.http.headers import Headers, ResponseHead, response_headers
from gateway.http.pool import UpstreamPool
from gateway.http.upstream import UpstreamConnection
from gateway.metrics import GatewayMetrics
from gateway.pages import error_response
from gateway.sanic_compat import (
    ClientFlow,
    finish_response,
    read_body_piece,
    request_body_framing,
)

logger = logging.getLogger(__name__)

_CUT_OFF_GRACE_S = 0.05
_DIRECT_HIGH_WATER = 512 * 1024
_DIRECT_LOW_WATER = 128 * 1024
_NO_BODY_METHODS = frozenset({"GET", "HEAD", "DELETE", "OPTIONS", "TRACE"})

HeadBuilder = Callable[[int | None, bool], bytes]
"""Builds the request head for WAIIDE from (body length or None, chunked)."""


class Tally:
    """What one proxied exchange did, for the metrics and the activity record."""

    __slots__ = ("bytes_in", "bytes_out", "proxied", "status")

    def __init__(self) -> None:
        self.proxied = False  # allowed through to WAIIDE (a refused request is nobody's use)
        self.status = 0
        self.bytes_in = 0
        self.bytes_out = 0


class PassthroughResponse(HTTPResponse):
    """A response whose fields are WAIIDE's bytes, written as they came.

    `headers` holds only what Sanic itself reads and sets (Content-Length, and then its framing
    and Connection fields); WAIIDE's other fields skip Sanic's decode, sanitize and encode, and no
    Content-Type is invented when WAIIDE sent none.
    """

    __slots__ = ("raw_fields",)

    def __init__(self, body: bytes | None = None, *, status: int, raw_fields: Headers,
                 content_length: bytes | None) -> None:
        super().__init__(body, status=status,
                         headers=None if content_length is None else
                         {"content-length": content_length.decode("latin-1")})
        self.raw_fields = raw_fields

    @property
    def processed_headers(self) -> Iterator[tuple[bytes, bytes]]:
        yield from self.raw_fields
        for name, value in self.headers.items():
            yield name.encode("latin-1"), f"{value}".encode("latin-1")


class HttpRelay:
    """The HTTP relay of one worker; its upstream pool lives in that worker's event loop."""

    def __init__(self, config: GatewayConfig) -> None:
        self.config = config
        self.pool: UpstreamPool | None = None
        self.metrics: GatewayMetrics | None = None  # set per worker in gateway.app

    def start(self) -> None:
        """Open the upstream pool; called from `before_server_start`."""
        cfg = self.config
        self.pool = UpstreamPool(host=cfg.waiide_host, port=cfg.waiide_port,
                                 unix_socket=cfg.waiide_socket, label=cfg.upstream_label,
                                 connect_timeout_s=cfg.connect_timeout_s,
                                 max_idle=cfg.upstream_pool_size)

    def stop(self) -> None:
        if self.pool is not None:
            self.pool.close()

    async def forward(self, request: Request, build_head: HeadBuilder,
                      tally: Tally) -> HTTPResponse | None:
        """Send `request` to WAIIDE with the head `build_head` makes; relay the answer."""
        assert self.pool is not None
        body_kind, length = request_body_framing(request)
        cfg = self.config
        if cfg.max_body_bytes and length is not None and length > cfg.max_body_bytes:
            return error_response(request, 413, f"The body has {length} bytes; the limit is "
                                  f"{cfg.max_body_bytes} (GATEWAY_MAX_BODY_BYTES).")
        chunked = body_kind == "chunked"
        if length is None and not chunked and request.method not in _NO_BODY_METHODS:
            length = 0
        head = build_head(length, chunked)
        head_only = request.method == "HEAD"
        try:
            conn, upload = await self._send(request, head, head_only, body_kind, chunked, tally)
        except UpstreamError as exc:
            return self.upstream_failed(request, exc)
        try:
            return await self.relay_response(request, conn, upload, tally)
        except HttpViolation as exc:  # the client's body broke its framing or the size limit
            return error_response(request, exc.status, exc.detail)
        finally:
            if upload is not None and (not upload.done() or upload.cancelled()
                                       or upload.exception() is not None):
                # WAIIDE got part of a body at most: this connection can never carry another.
                upload.cancel()
                conn.close()
            self.pool.release(conn)

    async def _send(self, request: Request, head: bytes, head_only: bool,
                    body_kind: bool | str | None,
                    chunked: bool, tally: Tally,
                    ) -> tuple[UpstreamConnection, asyncio.Task[None] | None]:
        """Send the head (retrying once if a pooled socket turned out dead) and start the body."""
        assert self.pool is not None
        conn = await self.pool.acquire()
        conn.send_head(head, head_only=head_only)
        if not body_kind:
            if conn.reused:
                # A reused socket may have been closed by WAIIDE as we picked it; nothing was
                # consumed from the client yet, so one retry on a fresh socket is safe.
                try:
                    await conn.read_head(self.config.read_timeout_s)
                except UpstreamConnectError:
                    if conn.received_any:
                        raise
                    conn.close()
                    conn = await self.pool.connect()
                    conn.send_head(head, head_only=head_only)
            return conn, None
        upload = asyncio.get_running_loop().create_task(
            self._upload(request, conn, chunked, tally))
        return conn, upload

    async def _upload(self, request: Request, conn: UpstreamConnection, chunked: bool,
                      tally: Tally) -> None:
        """Stream the request body to WAIIDE as it arrives, with backpressure both ways."""
        limit = self.config.max_body_bytes
        sent = 0
        while True:
            chunk = await read_body_piece(request)
            if chunk is None:
                break
            sent += len(chunk)
            tally.bytes_in = sent
            if limit and sent > limit:
                raise HttpViolation(413, f"The body exceeds {limit} bytes "
                                         "(GATEWAY_MAX_BODY_BYTES).")
            if chunked:
                conn.write(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
            else:
                conn.write(chunk)
            await conn.drain()
        if chunked:
            conn.write(b"0\r\n\r\n")

    async def relay_response(self, request: Request, conn: UpstreamConnection,
                             upload: asyncio.Task[None] | None,
                             tally: Tally | None = None) -> HTTPResponse | None:
        cfg = self.config
        tally = tally or Tally()
        try:
            head = await self._await_head(conn, upload)
        except UpstreamError as exc:
            conn.close()
            return self.upstream_failed(request, exc)
        raw_headers = head.headers
        if head.status in (204, 304):  # no body may follow; Sanic warns about a length field
            raw_headers = [(n, v) for n, v in raw_headers if n.lower() != b"content-length"]
        fields, content_length = response_headers(raw_headers)
        first = conn.read_ready()
        if first == b"" or (first is not None and conn.read_ready() == b""):
            # The whole response is already here: one write for head and body.
            return PassthroughResponse(first or b"", status=head.status, raw_fields=fields,
                                       content_length=content_length)
        tally.status = head.status
        response = await request.respond(PassthroughResponse(
            status=head.status, raw_fields=fields, content_length=content_length))
        # Sanic writes the head with the first send; send it now even with no body bytes yet,
        # because a length-delimited body then bypasses Sanic's send.
        sent = len(first) if first else 0
        await response.send(first or b"")
        tally.bytes_out = sent
        if head.content_length is not None and request.method != "HEAD":
            await self._pump_length_delimited(request, conn, head.content_length - sent, tally)
            return None
        while True:
            try:
                chunk = await conn.read_body(cfg.read_timeout_s)
            except UpstreamError as exc:
                await self._cut_off(request, exc, tally.bytes_out)
                raise
            if not chunk:
                break
            tally.bytes_out += len(chunk)
            await response.send(chunk)
        # An upload still running here was answered early by WAIIDE; the caller cancels it and
        # Sanic drains or drops the rest of the client's body.
        await response.eof()
        return None

    async def _pump_length_delimited(self, request: Request, conn: UpstreamConnection,
                                     remaining: int, tally: Tally) -> None:
        """The rest of a body of known length, relayed socket to socket around Sanic's send.

        `UpstreamConnection.relay_body` writes each piece to the client as it arrives, with
        Sanic's own flow control (its protocol pauses on the client socket's high-water mark).
        Profiling a 256 MiB download showed the per-piece task wake-ups and Sanic's send as the
        cost left besides the kernel's copies. Sanic is told the body is complete at the end.
        """
        client = ClientFlow(request)
        transport = client.transport
        # Deeper than Sanic's 64 KiB: fewer stop-and-go cycles on a fast client, still bounded.
        transport.set_write_buffer_limits(high=_DIRECT_HIGH_WATER, low=_DIRECT_LOW_WATER)
        # client.touch keeps Sanic's idle timer (RESPONSE_TIMEOUT) quiet while bytes flow.
        relayed = conn.relay_body(transport, client.can_write, self.config.read_timeout_s,
                                  client.touch)
        try:
            await relayed
        except UpstreamError as exc:
            await self._cut_off(request, exc, tally.bytes_out)
            raise
        if transport.is_closing():
            raise asyncio.CancelledError  # the client went away; Sanic ends quietly
        tally.bytes_out += remaining
        client.touch()
        finish_response(request)

    async def _await_head(self, conn: UpstreamConnection,
                          upload: asyncio.Task[None] | None) -> ResponseHead:
        timeout = self.config.read_timeout_s
        if upload is None:
            return await conn.read_head(timeout)
        head_task = asyncio.ensure_future(conn.read_head(timeout))
        try:
            done, _ = await asyncio.wait({head_task, upload}, return_when=asyncio.FIRST_COMPLETED)
        except BaseException:  # the client went away: nobody will ever read the head
            head_task.cancel()
            raise
        if upload in done and upload.exception() is not None and not head_task.done():
            head_task.cancel()
            exc = upload.exception()
            if isinstance(exc, (UpstreamError, HttpViolation)):
                raise exc
            raise UpstreamConnectError(self.config.upstream_label, f"upload failed: {exc}")
        return await head_task

    async def _cut_off(self, request: Request, exc: UpstreamError, sent: int) -> None:
        """WAIIDE failed mid-body: cut the client off so the body cannot pass for complete.

        Aborting the transport makes Sanic cancel this handler, which it treats as a lost client
        and ends quietly; an exception raised after the head would instead log a traceback for
        something the warning below already says.
        """
        if self.metrics is not None:
            self.metrics.upstream_error(exc.kind)
        logger.warning("%s %s: WAIIDE failed after %d body bytes (%s); cutting the client off",
                       request.method, request.path, sent, exc.cause)
        ClientFlow(request).transport.abort()
        await asyncio.sleep(_CUT_OFF_GRACE_S)  # cancelled here once Sanic sees the abort

    def upstream_failed(self, request: Request, exc: UpstreamError) -> HTTPResponse:
        if self.metrics is not None:
            self.metrics.upstream_error(exc.kind)
        logger.warning("%s %s -> %d: %s", request.method, request.path, exc.status, exc)
        hint = ("Is the IDE running? The supervisor restarts it; this page reloads itself."
                if exc.status == 502 else None)
        return error_response(request, exc.status, exc.cause, upstream=exc.upstream, hint=hint)

