"""`create_app(config)`: the Sanic application of one gateway worker.

Routes: the API blueprint (`gateway.api`), `/metrics`, and a catch-all that streams everything else
to WAIIDE (`gateway.proxy`). Per-worker resources (the upstream pool) open in
`before_server_start` and close in `after_server_stop`, inside the worker's own event loop.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

from sanic import Sanic
from sanic.exceptions import BadURL
from sanic.request import Request
from sanic.response import HTTPResponse

from gateway.activity import ActivityReporter
from gateway.api import ApiRoutes
from gateway.auth import Authorizer, TokenAuth
from gateway.config import AuthMode, GatewayConfig
from gateway.errors import UpstreamError
from gateway.hubauth import HubTokenAuth
from gateway.mount import HubServerMount
from gateway.proxy import Proxy

logger = logging.getLogger(__name__)

APP_NAME = "waiide_hub_gateway"
PROXY_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
_STATUS_CACHE_S = 1.0


def configure_sanic(app: Sanic, config: GatewayConfig) -> None:
    """Sanic settings that matter for a streaming proxy (see shared/reference/sanic-facts.md)."""
    c = app.config
    c.AUTO_EXTEND = False  # sanic-ext is not used; do not let it load half-configured
    c.ACCESS_LOG = config.debug
    c.NOISY_EXCEPTIONS = config.debug
    c.REQUEST_MAX_HEADER_SIZE = 16384  # IDE cookies are large; Sanic's hard ceiling
    # RESPONSE_TIMEOUT is an idle timer in Sanic; the proxy enforces GATEWAY_READ_TIMEOUT itself
    # with a readable 504, so Sanic's own (a bare 503) must never fire first.
    c.RESPONSE_TIMEOUT = config.read_timeout_s + 30
    c.KEEP_ALIVE_TIMEOUT = 75
    c.GRACEFUL_SHUTDOWN_TIMEOUT = 3.0
    c.MOTD = False


class DirectStatus:
    """/api/status from a direct check of WAIIDE, cached briefly per worker."""

    def __init__(self, proxy: Proxy) -> None:
        self._proxy = proxy
        self._cached: tuple[float, int, dict[str, Any]] | None = None

    async def status(self) -> tuple[int, dict[str, Any]]:
        now = time.monotonic()
        if self._cached is not None and now - self._cached[0] < _STATUS_CACHE_S:
            return self._cached[1], self._cached[2]
        state, detail = await self._probe()
        payload = {
            "status": "healthy" if state == "up" else "unhealthy",
            "components": {"waiide": {"state": state, **detail}},
            "checked_at": time.time(),
        }
        code = 200 if state == "up" else 503
        self._cached = (now, code, payload)
        return code, payload

    async def services(self) -> dict[str, Any]:
        _, payload = await self.status()
        return {"services": payload["components"]}

    async def _probe(self) -> tuple[str, dict[str, Any]]:
        pool = self._proxy.pool
        assert pool is not None
        started = time.monotonic()
        conn = None
        try:
            conn = await pool.connect()
            conn.start(b"GET /healthz HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n",
                       head_only=False)
            head = await conn.read_head(5.0)
            body = b""
            while chunk := await conn.read_body(5.0):
                body += chunk
        except UpstreamError as exc:
            return "down", {"reason": str(exc), "latency_s": time.monotonic() - started}
        finally:
            if conn is not None:
                conn.close()
        detail: dict[str, Any] = {"http_status": head.status,
                                  "latency_s": round(time.monotonic() - started, 6)}
        if head.status >= 500:
            return "down", {**detail, "reason": f"HTTP {head.status}"}
        try:
            detail["liveness"] = json.loads(body).get("status")
        except (ValueError, AttributeError):
            pass
        return "up", detail


class GatewayRequest(Request):
    """A request whose unparsable target still gets an answer.

    Sanic drops the connection without any response when the target is not a URL (for example
    the authority form of `CONNECT host:port`), because building its error page parses the same
    target again. Such a request is routed to `/` with `bad_target` set, and answered 400.
    """

    __slots__ = ("bad_target",)

    def __init__(self, url_bytes: bytes, *args: Any, **kwargs: Any) -> None:
        self.bad_target = False
        try:
            super().__init__(url_bytes, *args, **kwargs)
        except BadURL:
            super().__init__(b"/", *args, **kwargs)
            self.raw_url = url_bytes
            self.bad_target = True


def configure_logging(debug: bool) -> None:
    """Once per process: the main process and every spawned worker."""
    # Only the gateway's loggers: Sanic configures its own ("sanic.*") in every worker.
    root = logging.getLogger("gateway")
    root.setLevel(logging.DEBUG if debug else logging.INFO)
    if not root.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter(
            "%(asctime)s %(levelname)s %(name)s [%(process)d] %(message)s"))
        root.addHandler(handler)
        root.propagate = False


def build_auth(config: GatewayConfig) -> Authorizer | None:
    """The credential check the configuration asks for."""
    if config.auth is AuthMode.TOKEN:
        return TokenAuth(config.token, config.port)
    if config.auth is AuthMode.HUB:
        return HubTokenAuth(config)
    return None


def build_activity(config: GatewayConfig) -> ActivityReporter | None:
    hub = config.hub
    if hub is None or hub.activity_url is None:
        return None
    return ActivityReporter(url=hub.activity_url, token=hub.api_token,
                            server_name=hub.server_name, interval_s=hub.activity_interval_s)


def create_app(config: GatewayConfig) -> Sanic:
    """The gateway application for one worker process."""
    configure_logging(config.debug)
    app = Sanic(APP_NAME, request_class=GatewayRequest)
    configure_sanic(app, config)
    activity = build_activity(config)
    proxy = Proxy(config, auth=build_auth(config), activity=activity)
    status = DirectStatus(proxy)
    api = ApiRoutes(config, proxy, status.status, status.services)
    app.blueprint(api.blueprint())
    mount = HubServerMount(config, proxy, api) if config.serves_main_port else None
    main_port = config.main_port

    async def proxied(request: Request, path: str = "") -> HTTPResponse | None:
        if mount is not None and request.conn_info.server_port == main_port:
            return await mount.handle(request)
        return await proxy.handle(request)

    app.add_route(proxied, "/", methods=PROXY_METHODS, stream=True, name="proxy_root")
    app.add_route(proxied, "/<path:path>", methods=PROXY_METHODS, stream=True, name="proxy")

    @app.before_server_start
    async def _open(_app: Sanic) -> None:
        proxy.start()
        if activity is not None:
            activity.start()

    @app.after_server_stop
    async def _close(_app: Sanic) -> None:
        proxy.stop()
        if activity is not None:
            await activity.flush()
            await activity.stop()

    app.ctx.proxy = proxy
    return app
