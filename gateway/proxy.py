"""Everything the gateway does not answer itself goes to WAIIDE through `Proxy.handle`.

One handler serves plain HTTP and WebSocket upgrades (Sanic routes WebSockets by method, so a
separate WebSocket route could not share the catch-all path). Per request:

1. the request target is made origin-form (`gateway.http.target`: an absolute-form target cannot
   choose another host, the connection always goes to WAIIDE);
2. the credential is checked and removed (`gateway.access.gate.Access`);
3. the head for WAIIDE is built from the request (`gateway.http.headers`);
4. HTTP goes through `gateway.http.relay.HttpRelay`, upgrades through
   `gateway.ws.upgrade.WebSocketProxy`.
"""

from __future__ import annotations

from collections.abc import Callable

from sanic.request import Request
from sanic.response import HTTPResponse

from gateway.access.gate import Access
from gateway.access.verdict import Outcome, Verdict
from gateway.activity.classify import PING, http_use, ws_message_use
from gateway.activity.state import ActivityState
from gateway.config import GatewayConfig
from gateway.http.headers import request_head
from gateway.http.relay import HttpRelay, Tally
from gateway.http.target import ide_prefix_of, origin_form, strip_prefix
from gateway.metrics import GatewayMetrics
from gateway.pages import error_response, wants_html
from gateway.ws.registry import TunnelRegistry
from gateway.ws.upgrade import WebSocketProxy

LoginPage = Callable[[Request], HTTPResponse]


class Proxy:
    """The proxy of one gateway worker: access, then the HTTP relay or a WebSocket tunnel."""

    def __init__(self, config: GatewayConfig, access: Access, activity: ActivityState) -> None:
        self.config = config
        self.access = access
        self.activity = activity
        self.relay = HttpRelay(config)
        self.tunnels = TunnelRegistry()
        self.websockets = WebSocketProxy(config, self.relay, self.tunnels, self._client_message)
        self._metrics: GatewayMetrics | None = None
        self._ide_prefix = f"{config.service_prefix}WAIIDE".encode()
        # Compressed WebSocket messages cannot be told apart (keepalive or user input), so when
        # activity is reported the gateway declines permessage-deflate (gateway.activity.classify).
        self._strip_ws_extensions = config.ws_compression == "off"

    @property
    def metrics(self) -> GatewayMetrics | None:
        return self._metrics

    @metrics.setter
    def metrics(self, metrics: GatewayMetrics | None) -> None:
        """Set per worker in gateway.app, once the worker's metric files exist."""
        self._metrics = self.relay.metrics = self.tunnels.metrics = metrics

    def start(self) -> None:
        """Open per-worker resources; called from `before_server_start`."""
        self.relay.start()
        self.access.start()

    def going_away(self) -> None:
        """The worker is stopping: close every WebSocket with 1001 while sockets still flush."""
        self.tunnels.shutdown_all()

    def stop(self) -> None:
        self.relay.stop()

    async def handle(self, request: Request) -> HTTPResponse | None:
        """A request to the gateway port that is not one of the gateway's own routes."""
        target = origin_form(request.raw_url)
        if target is None or getattr(request, "bad_target", False):
            return error_response(request, 400, "The request target must be a path.")
        prefix = ide_prefix_of(target, self._ide_prefix)
        if prefix is not None:  # the public path, as Jupyter and the hub serve it (http.target)
            return await self.forward(request, target[len(prefix):], prefix=prefix.decode())
        return await self.forward(request, target)

    async def forward(self, request: Request, target: bytes, *, prefix: str | None = None,
                      login: LoginPage | None = None) -> HTTPResponse | None:
        """Authorize, then proxy `target` to WAIIDE (HTTP or WebSocket).

        Args:
            prefix: the public path prefix stripped from `target` (X-Forwarded-Prefix).
            login: answers a browser that has no credential yet (the hub's OAuth redirect).
        """
        tally = Tally()
        if request.headers.get("upgrade"):
            return await self._forward(request, target, prefix, login, tally)
        metrics = self._metrics
        token = metrics.request_started("proxy") if metrics is not None else None
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
            if tally.proxied:
                self._record_http_use(request, tally)
            if token is not None:
                assert metrics is not None
                metrics.request_finished(token, request.method, "proxy", tally.status,
                                         tally.bytes_in, tally.bytes_out)

    async def _forward(self, request: Request, target: bytes, prefix: str | None,
                       login: LoginPage | None, tally: Tally) -> HTTPResponse | None:
        if request.method == "CONNECT":
            return error_response(request, 405, "This gateway is not a forward proxy.")
        websocket = request.headers.get("upgrade", "").lower() == "websocket"
        verdict = await self.access.authorize(request, websocket)
        if verdict.outcome is not Outcome.ALLOW:
            if login is not None and verdict.outcome is Outcome.MISSING and not websocket \
                    and request.method == "GET" and wants_html(request.headers.get("accept", "")):
                return login(request)
            return self.access.refuse(request, verdict)
        if verdict.target is not None:
            target = strip_prefix(verdict.target, prefix) or target
        tally.proxied = True
        if websocket:
            head = self._head(request, target, verdict, prefix, None, False, websocket=True)
            return await self.websockets.forward(request, head)
        return await self.relay.forward(
            request, lambda length, chunked: self._head(request, target, verdict, prefix,
                                                        length, chunked), tally)

    def _head(self, request: Request, target: bytes, verdict: Verdict, prefix: str | None,
              body_length: int | None, chunked: bool, *, websocket: bool = False) -> bytes:
        """The head WAIIDE receives: the client's, cleaned of credentials and hop-by-hop fields."""
        drop = frozenset({"authorization"}) if verdict.drop_authorization else frozenset()
        if websocket and self._strip_ws_extensions:
            drop = drop | {"sec-websocket-extensions"}
        return request_head(method=request.method, target=target, headers=request.headers.items(),
                            client_ip=request.ip,
                            scheme="https" if request.scheme in ("https", "wss") else "http",
                            body_length=body_length, chunked=chunked, websocket=websocket,
                            drop=drop, cookie=verdict.cookie, prefix=prefix)

    def _record_http_use(self, request: Request, tally: Tally) -> None:
        cause, ignored = http_use(request.method, request.headers.get("sec-fetch-mode"),
                                  tally.bytes_in, tally.bytes_out)
        if cause is not None:
            self.activity.use(cause)
        elif ignored is not None:
            self.activity.ignored(ignored)

    def _client_message(self, opcode: int, length: int, compressed: bool, first: int) -> None:
        """A WebSocket message from the client began (see gateway.ws.frames.FrameScanner)."""
        if opcode >= 0x8:  # close, ping, pong: the connection's own upkeep
            self.activity.ignored(PING)
            return
        cause, ignored = ws_message_use(length, compressed, first,
                                        extension_seen=self.activity.extension_seen_anywhere)
        if cause is not None:
            self.activity.use(cause)
        elif ignored is not None:
            self.activity.ignored(ignored)
