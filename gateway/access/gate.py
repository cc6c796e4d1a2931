"""`Access`: the one place that decides whether a request may reach WAIIDE, and answers if not.

Used by the proxy (everything forwarded) and by the API routes that need the server's
credentials. A request from jupyter-server-proxy carrying the supervisor's secret is let
through first (`InternalHop`); otherwise the configured credential check decides.
"""

from __future__ import annotations

from sanic.request import Request
from sanic.response import HTTPResponse

from gateway.access.verdict import ALLOW, Authorizer, InternalHop, Outcome, Verdict
from gateway.config import GatewayConfig
from gateway.edge.rules import same_origin_location
from gateway.pages import NO_STORE, error_response, login_page, wants_html


class Access:
    """Authorize and refuse, for one worker."""

    def __init__(self, config: GatewayConfig, auth: Authorizer | None) -> None:
        self.auth = auth
        self._under_hub = config.under_hub
        self._internal = InternalHop(config.internal_secret) if config.internal_secret else None

    def start(self) -> None:
        """Open what the credential check needs (the hub client); in the worker's loop."""
        if self.auth is not None:
            self.auth.start()

    async def authorize(self, request: Request, websocket: bool) -> Verdict:
        if self._internal is not None:
            verdict = self._internal.check(request)
            if verdict is not None:
                return verdict
        if self.auth is None:
            return ALLOW
        return await self.auth.authorize(request, websocket=websocket)

    def refuse(self, request: Request, verdict: Verdict) -> HTTPResponse:
        """The answer to a request `authorize` did not allow: a redirect, 401 or 403."""
        assert self.auth is not None
        if verdict.outcome is Outcome.REDIRECT:
            assert verdict.target is not None
            secure = request.headers.get("x-forwarded-proto", request.scheme) == "https"
            return HTTPResponse(status=302, content_type="text/plain; charset=utf-8", headers={
                "Location": same_origin_location(verdict.target),
                "Set-Cookie": self.auth.cookie_header(secure, verdict.token),
                **NO_STORE,
            })
        status = 401 if verdict.outcome is Outcome.MISSING else 403
        if wants_html(request.headers.get("accept", "")) and request.method in ("GET", "HEAD"):
            return HTTPResponse(login_page(failed=status == 403, hub=self._under_hub),
                                status=status, content_type="text/html; charset=utf-8",
                                headers=NO_STORE)
        return error_response(request, status, self._refusal_detail(status))

    def _refusal_detail(self, status: int) -> str:
        if self._under_hub:
            return ("A JupyterHub token with access to this server is required: "
                    "Authorization: token <t>." if status == 401 else
                    "This token does not grant access to this server.")
        return ("A token is required: Authorization: token <t>, or ?token=<t>."
                if status == 401 else "The token is not valid.")
