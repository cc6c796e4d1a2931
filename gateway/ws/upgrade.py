"""WebSocket upgrades: WAIIDE's handshake first, then a byte tunnel (`gateway.ws.tunnel`).

The upgrade request goes to WAIIDE with the client's own `Sec-WebSocket-Key`, `-Version`,
`-Protocol` and `-Extensions`, over a fresh connection. Only when WAIIDE answers 101 does the client
get a 101 — WAIIDE's, with its accept key and its chosen subprotocol. Any other answer (code-server's
403 for a bad Origin, a 404, a 401) reaches the client as that HTTP response. This is the order
jupyter-server-proxy gets wrong (#459): it accepts the client before the backend has spoken.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from sanic.request import Request
from sanic.response import HTTPResponse

from gateway.config import GatewayConfig
from gateway.errors import UpstreamError
from gateway.http.headers import raw_response_head
from gateway.http.relay import HttpRelay
from gateway.sanic_compat import release_connection, take_buffered_bytes
from gateway.ws.registry import TunnelRegistry
from gateway.ws.tunnel import Tunnel

logger = logging.getLogger(__name__)

ClientMessageHook = Callable[[int, int, bool, int], None]
"""Called when a client message begins: (opcode, length, compressed, first payload byte)."""


class WebSocketProxy:
    """Upgrades of one worker: WAIIDE's handshake, then a tunnel until either side closes."""

    def __init__(self, config: GatewayConfig, relay: HttpRelay, registry: TunnelRegistry,
                 on_client_message: ClientMessageHook) -> None:
        self._config = config
        self._relay = relay  # its pool, and its answers for a refused upgrade or a failure
        self._registry = registry
        self._on_client_message = on_client_message

    async def forward(self, request: Request, head: bytes) -> HTTPResponse | None:
        """Handle one upgrade request; returns only when the WebSocket has closed."""
        metrics = self._registry.metrics
        token = metrics.request_started("websocket") if metrics is not None else None
        status = 499
        tunnel: Tunnel | None = None
        try:
            response = await self._upgrade(request, head)
            if isinstance(response, Tunnel):
                tunnel, response = response, None
                status = 101
                await self._run(request, tunnel)
            elif response is not None:
                status = response.status
            return response
        finally:
            if token is not None:
                assert metrics is not None
                bytes_in = tunnel.client.bytes_in if tunnel else 0
                bytes_out = tunnel.upstream.bytes_in if tunnel else 0
                metrics.request_finished(token, request.method, "websocket", status, bytes_in,
                                         bytes_out)

    async def _upgrade(self, request: Request, head_bytes: bytes) -> HTTPResponse | Tunnel | None:
        """WAIIDE's answer to the upgrade: a started tunnel after its 101, else its response."""
        relay = self._relay
        assert relay.pool is not None
        cfg = self._config
        try:
            conn = await relay.pool.connect()
        except UpstreamError as exc:
            return relay.upstream_failed(request, exc)
        try:
            conn.send_head(head_bytes, head_only=False)
            head = await conn.read_head(cfg.read_timeout_s)
        except UpstreamError as exc:
            conn.close()
            return relay.upstream_failed(request, exc)
        if not head.upgrade:
            try:
                return await relay.relay_response(request, conn, None)
            finally:
                conn.close()
        upstream_transport, from_upstream = conn.detach()
        client_transport: asyncio.Transport = request.transport  # type: ignore[assignment]
        # Bytes the client sent right after its handshake are still in Sanic's buffer.
        from_client = take_buffered_bytes(request)
        client_transport.write(raw_response_head(101, b"Switching Protocols", head.headers))
        tunnel = Tunnel(max_message_bytes=cfg.ws_max_message_bytes,
                        ping_interval_s=cfg.ws_ping_interval_s,
                        on_client_message=self._on_client_message,
                        on_progress=self._registry.progress)
        tunnel.start(client_transport, upstream_transport,
                     to_client=from_upstream, to_upstream=from_client)
        return tunnel

    async def _run(self, request: Request, tunnel: Tunnel) -> None:
        """Relay until the WebSocket closes (or the worker stops)."""
        self._registry.opened(tunnel)
        try:
            await tunnel.wait_closed()
        except asyncio.CancelledError:
            # The worker is stopping (graceful shutdown cancels handlers): say so with 1001.
            tunnel.shutdown()
            raise
        finally:
            self._registry.closed(tunnel)
            release_connection(request)
