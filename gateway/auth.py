"""Who may reach WAIIDE through the gateway: the standalone token check.

WAIIDE is a shell on the user's files, so everything proxied needs a credential unless
GATEWAY_AUTH=none says otherwise. Standalone, the credential is one token (GATEWAY_TOKEN, or one
generated at start), accepted as:

- `Authorization: token <t>` or `Bearer <t>` (API clients);
- `?token=<t>` on a page: answered with a redirect to the same URL without it and a cookie, so the
  token leaves the address bar and history and never reaches WAIIDE; on a WebSocket upgrade
  (which cannot follow redirects) it is accepted and removed from the forwarded target;
- the cookie set by that redirect. Its value is an HMAC of the token, not the token, and its name
  carries the port because browsers send cookies to every port of a host.

The gateway's own credentials are removed before the request reaches WAIIDE.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import unquote

from sanic.request import Request

from common.defaults import INTERNAL_HEADER

_COOKIE_CONTEXT = b"waiide-hub cookie v1"


class Outcome(enum.Enum):
    ALLOW = "allow"
    REDIRECT = "redirect"  # valid ?token= on a page: set the cookie, drop the token from the URL
    MISSING = "missing"  # no credential at all -> 401
    INVALID = "invalid"  # a credential that does not grant access -> 403


@dataclass(frozen=True, slots=True)
class Verdict:
    """The decision for one request, and how to clean it before it goes upstream."""

    outcome: Outcome
    target: bytes | None = None  # request target without the token parameter
    drop_authorization: bool = False
    cookie: str | None = None  # Cookie header to forward instead of the client's (None: as sent)
    token: str | None = None  # with REDIRECT: the credential the new cookie carries


ALLOW = Verdict(Outcome.ALLOW)


class Authorizer(Protocol):
    """What the proxy needs of a credential check (TokenAuth, gateway.hubauth.HubTokenAuth)."""

    def start(self) -> None: ...

    async def authorize(self, request: Request, *, websocket: bool) -> Verdict: ...

    def cookie_header(self, secure: bool, token: str | None = None) -> str: ...


def split_token_param(raw_target: bytes) -> tuple[bytes, str | None]:
    """(target without `token=`, the token) — the query is otherwise kept byte for byte."""
    path, sep, query = raw_target.partition(b"?")
    if not sep or b"token=" not in query:
        return raw_target, None
    token = None
    kept = []
    for part in query.split(b"&"):
        if part.startswith(b"token="):
            token = part[6:].decode("ascii", "replace")
        else:
            kept.append(part)
    if token is None:
        return raw_target, None
    rest = b"&".join(kept)
    return (path + b"?" + rest if rest else path), unquote(token)


def _without_cookie(header: str, name: str) -> str:
    return "; ".join(p.strip() for p in header.split(";")
                     if p.strip() and p.split("=", 1)[0].strip() != name)


def is_jupyter_credential(name: str) -> bool:
    """Cookies that carry hub or Jupyter credentials (never for WAIIDE)."""
    return name.startswith(("jupyterhub-", "username-")) or name == "_xsrf"


def without_cookies(header: str | None, drop: Callable[[str], bool]) -> str | None:
    """The Cookie header minus the cookies `drop` names; None when there was none."""
    if header is None:
        return None
    return "; ".join(p.strip() for p in header.split(";")
                     if p.strip() and not drop(p.split("=", 1)[0].strip()))


class InternalHop:
    """Requests from jupyter-server-proxy, which Jupyter has already authenticated.

    In full mode Jupyter's proxy reaches WAIIDE through the gateway with a header carrying the
    supervisor's secret (supervisor.jupyter). Such a request is let through, and everything
    that authenticated it to Jupyter (Authorization, hub and Jupyter cookies, `?token=`) is
    removed before WAIIDE sees it.
    """

    def __init__(self, secret: str) -> None:
        self._secret = secret.encode()

    def check(self, request: Request) -> Verdict | None:
        """ALLOW (cleaned) for a request carrying the secret; None for any other request."""
        given = request.headers.get(INTERNAL_HEADER)
        if given is None or not hmac.compare_digest(given.encode(), self._secret):
            return None
        target, token = split_token_param(request.raw_url)
        return Verdict(Outcome.ALLOW, target=target if token is not None else None,
                       drop_authorization=True,
                       cookie=without_cookies(request.headers.get("cookie"),
                                              is_jupyter_credential))


class TokenAuth:
    """The standalone token check (see the module docstring for the accepted forms)."""

    def __init__(self, token: str, port: int) -> None:
        self._token = token.encode()
        self.cookie_name = f"waiide-hub-auth-{port}"
        self.cookie_value = hmac.new(self._token, _COOKIE_CONTEXT, hashlib.sha256).hexdigest()

    def _is_token(self, candidate: str) -> bool:
        return hmac.compare_digest(candidate.encode(), self._token)

    def start(self) -> None:
        """Nothing to open: the token is in the configuration."""

    async def authorize(self, request: Request, *, websocket: bool) -> Verdict:
        headers = request.headers
        raw_cookie = headers.get("cookie")
        cookie_ok = False
        cookie_out = None
        if raw_cookie and self.cookie_name in raw_cookie:
            cookie_out = _without_cookie(raw_cookie, self.cookie_name)
            value = request.cookies.get(self.cookie_name) or ""
            cookie_ok = hmac.compare_digest(value.encode(), self.cookie_value.encode())
        auth = headers.get("authorization")
        seen_bad = False
        header_ok = False
        if auth:
            scheme, _, credential = auth.partition(" ")
            if scheme.lower() in ("token", "bearer"):
                header_ok = self._is_token(credential.strip())
                seen_bad = not header_ok
        target, query_token = split_token_param(request.raw_url)
        query_ok = query_token is not None and self._is_token(query_token)
        if query_token is not None and not query_ok:
            seen_bad = True
        if query_ok and not websocket:
            return Verdict(Outcome.REDIRECT, target=target)
        if cookie_ok or header_ok or query_ok:
            return Verdict(Outcome.ALLOW, target=target if query_token is not None else None,
                           drop_authorization=header_ok, cookie=cookie_out)
        return Verdict(Outcome.INVALID if seen_bad or raw_cookie and cookie_out is not None
                       else Outcome.MISSING)

    def cookie_header(self, secure: bool, token: str | None = None) -> str:
        flags = "; Secure" if secure else ""
        return f"{self.cookie_name}={self.cookie_value}; Path=/; HttpOnly; SameSite=Lax{flags}"
