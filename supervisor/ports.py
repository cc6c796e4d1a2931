"""Every port the stack will listen on, checked before anything starts.

A taken port used to surface seconds later as a child's traceback that never named it, or worse,
as another program answering a readiness probe. Each TCP address is bound here once, without
SO_REUSEPORT, and closed again: a listener of any kind on it (a previous stack, another program,
one sharing the port with SO_REUSEPORT) makes the bind fail, and the start stops with a
`ConfigError` naming the variable, the host and the port, and the holder's pid when it is visible.
SO_REUSEADDR is set so that connections in TIME_WAIT from a previous run do not count as taken.
"""

from __future__ import annotations

import contextlib
import errno
import socket
from dataclasses import dataclass

import psutil

from common.errors import ConfigError
from supervisor.config import SupervisorConfig


@dataclass(frozen=True, slots=True)
class PortUse:
    """One address a child will listen on, and the variable that chose its port."""

    variable: str
    host: str
    port: int


def planned_ports(config: SupervisorConfig) -> list[PortUse]:
    """PORT (Jupyter or the gateway's hub-facing port), API_SERVER_PORT, and the IDE's TCP port."""
    # Both modes listen on PORT: Jupyter in full mode, the gateway in lightweight mode.
    uses = [PortUse("PORT", config.host, config.port),
            PortUse("API_SERVER_PORT", config.host, config.api_port)]
    if config.waiide_socket is None:
        uses.append(PortUse("WAIIDE_PORT", config.waiide_host, config.waiide_port))
    return uses


def check_ports(uses: list[PortUse]) -> None:
    """Raise `ConfigError` for the first address that cannot be bound."""
    for use in uses:
        problem = bind_problem(use.host, use.port)
        if problem is not None:
            raise ConfigError(use.variable, str(use.port), problem)


def bind_problem(host: str, port: int) -> str | None:
    """None when `host:port` can be bound now; otherwise what is wrong, for the message."""
    try:
        infos = socket.getaddrinfo(host.strip("[]") or None, port, type=socket.SOCK_STREAM,
                                   flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        return f"Cannot resolve host {host!r}: {exc}."
    family, _, _, _, address = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as exc:
        shown = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        if exc.errno == errno.EADDRINUSE:
            return f"{shown} is already in use{_holder(port)}."
        return f"Cannot listen on {shown}: {exc.strerror or exc}."
    finally:
        sock.close()
    return None


def _holder(port: int) -> str:
    """` by pid 123 (python3 x.py)` when the listener is a process this user may inspect."""
    with contextlib.suppress(psutil.Error, OSError):
        for conn in psutil.net_connections(kind="tcp"):
            if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port \
                    and conn.pid:
                proc = psutil.Process(conn.pid)
                return f" by pid {conn.pid} ({' '.join(proc.cmdline())[:120]})"
    return ""
