"""`create_app(config)`: the Sanic application of one gateway worker.

Routes: the API blueprint (`gateway.api`), `/metrics`, and a catch-all that streams everything else
to WAIIDE (`gateway.proxy`). Per-worker resources (the upstream pool) open in
`before_server_start` and close in `after_server_stop`, inside the worker's own event loop.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from pathlib import Path
from typing import Any

from sanic import Sanic
from sanic.exceptions import BadURL
from sanic.request import Request
from sanic.response import HTTPResponse

from gateway.activity import ActivityReporter
from gateway.api import ApiRoutes
from gateway.auth import Authorizer, TokenAuth
from gateway.config import AuthMode, GatewayConfig
from gateway.hubauth import HubTokenAuth
from gateway.mainport import MainPortListener
from gateway.workers import WorkerWatchdog
from gateway.mount import HubServerMount
from gateway.metrics import GatewayMetrics, mark_process_dead
from gateway.proxy import Proxy
from gateway.status import services_response, status_response
from gateway.strict_server import EdgeSettings, install_edge
from monitor.record import RecordReader

logger = logging.getLogger(__name__)

APP_NAME = "waiide_hub_gateway"
PROXY_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]


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
    # Sanic's REQUEST_TIMEOUT restarts with every byte; GATEWAY_HEADER_TIMEOUT (gateway.
    # strict_server) is the real deadline for a head, so Sanic's must never fire first.
    c.REQUEST_TIMEOUT = config.header_timeout_s + 30
    c.GRACEFUL_SHUTDOWN_TIMEOUT = 3.0
    c.MOTD = False


class RecordStatus:
    """/api/status and /api/services from the monitor's shared-memory record (no I/O per read)."""

    def __init__(self, path: str) -> None:
        self._path = Path(path)
        self.reader: RecordReader | None = None

    def start(self) -> None:
        self.reader = RecordReader(self._path)

    def stop(self) -> None:
        if self.reader is not None:
            self.reader.close()

    async def status(self) -> tuple[int, dict[str, Any]]:
        assert self.reader is not None
        return status_response(self.reader.read(), time.time())

    async def services(self) -> dict[str, Any]:
        assert self.reader is not None
        return services_response(self.reader.read(), time.time())[1]


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


def worker_index(app: Sanic) -> str:
    """This worker's number: "Sanic-Server-1-0" -> "1" ("0" outside Sanic's worker manager)."""
    try:
        name = app.m.name
    except AttributeError:
        return "0"
    parts = name.split("-")
    return parts[2] if len(parts) >= 3 and name.startswith("Sanic-Server-") else "0"


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
    install_edge(app, EdgeSettings(header_timeout_s=config.header_timeout_s,
                                   max_header_connections=config.max_header_connections,
                                   max_body_bytes=config.max_body_bytes))
    activity = build_activity(config)
    proxy = Proxy(config, auth=build_auth(config), activity=activity)
    status = RecordStatus(config.record_path)
    api = ApiRoutes(config, proxy, status.status, status.services)
    app.blueprint(api.blueprint())
    mount = HubServerMount(config, proxy, api) if config.serves_main_port else None
    main_port = config.main_port

    async def proxied(request: Request, path: str = "") -> HTTPResponse | None:
        if mount is not None and request.conn_info.server_port == main_port:
            return await mount.handle(request)
        return await proxy.handle(request)

    # A WebSocket tunnel ends with no HTTP response to send; this attribute is how Sanic knows a
    # handler may legitimately return None (it sets it on its own WebSocket handlers).
    proxied.is_websocket = True  # type: ignore[attr-defined]
    app.add_route(proxied, "/", methods=PROXY_METHODS, stream=True, name="proxy_root")
    app.add_route(proxied, "/<path:path>", methods=PROXY_METHODS, stream=True, name="proxy")

    async def metrics_route(request: Request) -> HTTPResponse:
        assert proxy.metrics is not None
        # Merging every process's files is blocking file work: keep it off the event loop.
        body, content_type = await asyncio.get_running_loop().run_in_executor(
            None, proxy.metrics.render)
        return HTTPResponse(body, content_type=content_type, headers={"Cache-Control": "no-store"})

    app.add_route(metrics_route, "/metrics", methods=["GET"], name="metrics")

    main_listener = (MainPortListener(app, config.host, config.main_port)
                     if config.serves_main_port else None)
    watchdog = WorkerWatchdog(app, lambda pid: mark_process_dead(pid, config.multiproc_dir))

    @app.before_server_start
    async def _open(_app: Sanic) -> None:
        status.start()
        # Created here, after the worker was spawned, so samples land in this worker's files.
        metrics = GatewayMetrics(multiproc_dir=config.multiproc_dir, status_reader=status.reader,
                                 worker=worker_index(app))
        proxy.metrics = metrics
        api.metrics = metrics
        proxy.start()
        if activity is not None:
            activity.start()
        if main_listener is not None:
            await main_listener.start()
        watchdog.start()

    @app.before_server_stop
    async def _going_away(_app: Sanic) -> None:
        watchdog.stop()
        proxy.going_away()
        if main_listener is not None:
            await main_listener.stop()
        if activity is not None:  # the last use must reach the hub before the worker goes
            await activity.flush()
            await activity.stop()

    @app.after_server_stop
    def _close(_app: Sanic) -> None:
        proxy.stop()
        status.stop()
        mark_process_dead(os.getpid(), config.multiproc_dir)

    app.ctx.proxy = proxy
    return app
