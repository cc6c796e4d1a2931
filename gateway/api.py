"""The gateway's own routes: /api, /api/user, /api/status, /api/services, /api/healthz.

`/api`, `/api/status` and `/api/healthz` are open (health checks, Docker HEALTHCHECK, Kubernetes
probes and the monitor use them); `/api/user` and `/api/services` need the same credential as the
IDE, since they say whose server this is and what runs in it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Awaitable, Callable
from typing import Any

from sanic import Blueprint
from sanic.request import Request
from sanic.response import HTTPResponse

from gateway import __version__
from gateway.auth import Outcome
from gateway.config import GatewayConfig
from gateway.pages import json_body
from gateway.proxy import Proxy

Handler = Callable[..., Awaitable[HTTPResponse]]
_JSON = "application/json"
_NO_STORE = {"Cache-Control": "no-store"}


def _json(payload: Any, status: int = 200) -> HTTPResponse:
    return HTTPResponse(json_body(payload), status=status, content_type=_JSON, headers=_NO_STORE)


def overview(config: GatewayConfig, request_host: str) -> dict[str, Any]:
    """The /api document: what runs here and where."""
    host = request_host.rsplit(":", 1)[0] if request_host else "127.0.0.1"
    prefix = config.service_prefix
    components: dict[str, Any] = {
        "waiide": {"url": (f"unix:{config.waiide_socket}" if config.waiide_socket
                           else f"http://{config.upstream_label}/"), "internal": True},
        "gateway": {"url": f"http://{host}:{config.port}/"},
    }
    if config.all_components:
        components["singleuser"] = {"url": f"http://{host}:{config.main_port}{prefix}"}
        components["jupyter_server_proxy"] = {
            "url": f"http://{host}:{config.main_port}{prefix}WAIIDE/"}
    return {
        "name": "waiide-hub",
        "version": __version__,
        "mode": "full" if config.all_components else "lightweight",
        "hub": config.under_hub,
        "auth": config.auth.value,
        "user": config.user,
        "components": components,
        "links": {"self": "/api", "status": "/api/status", "user": "/api/user",
                  "services": "/api/services", "metrics": "/metrics", "ide": "/"},
    }


def build_api(config: GatewayConfig, proxy: Proxy,
              status_source: Callable[[], Awaitable[tuple[int, dict[str, Any]]]],
              services_source: Callable[[], Awaitable[dict[str, Any]]]) -> Blueprint:
    """The API blueprint; status and services come from the given sources."""
    bp = Blueprint("api")
    started = time.time()

    def protected(handler: Handler) -> Handler:
        async def wrapper(request: Request) -> HTTPResponse:
            if proxy.auth is not None:
                verdict = proxy.auth.authorize(request, websocket=False)
                if verdict.outcome is not Outcome.ALLOW:
                    return proxy.refuse(request, verdict)
            return await handler(request)
        wrapper.__name__ = handler.__name__
        return wrapper

    @bp.get("/api", strict_slashes=False)
    async def api_overview(request: Request) -> HTTPResponse:
        return _json(overview(config, request.headers.get("host", "")))

    @bp.get("/api/healthz")
    async def api_healthz(request: Request) -> HTTPResponse:
        return _json({"status": "ok", "pid": os.getpid(), "uptime_s": round(time.time() - started, 3)})

    @bp.get("/api/status")
    async def api_status(request: Request) -> HTTPResponse:
        status, payload = await status_source()
        return _json(payload, status)

    @bp.get("/api/user")
    @protected
    async def api_user(request: Request) -> HTTPResponse:
        return _json({"name": config.user, "hub": config.under_hub,
                      "service_prefix": config.service_prefix})

    @bp.get("/api/services")
    @protected
    async def api_services(request: Request) -> HTTPResponse:
        return _json(await services_source())

    return bp
