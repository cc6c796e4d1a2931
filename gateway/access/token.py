"""Who may reach WAIIDE through the gateway: the standalone token check.

WAIIDE is a shell on the user's files, so everything proxied needs a credential unless
GATEWAY_AUTH=none says otherwise. Standalone, the credential is one token (GATEWAY_TOKEN, or one
generated at start), accepted as:

- `Authorization: token <t>` or `Bearer <t>` (API clients);
- `?token=<t>` on a page: answered with a redirect to the same URL without it and a cookie, so the
  token leaves the address bar and history and never reaches WAIIDE; on a WebSocket upgrade
  (which cannot follow redirects) it is accepted and removed from the forwarded target;
- the cookie set by that redirect. Its value is an HMAC of the token, not the token, and its name
  carries the port because browsers send cookies to every port of a host. It lasts
  COOKIE_MAX_AGE_S (JupyterHub's cookie_max_age_days default), not just the browser session:
  the supervisor keeps a generated token across restarts (supervisor/credentials.py), so the
  same cookie stays valid and an open tab reconnects by itself after a restart.

The gateway's own credentials are removed before the request reaches WAIIDE.
"""

from __future__ import annotations

import hashlib
import hmac

from sanic.request import Request

from gateway.access.verdict import Outcome, Verdict, drop_cookie, split_token_param

_COOKIE_CONTEXT = b"waiide-hub cookie v1"
COOKIE_MAX_AGE_S = 14 * 24 * 3600


def _cookie_names(header: str) -> set[str]:
    return {part.split("=", 1)[0].strip() for part in header.split(";")}


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
        # By exact name: another port's cookie may have a longer name (8091 and 809).
        if raw_cookie and self.cookie_name in _cookie_names(raw_cookie):
            cookie_out = drop_cookie(raw_cookie, self.cookie_name)
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
        return (f"{self.cookie_name}={self.cookie_value}; Path=/; Max-Age={COOKIE_MAX_AGE_S}; "
                f"HttpOnly; SameSite=Lax{flags}")
