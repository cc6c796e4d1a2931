"""Responses the gateway writes itself: error pages and the token login page.

Browsers (an `Accept` that prefers text/html) get a small readable HTML page; API clients get JSON
with the same facts. Every page names the upstream and the cause, never a stack trace.
"""

from __future__ import annotations

import html
import json

from sanic.request import Request
from sanic.response import HTTPResponse

NO_STORE = {"Cache-Control": "no-store"}

_STYLE = ("body{font-family:system-ui,sans-serif;max-width:40rem;margin:4rem auto;padding:0 1rem;"
          "color:#222}h1{font-size:1.4rem}code{background:#eee;padding:0 .2rem}"
          "input{font-size:1rem;padding:.3rem;width:70%}button{font-size:1rem;padding:.3rem .8rem}")

_TITLES = {
    400: "Bad request",
    401: "Sign in to WAIIDE",
    403: "Access denied",
    404: "Not found",
    405: "Method not allowed",
    408: "Request timeout",
    413: "Request too large",
    417: "Expectation failed",
    501: "Not implemented",
    502: "WAIIDE is not reachable",
    504: "WAIIDE did not answer in time",
}


def wants_html(accept: str) -> bool:
    """True when the client is a browser asking for a page rather than data."""
    return "text/html" in accept and "application/json" not in accept.split("text/html")[0]


def _page(title: str, body_html: str, *, retry: bool = False) -> bytes:
    refresh = '<meta http-equiv="refresh" content="10">' if retry else ""
    return (f"<!doctype html><html><head><meta charset='utf-8'>{refresh}<title>"
            f"{html.escape(title)}</title><style>{_STYLE}</style></head><body>"
            f"<h1>{html.escape(title)}</h1>{body_html}</body></html>").encode()


def error_body(status: int, detail: str, *, accept: str, upstream: str | None = None,
               hint: str | None = None) -> tuple[bytes, str]:
    """(body, content type) for an error the gateway itself answers."""
    title = _TITLES.get(status, "Error")
    if wants_html(accept):
        parts = [f"<p>{html.escape(detail)}</p>"]
        if upstream:
            parts.append(f"<p>Upstream: <code>{html.escape(upstream)}</code></p>")
        if hint:
            parts.append(f"<p>{html.escape(hint)}</p>")
        if status in (502, 504):
            parts.append("<p>This page reloads itself every 10 seconds.</p>")
        return _page(f"{status} {title}", "".join(parts), retry=status in (502, 504)), \
            "text/html; charset=utf-8"
    payload: dict[str, object] = {"status": status, "error": title, "detail": detail}
    if upstream:
        payload["upstream"] = upstream
    if hint:
        payload["hint"] = hint
    return json.dumps(payload).encode(), "application/json"


def login_page(*, failed: bool, hub: bool = False) -> bytes:
    """The page a browser without a valid token sees (token auth, as Jupyter's login page)."""
    note = "<p><b>That token is not valid.</b></p>" if failed else ""
    if hub:
        body = (f"{note}<p>This IDE belongs to a JupyterHub server. Open it through the hub, or "
                "add <code>?token=</code> with a hub API token that has access to this server "
                "(create one on the hub's Token page).</p>")
        return _page(_TITLES[401], body)
    body = (f"{note}<p>This IDE is protected by a token. It was printed when the server started "
            "(look for <code>?token=</code> in the log), or ask whoever runs it.</p>"
            "<form method='get'><input name='token' type='password' autocomplete='off' "
            "placeholder='token' autofocus> <button type='submit'>Open</button></form>")
    return _page(_TITLES[401], body)


def json_body(payload: object) -> bytes:
    return json.dumps(payload, indent=2, sort_keys=False).encode()


def error_response(request: Request, status: int, detail: str, *, upstream: str | None = None,
                   hint: str | None = None) -> HTTPResponse:
    """An error page for `request` (HTML for a browser, JSON otherwise), never cached."""
    body, content_type = error_body(status, detail, accept=request.headers.get("accept", ""),
                                    upstream=upstream, hint=hint)
    return HTTPResponse(body, status=status, content_type=content_type, headers=NO_STORE)
