"""Readiness means *this* child: the socket that answered must belong to its own process tree.

An answer on the child's address proves nothing by itself: a previous stack's orphan, or any
other program on that port, answers too (a 404 is an answer). After a probe answers, the
listening socket is looked up among the sockets held by the child and its descendants (psutil
reads /proc/<pid>/fd and /proc/net/{tcp,tcp6,unix}, matching socket inodes). A TCP listener is
matched by port (the child may listen on a wildcard while the probe dials loopback), a unix
socket by path.
"""

from __future__ import annotations

import contextlib
from urllib.parse import urlsplit

import psutil

from supervisor.spec import ReadyCheck


def tree(pid: int) -> list[psutil.Process]:
    """`pid` and its live descendants (empty when `pid` is gone)."""
    try:
        leader = psutil.Process(pid)
        return [leader, *leader.children(recursive=True)]
    except psutil.Error:
        return []


def owns_listener(pid: int, check: ReadyCheck) -> bool:
    """True when a process of `pid`'s tree holds the listening socket `check` dials."""
    if check.unix_socket:
        return any(_holds_unix(proc, check.unix_socket) for proc in tree(pid))
    port = urlsplit(check.url).port
    return port is not None and any(_holds_tcp(proc, port) for proc in tree(pid))


def _holds_tcp(proc: psutil.Process, port: int) -> bool:
    with contextlib.suppress(psutil.Error):
        return any(conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port
                   for conn in proc.net_connections(kind="tcp"))
    return False


def _holds_unix(proc: psutil.Process, path: str) -> bool:
    with contextlib.suppress(psutil.Error):
        # psutil gives a unix socket's address as its path string (typed as an addr tuple).
        return any(str(conn.laddr) == path for conn in proc.net_connections(kind="unix"))
    return False
