"""Lightweight mode's second listener: each worker also serves PORT, with Sanic's own protocol.

Why not a second `app.prepare(port=PORT)`: Sanic 25.12 runs a second listener as a task whose
shutdown happens after the event loop has stopped; a worker then either spins forever waiting for
tasks that cannot run, or loses keep-alive connections with "Event loop is closed" tracebacks (both
seen under a real hub). Here every worker serves PORT's socket with the strict edge's protocol
(gateway.edge) and closes it in `before_server_stop`, while the loop still runs. The socket is
bound once by the main process (`gateway.listen`) and shared by the workers, without
SO_REUSEPORT: a stranger binding PORT with SO_REUSEPORT cannot take a share of the connections.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from typing import Any

from sanic import Sanic

from gateway.edge.protocol import StrictHttpProtocol
from gateway.listen import bind_listener
from gateway.sanic_compat import http_protocol_factory

_CLOSE_GRACE_S = 2.0


class MainPortListener:
    """PORT in one worker: open in before_server_start, close in before_server_stop."""

    def __init__(self, app: Sanic[Any, Any], host: str, port: int,
                 sock: socket.socket | None = None) -> None:
        self._app = app
        self._host = host
        self._port = port
        self._sock = sock
        self._server: asyncio.AbstractServer | None = None
        self._connections: set[Any] = set()  # Sanic's HttpProtocol instances

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        sock = self._sock
        if sock is None:  # no main process to bind it (a single-process server): bind here
            sock = bind_listener("PORT", self._host, self._port)
        factory = http_protocol_factory(self._app, self._connections, StrictHttpProtocol)
        self._server = await loop.create_server(factory, sock=sock)

    async def stop(self) -> None:
        """Stop accepting, let idle keep-alive connections go, then the rest within a grace."""
        if self._server is None:
            return
        server, self._server = self._server, None
        server.close()
        deadline = asyncio.get_running_loop().time() + _CLOSE_GRACE_S
        while self._connections and asyncio.get_running_loop().time() < deadline:
            for conn in list(self._connections):
                conn.close_if_idle()
            await asyncio.sleep(0.05)
        for conn in list(self._connections):
            with contextlib.suppress(Exception):  # already closing is fine
                conn.abort()
        await server.wait_closed()
