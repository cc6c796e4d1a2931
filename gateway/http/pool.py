"""`UpstreamPool`: keep-alive connections to WAIIDE for one gateway worker.

Connections come back LIFO, so warm sockets are reused first; one that idled too long or was
closed by WAIIDE is dropped on the way out (`UpstreamConnection.usable_idle`). Connect failures
and timeouts become `gateway.errors` here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from gateway.errors import UpstreamConnectError, UpstreamTimeout
from gateway.http.upstream import UpstreamConnection


class UpstreamPool:
    """Keep-alive connections to WAIIDE for one gateway worker (LIFO, so warm sockets are reused)."""

    def __init__(self, *, host: str, port: int, unix_socket: str | None, label: str,
                 connect_timeout_s: float, max_idle: int) -> None:
        self._host = host
        self._port = port
        self._unix_socket = unix_socket
        self._label = label
        self._connect_timeout_s = connect_timeout_s
        self._max_idle = max_idle
        self._idle: list[UpstreamConnection] = []

    async def acquire(self) -> UpstreamConnection:
        """A live idle connection, or a new one."""
        idle = self._idle
        while idle:
            conn = idle.pop()
            if conn.usable_idle:
                conn.reused = True
                return conn
            conn.close()
        return await self.connect()

    async def connect(self) -> UpstreamConnection:
        """A new connection (WebSocket upgrades always take one of these)."""
        loop = asyncio.get_running_loop()
        factory: Callable[[], UpstreamConnection] = lambda: UpstreamConnection(self._label)
        try:
            if self._unix_socket:
                connecting = loop.create_unix_connection(factory, self._unix_socket)
            else:
                connecting = loop.create_connection(factory, self._host, self._port)
            _transport, conn = await asyncio.wait_for(connecting, self._connect_timeout_s)
        except TimeoutError as exc:
            raise UpstreamTimeout(
                self._label,
                f"no connection within {self._connect_timeout_s:g}s (GATEWAY_CONNECT_TIMEOUT)",
            ) from exc
        except OSError as exc:
            raise UpstreamConnectError(self._label, exc.strerror or str(exc)) from exc
        return conn

    def release(self, conn: UpstreamConnection) -> None:
        """Return a connection after its response ended; keeps it only if it can carry another."""
        if conn.reusable and len(self._idle) < self._max_idle:
            conn.park()
            self._idle.append(conn)
        else:
            conn.close()

    def close(self) -> None:
        while self._idle:
            self._idle.pop().close()
