"""A Jupyter server extension: `GET /api/status` at the root of PORT answers the gateway's health.

The seed tells operators that JupyterHub, Docker and Kubernetes health-check
`http://container:PORT/api/status`. In full mode PORT is Jupyter's, whose own status lives under
its base URL (`{prefix}api/status`, token required), so the plain path would be a 404. This
extension, loaded only by full mode's Jupyter child (supervisor.jupyter puts it in the server's
config), registers a handler for exactly `/api/status` that relays the gateway's
`/api/status`: the same status code (200 healthy or degraded, 503 otherwise) and the same JSON,
with no token, as the gateway serves it. If the gateway does not answer, the reply is 503 with a
JSON body naming the cause: never healthy by default.

Everything else on PORT is Jupyter's: under a hub, `{prefix}api` (the hub's readiness check) and
`{prefix}api/status` (Jupyter's own, with a token) are unchanged. Standalone the prefix is `/`,
so this handler takes the place of Jupyter's `/api/status` there (tornado tries handlers added by
extensions before the server's own).

It runs inside the Jupyter process and imports nothing of the supervisor. Its one setting comes
from the generated config file: `{"WaiideHubStatus": {"gateway_status_url": URL}}`.
"""

from __future__ import annotations

import json
from typing import Any

from jupyter_server.auth.decorator import allow_unauthenticated
from tornado import httpclient, web

from supervisor.jupyter import STATUS_CONFIG_SECTION as CONFIG_SECTION
from supervisor.jupyter import STATUS_URL_KEY as URL_KEY

TIMEOUT_KEY = "timeout_s"
STATUS_PATH = "/api/status"
DEFAULT_TIMEOUT_S = 4.0
MAX_BODY_BYTES = 1024 * 1024


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    return [{"module": __name__}]


def _load_jupyter_server_extension(serverapp: Any) -> None:
    section = serverapp.config.get(CONFIG_SECTION, {})
    url = section.get(URL_KEY)
    if not url:
        serverapp.log.warning("%s: no %s.%s configured; %s is not served", __name__,
                              CONFIG_SECTION, URL_KEY, STATUS_PATH)
        return
    timeout_s = float(section.get(TIMEOUT_KEY, DEFAULT_TIMEOUT_S))
    serverapp.web_app.add_handlers(".*$", [
        (STATUS_PATH, GatewayStatusHandler, {"url": str(url), "timeout_s": timeout_s}),
    ])
    serverapp.log.info("%s: %s relays %s", __name__, STATUS_PATH, url)


class GatewayStatusHandler(web.RequestHandler):
    """Relays the gateway's `/api/status` (status code and JSON) to whoever asks, unauthenticated
    like the gateway's own endpoint."""

    def initialize(self, url: str, timeout_s: float) -> None:
        self._url = url
        self._timeout_s = timeout_s

    def set_default_headers(self) -> None:
        self.set_header("Content-Type", "application/json")
        self.set_header("Cache-Control", "no-store")

    @allow_unauthenticated
    async def get(self) -> None:
        request = httpclient.HTTPRequest(
            self._url, headers={"Accept": "application/json"}, connect_timeout=self._timeout_s,
            request_timeout=self._timeout_s, follow_redirects=False)
        try:
            reply = await httpclient.AsyncHTTPClient().fetch(request, raise_error=False)
        except (OSError, httpclient.HTTPClientError) as exc:
            self._unavailable(f"the gateway at {self._url} did not answer: {exc}")
            return
        if reply.code == 599 or reply.body is None:  # tornado's code for "no response"
            self._unavailable(f"the gateway at {self._url} did not answer: {reply.error}")
            return
        if len(reply.body) > MAX_BODY_BYTES:
            self._unavailable(f"the gateway at {self._url} answered {len(reply.body)} bytes")
            return
        self.set_status(reply.code)
        self.finish(reply.body)

    @allow_unauthenticated
    async def head(self) -> None:
        await self.get()

    def _unavailable(self, reason: str) -> None:
        self.set_status(503)
        self.finish(json.dumps({"status": "unknown", "healthy": False, "reason": reason,
                                "source": "jupyter"}))
