"""Errors of the gateway, and the one place their HTTP status is decided.

    common.errors.WaiideHubError
     ├─ common.errors.ConfigError  a bad setting; stops the start (exit code CONFIG_ERROR)
     └─ GatewayError
         └─ UpstreamError            WAIIDE could not answer a proxied request
             ├─ UpstreamConnectError     refused, or the socket is missing                   -> 502
             │   └─ UpstreamReset            dropped mid-exchange (before the head: 502)
             ├─ UpstreamProtocolError    WAIIDE answered with something that is not HTTP/1.x  -> 502
             └─ UpstreamTimeout          no connection or no response head within the deadline -> 504

Library exceptions (OSError, asyncio.TimeoutError, httptools errors) are translated into these at
the upstream-client boundary (`gateway/upstream.py`) with `raise ... from exc`.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from common.errors import WaiideHubError

UpstreamErrorKind = Literal["connect_error", "timeout", "reset"]
"""The metric label of an upstream failure (a closed set)."""


class GatewayError(WaiideHubError):
    """Base of every error the gateway raises on purpose."""


class UpstreamError(GatewayError):
    """WAIIDE did not produce a usable response."""

    status: ClassVar[int] = 502
    kind: ClassVar[UpstreamErrorKind] = "connect_error"

    def __init__(self, upstream: str, cause: str) -> None:
        super().__init__(f"{upstream}: {cause}")
        self.upstream = upstream
        self.cause = cause


class UpstreamConnectError(UpstreamError):
    """No connection to WAIIDE, or it dropped before answering."""


class UpstreamReset(UpstreamConnectError):
    """WAIIDE dropped an established connection before the response was complete."""

    kind = "reset"


class UpstreamProtocolError(UpstreamError):
    """WAIIDE's bytes were not a valid HTTP/1.x response."""

    kind = "reset"


class UpstreamTimeout(UpstreamError):
    """WAIIDE took longer than the configured deadline."""

    status = 504
    kind = "timeout"
