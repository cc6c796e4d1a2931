"""Hub credentials: under JupyterHub, only visitors with access to this server reach WAIIDE.

A credential is a hub token, found (in this order) in `Authorization: token|bearer`, the OAuth
cookie of this server (lightweight mode, main port), the gateway's own cookie, or `?token=`. It is
checked with `jupyterhub.services.auth.HubAuth.user_for_token` (answers are cached for
`cache_max_age`, negative ones too) and must carry one of `JUPYTERHUB_OAUTH_ACCESS_SCOPES`:
no credential is 401, a token of another user or without the scope is 403. Hub tokens, hub cookies
and the gateway's cookie are removed before anything reaches WAIIDE.

Browser login (lightweight mode, where the gateway is this server's single-user endpoint): the
hub's OAuth flow with PKCE. The state lives in a signed cookie rather than in memory, because the
callback may land on a different worker than the one that started the login.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from typing import TYPE_CHECKING
from urllib.parse import urlencode

from sanic.request import Request

from gateway.access.verdict import (
    Outcome,
    Verdict,
    is_jupyter_credential,
    split_token_param,
    without_cookies,
)
from gateway.config import GatewayConfig

if TYPE_CHECKING:
    from jupyterhub.services.auth import HubOAuth

_STATE_MAX_AGE_S = 600


def cookie_pairs(header: str) -> list[tuple[str, str]]:
    pairs = []
    for part in header.split(";"):
        name, sep, value = part.strip().partition("=")
        if sep:
            pairs.append((name.strip(), value.strip()))
    return pairs


class HubTokenAuth:
    """Authorizes requests with hub tokens (see the module docstring)."""

    def __init__(self, config: GatewayConfig) -> None:
        assert config.hub is not None
        self._hub = config.hub
        self.cookie_name = f"waiide-hub-auth-{config.port}"
        self.oauth_cookie = config.hub.client_id
        self.state_cookie = f"{config.hub.client_id}-oauth-state"
        self._access_scopes = set(config.hub.access_scopes)
        self._secret = hashlib.sha256(b"waiide-hub state\0" + config.hub.api_token.encode()).digest()
        self.hub_auth: HubOAuth | None = None

    def start(self) -> None:
        """Create the HubAuth client inside the worker's event loop."""
        # Imported here: jupyterhub pulls in its ORM (about a second per worker), which a
        # standalone gateway never needs.
        from jupyterhub.services.auth import HubOAuth

        hub = self._hub
        self.hub_auth = HubOAuth(api_token=hub.api_token, api_url=hub.api_url,
                                 oauth_client_id=hub.client_id,
                                 oauth_redirect_uri=hub.oauth_callback_url,
                                 access_scopes=self._access_scopes, cache_max_age=60)

    # -- authorization -------------------------------------------------------------------------
    def _strip(self, header: str | None) -> str | None:
        return without_cookies(header, lambda n: is_jupyter_credential(n)
                               or n == self.cookie_name or n.startswith(self.state_cookie))

    async def authorize(self, request: Request, *, websocket: bool) -> Verdict:
        headers = request.headers
        raw_cookie = headers.get("cookie")
        cookies = dict(cookie_pairs(raw_cookie)) if raw_cookie else {}
        token = None
        auth = headers.get("authorization", "")
        scheme, _, credential = auth.partition(" ")
        if scheme.lower() in ("token", "bearer") and credential.strip():
            token = credential.strip()
        token = token or cookies.get(self.oauth_cookie) or cookies.get(self.cookie_name)
        target, query_token = split_token_param(request.raw_url)
        token = token or query_token
        if not token:
            return Verdict(Outcome.MISSING)
        if not await self.grants_access(token):
            return Verdict(Outcome.INVALID)
        if query_token is not None and token == query_token and not websocket:
            return Verdict(Outcome.REDIRECT, target=target, token=token)
        return Verdict(Outcome.ALLOW, target=target if query_token is not None else None,
                       drop_authorization=bool(auth), cookie=self._strip(raw_cookie))

    async def grants_access(self, token: str) -> bool:
        assert self.hub_auth is not None
        model = await self.hub_auth.user_for_token(token, sync=False)
        if not model:
            return False
        from jupyterhub.services.auth import check_scopes

        return bool(check_scopes(self._access_scopes, set(model.get("scopes", ()))))

    def cookie_header(self, secure: bool, token: str | None = None) -> str:
        """The gateway's own cookie, holding the hub token (HttpOnly: scripts cannot read it)."""
        assert token is not None, "a hub cookie carries the accepted hub token"
        flags = "; Secure" if secure else ""
        return f"{self.cookie_name}={token}; Path=/; HttpOnly; SameSite=Lax{flags}"

    # -- OAuth (lightweight mode) --------------------------------------------------------------
    def _sign(self, payload: bytes) -> str:
        mac = hmac.new(self._secret, payload, hashlib.sha256).digest()
        return (base64.urlsafe_b64encode(payload).decode().rstrip("=") + "."
                + base64.urlsafe_b64encode(mac).decode().rstrip("="))

    def _unsign(self, value: str) -> dict[str, object] | None:
        data, _, mac = value.partition(".")
        try:
            payload = base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))
            given = base64.urlsafe_b64decode(mac + "=" * (-len(mac) % 4))
        except ValueError:
            return None
        if not hmac.compare_digest(given, hmac.new(self._secret, payload, hashlib.sha256).digest()):
            return None
        try:
            state = json.loads(payload)
        except ValueError:
            return None
        return state if isinstance(state, dict) else None

    def login_redirect(self, next_url: str, now: float) -> tuple[str, str]:
        """(authorize URL, state cookie header) to start a browser login."""
        assert self.hub_auth is not None
        nonce = secrets.token_urlsafe(16)
        verifier, challenge, method = self.hub_auth.generate_pkce_code_challenge()
        state = json.dumps({"n": nonce, "next": next_url, "v": verifier, "t": now}).encode()
        url = self.hub_auth.login_url + "&" + urlencode(
            {"state": nonce, "code_challenge": challenge, "code_challenge_method": method})
        cookie = (f"{self.state_cookie}={self._sign(state)}; Path={self._hub.prefix}; HttpOnly; "
                  f"SameSite=Lax; Max-Age={_STATE_MAX_AGE_S}")
        return url, cookie

    async def finish_login(self, request: Request, now: float) -> tuple[str, str] | None:
        """(next URL, token cookie header) after the hub sent the browser back; None if forged."""
        assert self.hub_auth is not None
        code = request.args.get("code")
        nonce = request.args.get("state")
        raw = request.cookies.get(self.state_cookie)
        state = self._unsign(raw) if raw else None
        if not code or not nonce or state is None or state.get("n") != nonce:
            return None
        if now - float(state.get("t", 0)) > _STATE_MAX_AGE_S:  # type: ignore[arg-type]
            return None
        token = await self.hub_auth.token_for_code(code, code_verifier=str(state["v"]),
                                                   sync=False)
        next_url = str(state.get("next") or self._hub.prefix)
        if not next_url.startswith(self._hub.prefix):
            next_url = self._hub.prefix  # never redirect off this server
        cookie = (f"{self.oauth_cookie}={token}; Path={self._hub.prefix}; HttpOnly; "
                  "SameSite=Lax")
        return next_url, cookie
