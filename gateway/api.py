"""The gateway's own routes: /api, /api/user, /api/status, /api/services, /api/healthz,
/api/activity (and the IDE extension's /api/activity/ide endpoints, `gateway.activity.routes`).

`/api`, `/api/status`, `/api/services` and `/api/healthz` answer without credentials (health
checks, Docker HEALTHCHECK, Kubernetes probes, the monitor, `curl` by hand), but then only with
what a health check needs: the name and version, each component up or not and why not (without
internal addresses: `gateway.status.public_view`). The user, the internal addresses, pids and
ports are shown only to a request carrying the IDE's credential. `/api/user` and `/api/activity`
need it always.
"""

from __future__ import annotations

import os
import time
from collections.abc import Awaitable, Callable
from typing import Any

from sanic import Blueprint
from sanic.request import Request
from sanic.response import HTTPResponse

from common.activity_files import IDE_REPORT_PATH
from gateway import __version__
from gateway.access.gate import Access
from gateway.access.verdict import Outcome
from gateway.activity.classify import PROBE
from gateway.activity.routes import ActivityRoutes
from gateway.activity.state import ActivityState
from gateway.config import GatewayConfig
from gateway.metrics import GatewayMetrics
from gateway.pages import NO_STORE, error_response, json_body
from gateway.status import public_view

Handler = Callable[..., Awaitable[HTTPResponse]]
_JSON = "application/json"


def _json(payload: Any, status: int = 200) -> HTTPResponse:
    return HTTPResponse(json_body(payload), status=status, content_type=_JSON, headers=NO_STORE)


def public_overview() -> dict[str, Any]:
    """The anonymous /api document: the name, the version and where to look next."""
    return {"name": "waiide-hub", "version": __version__,
            "links": {"self": "/api", "status": "/api/status", "services": "/api/services"}}


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


class ApiRoutes:
    """The handlers, callable from the router (gateway port) and from `gateway.singleuser.endpoint` (PORT)."""

    def __init__(self, config: GatewayConfig, access: Access, activity: ActivityRoutes,
                 activity_state: ActivityState,
                 status_source: Callable[[], Awaitable[tuple[int, dict[str, Any]]]],
                 services_source: Callable[[], Awaitable[dict[str, Any]]]) -> None:
        self._config = config
        self._access = access
        self._activity = activity
        self._activity_state = activity_state
        self._status_source = status_source
        self._services_source = services_source
        self._started = time.time()
        self.metrics: GatewayMetrics | None = None
        # Path under /api (or {prefix}api) -> (handler, needs the IDE's credential). Handlers
        # take (request, credentialed): the open ones show more to a credentialed request.
        self.by_name: dict[str, tuple[Handler, bool]] = {
            "": (self.overview, False), "healthz": (self.healthz, False),
            "status": (self.status, False), "user": (self.user, True),
            "services": (self.services, False), "activity": (self._activity_overview, True),
        }

    async def dispatch(self, request: Request, name: str) -> HTTPResponse:
        metrics = self.metrics
        if metrics is None:
            return await self._dispatch(request, name)
        token = metrics.request_started("api")
        status = 499
        response = None
        try:
            response = await self._dispatch(request, name)
            status = response.status
            return response
        finally:
            metrics.request_finished(token, request.method, "api", status, 0,
                                     len(response.body or b"") if response is not None else 0)

    async def _dispatch(self, request: Request, name: str) -> HTTPResponse:
        entry = self.by_name.get(name)
        if entry is None:
            return error_response(request, 404, f"No API endpoint '{name}'.")
        handler, protected = entry
        if not protected:  # health checks and overviews: never someone's use
            self._activity_state.ignored(PROBE)
        verdict = await self._access.authorize(request, False)
        credentialed = verdict.outcome in (Outcome.ALLOW, Outcome.REDIRECT)
        if protected and not credentialed:
            return self._access.refuse(request, verdict)
        return await handler(request, credentialed)

    async def overview(self, request: Request, credentialed: bool) -> HTTPResponse:
        if not credentialed:
            return _json(public_overview())
        return _json(overview(self._config, request.headers.get("host", "")))

    async def healthz(self, request: Request, credentialed: bool) -> HTTPResponse:
        # The liveness probe comes without a credential (a refused one costs no hub call);
        # the answering worker's pid is for those who may see the server's internals.
        body: dict[str, Any] = {"status": "ok", "uptime_s": round(time.time() - self._started, 3)}
        if credentialed:
            body["pid"] = os.getpid()
        return _json(body)

    async def status(self, request: Request, credentialed: bool) -> HTTPResponse:
        status, payload = await self._status_source()
        return _json(payload if credentialed else public_view(payload, "components"), status)

    async def user(self, request: Request, credentialed: bool) -> HTTPResponse:
        cfg = self._config
        return _json({"name": cfg.user, "hub": cfg.under_hub,
                      "server_name": cfg.hub.server_name if cfg.hub else None,
                      "service_prefix": cfg.service_prefix})

    async def _activity_overview(self, request: Request, credentialed: bool) -> HTTPResponse:
        return await self._activity.overview(request)

    async def services(self, request: Request, credentialed: bool) -> HTTPResponse:
        payload = await self._services_source()
        return _json(payload if credentialed else public_view(payload, "services"))

    def blueprint(self) -> Blueprint:
        bp = Blueprint("api")
        for name in self.by_name:
            async def route(request: Request, _name: str = name) -> HTTPResponse:
                return await self.dispatch(request, _name)
            path = "/api" + (f"/{name}" if name else "")
            bp.add_route(route, path, methods=["GET"], name=f"api_{name or 'overview'}",
                         strict_slashes=False)
        bp.add_route(self._activity.ide_report, IDE_REPORT_PATH, methods=["POST"],
                     name="api_activity_ide")
        bp.add_route(self._activity.ide_notice, f"{IDE_REPORT_PATH}/notice", methods=["GET"],
                     name="api_activity_ide_notice")
        return bp
