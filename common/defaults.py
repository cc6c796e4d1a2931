"""Defaults and fixed names that more than one process relies on.

A change here changes all processes at once; that is the point of keeping them in one place.
"""

from __future__ import annotations

import ipaddress

DEFAULT_HOST = "0.0.0.0"
DEFAULT_PORT = 8090  # PORT: Jupyter (full mode) or the gateway's hub-facing port (lightweight)
DEFAULT_API_PORT = 8091  # API_SERVER_PORT: the gateway
DEFAULT_WAIIDE_HOST = "127.0.0.1"
DEFAULT_WAIIDE_PORT = 8080

# The gateway's own cheap liveness route, probed by the supervisor and the monitor.
GATEWAY_HEALTH_PATH = "/api/healthz"
# The single-user server's unauthenticated route the hub polls, under its prefix.
SINGLEUSER_HEALTH_SUFFIX = "api"

# Carries the supervisor's per-start secret from jupyter-server-proxy to the gateway (full mode),
# proving the single-user server already authenticated the request.
INTERNAL_HEADER = "x-waiide-hub-internal"
INTERNAL_SECRET_ENV = "GATEWAY_INTERNAL_SECRET"

LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})
WILDCARD_HOSTS = frozenset({"", "0.0.0.0", "::", "*", "[::]"})


def is_loopback(host: str) -> bool:
    """True for names and addresses that only reach this machine (127.0.0.0/8, ::1, localhost)."""
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def url_host(host: str) -> str:
    """`host` as it goes into a URL (IPv6 addresses in brackets)."""
    bare = host.strip("[]")
    return f"[{bare}]" if ":" in bare else bare


def local_host(listen_host: str) -> str:
    """The address by which this machine reaches a server listening on `listen_host`."""
    bare = listen_host.strip("[]")
    if bare in WILDCARD_HOSTS - {"::"}:
        return "127.0.0.1"
    if bare == "::":
        return "::1"
    return bare
