"""Everything the gateway does not answer itself goes to WAIIDE through `Proxy.handle`.

One handler serves plain HTTP and WebSocket upgrades (Sanic routes WebSockets by method, so a
separate WebSocket route could not share the catch-all path). Per request:

1. the request target is made origin-form (an absolute-form target cannot choose another host:
   the connection always goes to WAIIDE);
2. the credential is checked (`gateway.auth`) and removed;
3. HTTP: the head goes out in one write, the body streams as it arrives, and the response streams
   back as WAIIDE produces it (`_relay_response`); WebSocket: `gateway.websocket`.

Errors before the response starts become 502/504 pages (`gateway.pages`); after it started, the
client connection is cut so a truncated body can never pass for a complete one.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

import httptools
from sanic.http.constants import Stage
from sanic.request import Request
from sanic.response import HTTPResponse

from gateway.activity import ActivityReporter, is_user_message
from gateway.auth import ALLOW, Authorizer, InternalHop, Outcome, Verdict
from gateway.config import GatewayConfig
from gateway.errors import UpstreamConnectError, UpstreamError, UpstreamReset
from gateway.headers import Headers, request_head, response_headers
from gateway.metrics import GatewayMetrics
from gateway.pages import error_body, login_page, wants_html
from gateway.strict_http import HttpViolation, same_origin_location
from gateway.tunnel import Tunnel
from gateway.upstream import UpstreamConnection, UpstreamPool
from gateway.websocket import proxy_websocket

logger = logging.getLogger(__name__)

_CUT_OFF_GRACE_S = 0.05
_DIRECT_HIGH_WATER = 512 * 1024
_DIRECT_LOW_WATER = 128 * 1024
_NO_BODY_METHODS = frozenset({"GET", "HEAD", "DELETE", "OPTIONS", "TRACE"})


def origin_form(raw_target: bytes) -> bytes | None:
    """The path and query of a request target; None for forms the gateway does not proxy."""
    if raw_target.startswith(b"/"):
        return raw_target
    if raw_target[:7].lower() == b"http://" or raw_target[:8].lower() == b"https://":
        try:
            url = httptools.parse_url(raw_target)
        except httptools.HttpParserInvalidURLError:
            return None
        path = url.path or b"/"
        return path + b"?" + url.query if url.query else path
    return None


def _finish_sanic_response(request: Request) -> None:
    """Tell Sanic's HTTP/1 state machine that the body it framed was sent in full.

    Sanic counts body bytes only through its own `send`; these are the fields its
    `http1_response_normal` sets when the last byte goes out (sanic 25.12, pinned < 26).
    """
    http = request.stream
    http.response_bytes_left = 0  # type: ignore[union-attr]
    http.response_func = None  # type: ignore[union-attr]
    http.stage = Stage.IDLE  # type: ignore[union-attr]


def strip_prefix(target: bytes, prefix: str | None) -> bytes | None:
    """`target` with the public `prefix` removed (None if it is not under it)."""
    if not prefix:
        return origin_form(target)
    raw = prefix.encode()
    if not target.startswith(raw):
        return None
    return target[len(raw):] or b"/"


def error_response(request: Request, status: int, detail: str, *, upstream: str | None = None,
                   hint: str | None = None) -> HTTPResponse:
    body, content_type = error_body(status, detail, accept=request.headers.get("accept", ""),
                                    upstream=upstream, hint=hint)
    return HTTPResponse(body, status=status, content_type=content_type,
                        headers={"Cache-Control": "no-store"})


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
    def processed_headers(self):  # type: ignore[no-untyped-def,override]
        yield from self.raw_fields
        for name, value in self.headers.items():
            yield name.encode("latin-1"), f"{value}".encode("latin-1")


class Tally:
    """What one proxied exchange did, for the metrics."""

    __slots__ = ("status", "bytes_in", "bytes_out")

    def __init__(self) -> None:
        self.status = 0
        self.bytes_in = 0
        self.bytes_out = 0


class Proxy:
    """The proxy of one gateway worker (its upstream pool lives in that worker's event loop)."""

    def __init__(self, config: GatewayConfig, *, auth: Authorizer | None = None,
                 activity: ActivityReporter | None = None) -> None:
        self.config = config
        self.auth = auth
        self.activity = activity
        self.pool: UpstreamPool | None = None
        self.metrics: GatewayMetrics | None = None  # set per worker in gateway.app
        self.tunnels: set[Tunnel] = set()
        self.internal = InternalHop(config.internal_secret) if config.internal_secret else None
        # Compressed WebSocket messages cannot be told apart (keepalive or user input), so when
        # activity is reported the gateway declines permessage-deflate (see gateway.activity).
        self.strip_ws_extensions = config.ws_compression == "off"

    def start(self) -> None:
        """Open per-worker resources; called from `before_server_start`."""
        cfg = self.config
        self.pool = UpstreamPool(host=cfg.waiide_host, port=cfg.waiide_port,
                                 unix_socket=cfg.waiide_socket, label=cfg.upstream_label,
                                 connect_timeout_s=cfg.connect_timeout_s,
                                 max_idle=cfg.upstream_pool_size)
        if self.auth is not None:
            self.auth.start()

    def going_away(self) -> None:
        """The worker is stopping: close every WebSocket with 1001 now, while the sockets still
        flush (Sanic aborts whatever is left after its graceful timeout, which clients see as a
        1006)."""
        for tunnel in list(self.tunnels):
            tunnel.shutdown()

    def stop(self) -> None:
        if self.pool is not None:
            self.pool.close()

    # -- entry ---------------------------------------------------------------------------------
    async def handle(self, request: Request) -> HTTPResponse | None:
        """A request to the gateway port that is not one of the gateway's own routes."""
        target = origin_form(request.raw_url)
        if target is None or getattr(request, "bad_target", False):
            return error_response(request, 400, "The request target must be a path.")
        return await self.forward(request, target)

    async def forward(self, request: Request, target: bytes, *, prefix: str | None = None,
                      login: Callable[[Request], HTTPResponse] | None = None,
                      ) -> HTTPResponse | None:
        """Authorize, then proxy `target` to WAIIDE (HTTP or WebSocket).

        Args:
            prefix: the public path prefix stripped from `target` (X-Forwarded-Prefix).
            login: answers a browser that has no credential yet (the hub's OAuth redirect).
        """
        metrics = self.metrics
        if metrics is None or request.headers.get("upgrade"):
            return await self._forward(request, target, prefix, login, None)
        tally = Tally()
        token = metrics.request_started("proxy")
        try:
            response = await self._forward(request, target, prefix, login, tally)
            if response is not None:
                tally.status = response.status
                tally.bytes_out += len(response.body or b"")
            return response
        except BaseException:
            tally.status = tally.status or 499  # the client went away (nginx's convention)
            raise
        finally:
            metrics.request_finished(token, request.method, "proxy", tally.status,
                                     tally.bytes_in, tally.bytes_out)

    async def _forward(self, request: Request, target: bytes, prefix: str | None,
                       login: Callable[[Request], HTTPResponse] | None,
                       tally: Tally | None) -> HTTPResponse | None:
        if request.method == "CONNECT":
            return error_response(request, 405, "This gateway is not a forward proxy.")
        websocket = request.headers.get("upgrade", "").lower() == "websocket"
        verdict = await self.authorize(request, websocket)
        if verdict.outcome is not Outcome.ALLOW:
            if login is not None and verdict.outcome is Outcome.MISSING and not websocket \
                    and request.method == "GET" and wants_html(request.headers.get("accept", "")):
                return login(request)
            return self.refuse(request, verdict)
        if verdict.target is not None:
            target = strip_prefix(verdict.target, prefix) or target
        if self.activity is not None:
            self.activity.touch()
        if websocket:
            return await proxy_websocket(self, request, target, verdict, prefix)
        return await self._proxy_http(request, target, verdict, prefix, tally or Tally())

    async def authorize(self, request: Request, websocket: bool) -> Verdict:
        if self.internal is not None:
            verdict = self.internal.check(request)
            if verdict is not None:
                return verdict
        if self.auth is None:
            return ALLOW
        return await self.auth.authorize(request, websocket=websocket)

    def refuse(self, request: Request, verdict: Verdict) -> HTTPResponse:
        assert self.auth is not None
        if verdict.outcome is Outcome.REDIRECT:
            assert verdict.target is not None
            secure = request.headers.get("x-forwarded-proto", request.scheme) == "https"
            return HTTPResponse(status=302, content_type="text/plain; charset=utf-8", headers={
                "Location": same_origin_location(verdict.target),
                "Set-Cookie": self.auth.cookie_header(secure, verdict.token),
                "Cache-Control": "no-store",
            })
        status = 401 if verdict.outcome is Outcome.MISSING else 403
        accept = request.headers.get("accept", "")
        under_hub = self.config.under_hub
        if wants_html(accept) and request.method in ("GET", "HEAD"):
            return HTTPResponse(login_page(failed=status == 403, hub=under_hub), status=status,
                                content_type="text/html; charset=utf-8",
                                headers={"Cache-Control": "no-store"})
        if under_hub:
            detail = ("A JupyterHub token with access to this server is required: "
                      "Authorization: token <t>." if status == 401 else
                      "This token does not grant access to this server.")
        else:
            detail = ("A token is required: Authorization: token <t>, or ?token=<t>."
                      if status == 401 else "The token is not valid.")
        return error_response(request, status, detail)

    # -- hooks for metrics and activity ----------------------------------------------------------
    def on_client_message(self, opcode: int, length: int, compressed: bool, first: int) -> None:
        """A WebSocket message from the client began (see FrameScanner)."""
        if self.activity is not None and is_user_message(opcode, length, compressed, first):
            self.activity.touch()

    def websocket_opened(self, tunnel: Tunnel) -> None:
        """A WebSocket tunnel started."""
        self.tunnels.add(tunnel)
        if self.metrics is not None:
            self.metrics.websocket_opened()

    def websocket_progress(self, tunnel: Tunnel) -> None:
        """Periodically and at the end: messages relayed since the last call."""
        if self.metrics is not None:
            new_in, new_out = tunnel.take_message_counts()
            if new_in:
                self.metrics.websocket_messages("in", new_in)
            if new_out:
                self.metrics.websocket_messages("out", new_out)

    def websocket_closed(self, tunnel: Tunnel) -> None:
        """A WebSocket tunnel ended."""
        self.tunnels.discard(tunnel)
        if self.metrics is not None:
            self.websocket_progress(tunnel)
            self.metrics.websocket_closed()

    # -- HTTP ----------------------------------------------------------------------------------
    def build_head(self, request: Request, target: bytes, verdict: Verdict, *,
                   body_length: int | None, chunked: bool, websocket: bool = False,
                   prefix: str | None = None) -> bytes:
        drop = frozenset({"authorization"}) if verdict.drop_authorization else frozenset()
        if websocket and self.strip_ws_extensions:
            drop = drop | {"sec-websocket-extensions"}
        return request_head(method=request.method, target=target, headers=request.headers.items(),
                            client_ip=request.ip, scheme="https" if request.scheme in (
                                "https", "wss") else "http",
                            body_length=body_length, chunked=chunked, websocket=websocket,
                            drop=drop, cookie=verdict.cookie, prefix=prefix)

    async def _proxy_http(self, request: Request, target: bytes, verdict: Verdict,
                          prefix: str | None, tally: Tally) -> HTTPResponse | None:
        assert self.pool is not None
        stream = request.stream
        body_kind = stream.request_body if stream is not None else None
        length = stream.request_bytes if body_kind is True else None  # type: ignore[union-attr]
        cfg = self.config
        if cfg.max_body_bytes and length is not None and length > cfg.max_body_bytes:
            return error_response(request, 413, f"The body has {length} bytes; the limit is "
                                  f"{cfg.max_body_bytes} (GATEWAY_MAX_BODY_BYTES).")
        chunked = body_kind == "chunked"
        if length is None and not chunked and request.method not in _NO_BODY_METHODS:
            length = 0
        head = self.build_head(request, target, verdict, body_length=length, chunked=chunked,
                               prefix=prefix)
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

    async def _send(self, request: Request, head: bytes, head_only: bool, body_kind: object,
                    chunked: bool, tally: Tally,
                    ) -> tuple[UpstreamConnection, asyncio.Task[None] | None]:
        """Send the head (retrying once if a pooled socket turned out dead) and start the body."""
        assert self.pool is not None
        conn = await self.pool.acquire()
        conn.start(head, head_only=head_only)
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
                    conn.start(head, head_only=head_only)
            return conn, None
        upload = asyncio.get_running_loop().create_task(
            self._upload(request, conn, chunked, tally))
        return conn, upload

    async def _upload(self, request: Request, conn: UpstreamConnection, chunked: bool,
                      tally: Tally) -> None:
        """Stream the request body to WAIIDE as it arrives, with backpressure both ways."""
        limit = self.config.max_body_bytes
        sent = 0
        stream = request.stream
        assert stream is not None
        while True:
            chunk = await stream.read()
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
        transport = request.transport
        protocol = request.protocol
        can_write: asyncio.Event = protocol._can_write  # noqa: SLF001 - Sanic's flow control
        # Deeper than Sanic's 64 KiB: fewer stop-and-go cycles on a fast client, still bounded.
        transport.set_write_buffer_limits(high=_DIRECT_HIGH_WATER, low=_DIRECT_LOW_WATER)
        def progress(now: float) -> None:  # keeps Sanic's idle timer (RESPONSE_TIMEOUT) quiet
            protocol._time = now  # noqa: SLF001

        relayed = conn.relay_body(transport, can_write, self.config.read_timeout_s, progress)
        try:
            await relayed
        except UpstreamError as exc:
            await self._cut_off(request, exc, tally.bytes_out)
            raise
        if transport.is_closing():
            raise asyncio.CancelledError  # the client went away; Sanic ends quietly
        tally.bytes_out += remaining
        protocol._time = time.monotonic()  # noqa: SLF001 - Sanic's idle timer
        _finish_sanic_response(request)

    async def _await_head(self, conn: UpstreamConnection, upload: asyncio.Task[None] | None):  # type: ignore[no-untyped-def]
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
            self.metrics.upstream_error(exc.kind)  # type: ignore[arg-type]
        logger.warning("%s %s: WAIIDE failed after %d body bytes (%s); cutting the client off",
                       request.method, request.path, sent, exc.cause)
        request.transport.abort()
        await asyncio.sleep(_CUT_OFF_GRACE_S)  # cancelled here once Sanic sees the abort

    def upstream_failed(self, request: Request, exc: UpstreamError) -> HTTPResponse:
        if self.metrics is not None:
            self.metrics.upstream_error(exc.kind)  # type: ignore[arg-type]
        logger.warning("%s %s -> %d: %s", request.method, request.path, exc.status, exc)
        hint = ("Is the IDE running? The supervisor restarts it; this page reloads itself."
                if exc.status == 502 else None)
        return error_response(request, exc.status, exc.cause, upstream=exc.upstream, hint=hint)

