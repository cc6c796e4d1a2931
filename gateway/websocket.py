"""WebSocket upgrades: WAIIDE's handshake first, then a byte tunnel (`gateway.tunnel`).

The upgrade request goes to WAIIDE with the client's own `Sec-WebSocket-Key`, `-Version`,
`-Protocol` and `-Extensions`, over a fresh connection. Only when WAIIDE answers 101 does the client
get a 101 — WAIIDE's, with its accept key and its chosen subprotocol. Any other answer (code-server's
403 for a bad Origin, a 404, a 401) reaches the client as that HTTP response. This is the order
jupyter-server-proxy gets wrong (#459): it accepts the client before the backend has spoken.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from sanic.request import Request
from sanic.response import HTTPResponse

from gateway.auth import Verdict
from gateway.errors import UpstreamError
from gateway.headers import raw_response_head
from gateway.tunnel import Tunnel

if TYPE_CHECKING:
    from gateway.proxy import Proxy

logger = logging.getLogger(__name__)


async def proxy_websocket(proxy: Proxy, request: Request, target: bytes, verdict: Verdict,
                          prefix: str | None = None) -> HTTPResponse | None:
    """Handle one upgrade request; returns only when the WebSocket has closed."""
    metrics = proxy.metrics
    token = metrics.request_started("websocket") if metrics is not None else None
    status = 499
    tunnel: Tunnel | None = None
    try:
        response = await _upgrade(proxy, request, target, verdict, prefix)
        if isinstance(response, Tunnel):
            tunnel, response = response, None
            status = 101
            await _run(proxy, request, tunnel)
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


async def _upgrade(proxy: Proxy, request: Request, target: bytes, verdict: Verdict,
                   prefix: str | None) -> HTTPResponse | Tunnel | None:
    """WAIIDE's answer to the upgrade: a started tunnel after its 101, else its response."""
    pool = proxy.pool
    assert pool is not None
    cfg = proxy.config
    head_bytes = proxy.build_head(request, target, verdict, body_length=None, chunked=False,
                                  websocket=True, prefix=prefix)
    try:
        conn = await pool.connect()
    except UpstreamError as exc:
        return proxy.upstream_failed(request, exc)
    try:
        conn.start(head_bytes, head_only=False)
        head = await conn.read_head(cfg.read_timeout_s)
    except UpstreamError as exc:
        conn.close()
        return proxy.upstream_failed(request, exc)
    if not head.upgrade:
        try:
            return await proxy.relay_response(request, conn, None)
        finally:
            conn.close()
    upstream_transport, from_upstream = conn.detach()
    client_transport = request.transport
    sanic_protocol = request.protocol
    # Bytes the client sent right after its handshake are still in Sanic's buffer.
    buffered = getattr(sanic_protocol, "recv_buffer", None)
    from_client = bytes(buffered) if buffered else b""
    if buffered:
        buffered.clear()
    client_transport.write(raw_response_head(101, b"Switching Protocols", head.headers))
    tunnel = Tunnel(max_message_bytes=cfg.ws_max_message_bytes,
                    ping_interval_s=cfg.ws_ping_interval_s,
                    on_client_message=proxy.on_client_message,
                    on_progress=proxy.websocket_progress)
    tunnel.start(client_transport, upstream_transport,  # type: ignore[arg-type]
                 to_client=from_upstream, to_upstream=from_client)
    return tunnel


async def _run(proxy: Proxy, request: Request, tunnel: Tunnel) -> None:
    """Relay until the WebSocket closes (or the worker stops)."""
    sanic_protocol = request.protocol
    proxy.websocket_opened(tunnel)
    try:
        await tunnel.wait_closed()
    except asyncio.CancelledError:
        # The worker is stopping (graceful shutdown cancels handlers): say so with 1001.
        tunnel.shutdown()
        raise
    finally:
        proxy.websocket_closed(tunnel)
        # Sanic's protocol no longer owns the socket, so it never sees connection_lost; drop it
        # from the worker's connection set ourselves so graceful shutdown does not wait for it.
        connections = getattr(sanic_protocol, "connections", None)
        if connections is not None:
            connections.discard(sanic_protocol)
