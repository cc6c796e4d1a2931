"""`AuthMode` and the one rule that resolves GATEWAY_AUTH, shared by the supervisor and gateway.

The supervisor must know the gateway's effective mode before starting it (it generates and
prints the token only when the gateway will ask for one), so both resolve it here.
"""

from __future__ import annotations

import enum

from common.env import EnvReader
from common.errors import ConfigError

AUTH_ENV = "GATEWAY_AUTH"


class AuthMode(enum.Enum):
    """Who may use what the gateway proxies."""

    TOKEN = "token"  # standalone: a shared secret, generated and printed when not given
    HUB = "hub"  # under JupyterHub: hub tokens with access to this server (gateway.access.hub)
    NONE = "none"  # explicitly open (behind another authenticating proxy, or benchmarks)


def resolve_auth_mode(env: EnvReader, under_hub: bool) -> AuthMode:
    """GATEWAY_AUTH: `auto` (the default) is hub auth under a hub and a token standalone."""
    raw = env.text(AUTH_ENV, "auto").lower()
    if raw == "auto":
        return AuthMode.HUB if under_hub else AuthMode.TOKEN
    try:
        mode = AuthMode(raw)
    except ValueError:
        raise ConfigError(AUTH_ENV, raw, "Use auto, token, hub or none.") from None
    if mode is AuthMode.HUB and not under_hub:
        raise ConfigError(AUTH_ENV, raw, "Hub auth needs JUPYTERHUB_API_TOKEN.")
    return mode
