"""`TunnelRegistry`: the WebSocket tunnels open in one worker, and their metrics.

The registry is how a stopping worker closes every WebSocket with 1001 while the sockets still
flush (Sanic aborts whatever is left after its graceful timeout, which clients see as 1006).
"""

from __future__ import annotations

from gateway.metrics import GatewayMetrics
from gateway.ws.tunnel import Tunnel


class TunnelRegistry:
    """Open tunnels of one worker; counts opened/closed tunnels and relayed messages."""

    def __init__(self) -> None:
        self._tunnels: set[Tunnel] = set()
        self.metrics: GatewayMetrics | None = None  # set per worker in gateway.app

    def __len__(self) -> int:
        return len(self._tunnels)

    def opened(self, tunnel: Tunnel) -> None:
        self._tunnels.add(tunnel)
        if self.metrics is not None:
            self.metrics.websocket_opened()

    def progress(self, tunnel: Tunnel) -> None:
        """Periodically and at the end: count the messages relayed since the last call."""
        if self.metrics is not None:
            new_in, new_out = tunnel.take_message_counts()
            if new_in:
                self.metrics.websocket_messages("in", new_in)
            if new_out:
                self.metrics.websocket_messages("out", new_out)

    def closed(self, tunnel: Tunnel) -> None:
        self._tunnels.discard(tunnel)
        if self.metrics is not None:
            self.progress(tunnel)
            self.metrics.websocket_closed()

    def shutdown_all(self) -> None:
        """Close every open tunnel with 1001 (Going Away)."""
        for tunnel in list(self._tunnels):
            tunnel.shutdown()
