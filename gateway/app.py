"""`create_app(config)`: the Sanic application of one gateway worker, wired together.

Routes: the API (`gateway.api`), `/metrics`, and a catch-all that streams everything else to
WAIIDE (`gateway.proxy`); in lightweight mode, requests on PORT go to the single-user endpoint
(`gateway.singleuser`). Per-worker resources (the upstream pool, the record reader, the metric
files, the PORT listener) open in `before_server_start` and close in `after_server_stop`, inside
the worker's own process and event loop.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from pathlib import Path
from typing import Any

from sanic import Sanic
from sanic.request import Request
from sanic.response import HTTPResponse

from common.auth_mode import AuthMode
from gateway.access.gate import Access
from gateway.access.hub import HubTokenAuth
from gateway.access.token import TokenAuth
from gateway.access.verdict import Authorizer
from gateway.activity.classify import SCRAPE
from gateway.activity.hub import ActivityReporter
from gateway.activity.routes import ActivityRoutes
from gateway.activity.state import ActivityState
from gateway.api import ApiRoutes
from gateway.config import GatewayConfig
from gateway.edge.protocol import EdgeSettings, install_edge
from gateway.metrics import GatewayMetrics, mark_process_dead
from gateway.proxy import Proxy
from gateway.sanic_compat import GatewayRequest, worker_name
from gateway.singleuser.endpoint import SingleUserEndpoint
from gateway.singleuser.listener import MainPortListener
from gateway.status import WorkerStatus
from gateway.workers import Capacity

logger = logging.getLogger(__name__)

APP_NAME = "waiide_hub_gateway"
PROXY_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]

App = Sanic[Any, Any]


def configure_sanic(app: App, config: GatewayConfig) -> None:
    """Sanic settings that matter for a streaming proxy (see DESIGN.md, "Sanic")."""
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
    # edge.protocol) is the real deadline for a head, so Sanic's must never fire first.
    c.REQUEST_TIMEOUT = config.header_timeout_s + 30
    c.GRACEFUL_SHUTDOWN_TIMEOUT = 3.0
    c.MOTD = False


def worker_index(app: App) -> str:
    """This worker's number: "Sanic-Server-1-0" -> "1" ("0" outside Sanic's worker manager)."""
    name = worker_name(app)
    if name is None:
        return "0"
    parts = name.split("-")
    return parts[2] if len(parts) >= 3 and name.startswith("Sanic-Server-") else "0"


def configure_logging(debug: bool) -> None:
    """Once per process: the main process and every forked worker."""
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


def build_hub_reporter(config: GatewayConfig, state: ActivityState) -> ActivityReporter | None:
    hub = config.hub
    if hub is None or hub.activity_url is None:
        return None
    return ActivityReporter(state, directory=Path(config.activity_dir),
                            busy_counts=config.idle_busy_counts, url=hub.activity_url,
                            token=hub.api_token,
                            server_name=hub.server_name, interval_s=hub.activity_interval_s)


def create_app(config: GatewayConfig, main_sock: socket.socket | None = None) -> App:
    """The gateway application for one worker process.

    Args:
        main_sock: PORT's listening socket, bound once by the main process (lightweight mode);
            None: the worker binds PORT itself (single-process test servers).
    """
    configure_logging(config.debug)
    app: App = Sanic(APP_NAME, request_class=GatewayRequest)
    configure_sanic(app, config)
    install_edge(app, EdgeSettings(header_timeout_s=config.header_timeout_s,
                                   max_header_connections=config.max_header_connections,
                                   max_body_bytes=config.max_body_bytes))
    activity_dir = Path(config.activity_dir)
    activity = ActivityState(activity_dir)
    reporter = build_hub_reporter(config, activity)
    access = Access(config, build_auth(config))
    proxy = Proxy(config, access, activity)
    capacity = Capacity(app, config.workers)
    status = WorkerStatus(config.record_path, capacity.counts)
    api = ApiRoutes(config, access, ActivityRoutes(activity, activity_dir, config.activity_secret),
                    activity, status.status, status.services)
    app.blueprint(api.blueprint())
    endpoint = SingleUserEndpoint(config, proxy, api) if config.serves_main_port else None
    _add_proxy_routes(app, proxy, endpoint, config.main_port)
    _add_metrics_route(app, proxy, activity)
    _add_lifecycle(app, config, proxy, api, status, activity, reporter, main_sock, capacity)
    app.ctx.proxy = proxy
    return app


def _add_proxy_routes(app: App, proxy: Proxy, endpoint: SingleUserEndpoint | None,
                      main_port: int) -> None:
    async def proxied(request: Request, path: str = "") -> HTTPResponse | None:
        conn_info = request.conn_info
        if endpoint is not None and conn_info is not None and conn_info.server_port == main_port:
            return await endpoint.handle(request)
        return await proxy.handle(request)

    # A WebSocket tunnel ends with no HTTP response to send; this attribute is how Sanic knows a
    # handler may legitimately return None (it sets it on its own WebSocket handlers).
    proxied.is_websocket = True  # type: ignore[attr-defined]
    app.add_route(proxied, "/", methods=PROXY_METHODS, stream=True, name="proxy_root")
    app.add_route(proxied, "/<path:path>", methods=PROXY_METHODS, stream=True, name="proxy")


def _add_metrics_route(app: App, proxy: Proxy, activity: ActivityState) -> None:
    async def metrics_route(request: Request) -> HTTPResponse:
        assert proxy.metrics is not None
        activity.ignored(SCRAPE)
        # Merging every process's files is blocking file work: keep it off the event loop.
        body, content_type = await asyncio.get_running_loop().run_in_executor(
            None, proxy.metrics.render)
        return HTTPResponse(body, content_type=content_type, headers={"Cache-Control": "no-store"})

    app.add_route(metrics_route, "/metrics", methods=["GET"], name="metrics")


def _add_lifecycle(app: App, config: GatewayConfig, proxy: Proxy, api: ApiRoutes,
                   status: WorkerStatus, activity: ActivityState,
                   reporter: ActivityReporter | None, main_sock: socket.socket | None,
                   capacity: Capacity) -> None:
    main_listener = (MainPortListener(app, config.host, config.main_port, main_sock)
                     if config.serves_main_port else None)

    @app.before_server_start
    async def _open(_app: App) -> None:
        status.start()
        # Created here, after the worker was forked, so samples land in this worker's files.
        metrics = GatewayMetrics(multiproc_dir=config.multiproc_dir, status_reader=status.reader,
                                 worker=worker_index(app), capacity=capacity.counts,
                                 activity_dir=Path(config.activity_dir),
                                 ide_memory_limit=config.waiide_memory_limit)
        proxy.metrics = metrics
        api.metrics = metrics
        proxy.start()
        try:
            Path(config.activity_dir).mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            logger.warning("cannot create the activity directory %s: %s", config.activity_dir,
                           exc)
        activity.start()
        if reporter is not None:
            reporter.start()
        if main_listener is not None:
            await main_listener.start()

    @app.before_server_stop
    async def _going_away(_app: App) -> None:
        proxy.going_away()
        if main_listener is not None:
            await main_listener.stop()
        await activity.stop()
        if reporter is not None:  # the last use must reach the hub before the worker goes
            await reporter.flush()
            await reporter.stop()

    @app.after_server_stop
    def _close(_app: App) -> None:
        proxy.stop()
        status.stop()
        mark_process_dead(os.getpid(), config.multiproc_dir)
