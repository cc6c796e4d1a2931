"""The vocabulary of access decisions, shared by every credential check.

`Verdict` says whether a request may reach WAIIDE and how to clean it first (drop the
Authorization field, rewrite the Cookie field, drop `?token=` from the target). The helpers here
strip credentials; `InternalHop` admits requests that jupyter-server-proxy already authenticated.
"""

from __future__ import annotations

import enum
import hmac
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import unquote

from sanic.request import Request

from common.defaults import INTERNAL_HEADER


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
    """What the gateway needs of a credential check (access.token.TokenAuth, access.hub.HubTokenAuth)."""

    def start(self) -> None: ...

    async def authorize(self, request: Request, *, websocket: bool) -> Verdict: ...

    def cookie_header(self, secure: bool, token: str | None = None) -> str:
        """The Set-Cookie value that remembers a credential accepted by `?token=`."""
        ...


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


def drop_cookie(header: str, name: str) -> str:
    """The Cookie header without the cookie called `name`."""
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


