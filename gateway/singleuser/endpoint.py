"""Lightweight mode: the gateway on PORT is this server's JupyterHub single-user endpoint.

With USE_ALL_COMPONENTS=false there is no jupyterhub-singleuser, so the gateway answers what the
hub and the browser expect of one, under `JUPYTERHUB_SERVICE_PREFIX` ({prefix}):

    {prefix}api                the hub's readiness check: {"version": …} + X-JupyterHub-Version
    {prefix}api/<name>         the gateway's API (status, user, services, healthz)
    {prefix}oauth_callback     end of the hub's OAuth login (gateway.access.hub)
    {prefix}WAIIDE/…           WAIIDE, with {prefix}WAIIDE stripped (X-Forwarded-Prefix)
    {prefix}                   redirect to {prefix}WAIIDE/

A browser without a credential is sent through the hub's OAuth login and comes back with a
cookie, so `/user/{name}/{server}/WAIIDE/` opens the IDE with no extra login.
"""

from __future__ import annotations

import json
import time

from sanic.request import Request
from sanic.response import HTTPResponse

from gateway import __version__
from gateway.access.hub import HubTokenAuth
from gateway.access.verdict import Outcome, Verdict
from gateway.api import ApiRoutes
from gateway.config import GatewayConfig
from gateway.http.target import origin_form
from gateway.pages import error_response
from gateway.proxy import Proxy

IDE_NAME = "WAIIDE"


def _redirect(location: str, cookie: str | None = None) -> HTTPResponse:
    headers = {"Location": location, "Cache-Control": "no-store"}
    if cookie:
        headers["Set-Cookie"] = cookie
    return HTTPResponse(status=302, headers=headers, content_type="text/plain; charset=utf-8")


class SingleUserEndpoint:
    """Routes requests that arrive on PORT (see the module docstring)."""

    def __init__(self, config: GatewayConfig, proxy: Proxy, api: ApiRoutes) -> None:
        self._config = config
        self._proxy = proxy
        self._api = api
        self._prefix = config.service_prefix
        self._raw_prefix = self._prefix.encode()
        self._ide_prefix = f"{self._prefix}{IDE_NAME}"
        auth = proxy.access.auth
        self._hub_auth = auth if isinstance(auth, HubTokenAuth) else None

    async def handle(self, request: Request) -> HTTPResponse | None:
        target = origin_form(request.raw_url)
        if target is None or getattr(request, "bad_target", False):
            return error_response(request, 400, "The request target must be a path.")
        if not target.startswith(self._raw_prefix):
            if target.split(b"?", 1)[0] == self._raw_prefix.rstrip(b"/"):
                return _redirect(self._prefix)
            return error_response(request, 404, f"This server lives under {self._prefix}.")
        rest = target[len(self._raw_prefix):]
        path = rest.split(b"?", 1)[0]
        if path in (b"", b"/") or path == IDE_NAME.encode():
            return _redirect(f"{self._ide_prefix}/")
        if path == b"api":
            return self._version()
        if path.startswith(b"api/"):
            return await self._api.dispatch(request, path[4:].decode("latin-1").strip("/"))
        if path == b"oauth_callback":
            return await self._oauth_callback(request)
        if path.startswith(IDE_NAME.encode() + b"/"):
            return await self._proxy.forward(request, b"/" + rest[len(IDE_NAME) + 1:],
                                             prefix=self._ide_prefix, login=self._login)
        return error_response(request, 404, f"Nothing at {self._prefix}{path.decode('latin-1')}; "
                              f"the IDE is at {self._ide_prefix}/.")

    def _version(self) -> HTTPResponse:
        # The hub's readiness check reads only the status and this header (jupyterhub _check_version).
        from jupyterhub import __version__ as hub_version  # the package alone, not its ORM

        return HTTPResponse(json.dumps({"version": __version__}).encode(), status=200,
                            content_type="application/json",
                            headers={"X-JupyterHub-Version": hub_version})

    def _login(self, request: Request) -> HTTPResponse:
        if self._hub_auth is None:
            return self._proxy.access.refuse(request, Verdict(Outcome.MISSING))
        next_url = request.raw_url.decode("latin-1")
        url, cookie = self._hub_auth.login_redirect(next_url, time.time())
        return _redirect(url, cookie)

    async def _oauth_callback(self, request: Request) -> HTTPResponse:
        if self._hub_auth is None:
            return error_response(request, 404, "No hub login on a standalone server.")
        finished = await self._hub_auth.finish_login(request, time.time())
        if finished is None:
            return error_response(request, 403, "The login state is missing, expired or forged; "
                                  "open the IDE through the hub again.")
        next_url, cookie = finished
        return _redirect(next_url, cookie)
