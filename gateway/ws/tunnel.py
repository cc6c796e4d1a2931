"""The WebSocket byte tunnel between a client and WAIIDE, after WAIIDE has answered 101.

Both sockets are driven by small protocols that write each received chunk straight to the other
socket; when a socket's write buffer is full, the other socket stops being read until it drains.
So memory per WebSocket is bounded by two write buffers whatever the message size, and there is
no per-message task, copy or re-framing.

On top of the bytes, `FrameScanner`s (one per direction) let the gateway:
- send its own ping to the client every `ping_interval_s` when the server side is idle at a frame
  boundary, so ingresses with idle timeouts (nginx 60 s) do not cut a quiet IDE;
- refuse a message over `max_message_bytes` with close code 1009 sent to both sides;
- count messages per direction, and report client messages to an activity callback.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from gateway.ws.frames import (
    CLOSE_GOING_AWAY,
    PING_TO_CLIENT,
    FrameScanner,
    MessageCallback,
    close_frame,
)

logger = logging.getLogger(__name__)

_WRITE_HIGH_WATER = 256 * 1024


class _Side(asyncio.Protocol):
    """One socket of the tunnel; `peer` is the other one."""

    def __init__(self, tunnel: Tunnel, name: str, scanner: FrameScanner) -> None:
        self.tunnel = tunnel
        self.name = name
        self.scanner = scanner
        self.transport: asyncio.Transport | None = None
        self.peer: _Side | None = None
        self.closed = False
        self.bytes_in = 0

    def attach(self, transport: asyncio.Transport) -> None:
        self.transport = transport
        transport.set_write_buffer_limits(high=_WRITE_HIGH_WATER)
        transport.set_protocol(self)
        if transport.is_closing():
            self.connection_lost(None)

    def data_received(self, data: bytes) -> None:
        self.tunnel.relay(self, data)

    def eof_received(self) -> bool | None:
        return None  # a half-closed WebSocket is over: close, which closes the peer too

    def pause_writing(self) -> None:
        if self.peer is not None and self.peer.transport is not None:
            with contextlib.suppress(RuntimeError):
                self.peer.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.peer is not None and self.peer.transport is not None:
            with contextlib.suppress(RuntimeError):
                self.peer.transport.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed:
            self.closed = True
            self.tunnel.side_closed(self, exc)


class Tunnel:
    """Relays one upgraded connection until either side closes."""

    def __init__(self, *, max_message_bytes: int, ping_interval_s: float,
                 on_client_message: MessageCallback | None = None,
                 on_progress: Callable[[Tunnel], None] | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        self.client = _Side(self, "client", FrameScanner(
            masked=True, max_message_bytes=max_message_bytes, on_message=on_client_message))
        self.upstream = _Side(self, "upstream", FrameScanner(
            masked=False, max_message_bytes=max_message_bytes))
        self.client.peer, self.upstream.peer = self.upstream, self.client
        self._ping_interval_s = ping_interval_s
        self._ping_timer: asyncio.TimerHandle | None = None
        self._idle_since_ping = True
        self._done: asyncio.Future[None] = self._loop.create_future()
        self._on_progress = on_progress
        self._reported = (0, 0)

    def start(self, client: asyncio.Transport, upstream: asyncio.Transport,
              *, to_client: bytes = b"", to_upstream: bytes = b"") -> None:
        """Take over both sockets; bytes already read past the handshakes are relayed first."""
        self.client.attach(client)
        self.upstream.attach(upstream)
        if to_client:
            self.relay(self.upstream, to_client)
        if to_upstream:
            self.relay(self.client, to_upstream)
        with contextlib.suppress(RuntimeError):
            client.resume_reading()  # Sanic may have paused it while the handshake ran
        if self._ping_interval_s > 0:
            self._ping_timer = self._loop.call_later(self._ping_interval_s, self._keepalive)

    def relay(self, source: _Side, data: bytes) -> None:
        peer = source.peer
        assert peer is not None
        source.bytes_in += len(data)
        code = source.scanner.feed(data)
        if code:
            self.fail(code, "message too big" if code == 1009 else "protocol error")
            return
        if source is self.upstream:
            self._idle_since_ping = False
        if peer.transport is not None and not peer.closed:
            peer.transport.write(data)

    def _keepalive(self) -> None:
        client = self.client
        if client.closed or self.upstream.closed:
            return
        if self._idle_since_ping and self.upstream.scanner.at_boundary and client.transport:
            client.transport.write(PING_TO_CLIENT)
        self._idle_since_ping = True
        if self._on_progress is not None:
            self._on_progress(self)
        self._ping_timer = self._loop.call_later(self._ping_interval_s, self._keepalive)

    def fail(self, code: int, reason: str) -> None:
        """Close both sides with `code`, sending close frames where a frame boundary allows."""
        for side, masked in ((self.client, False), (self.upstream, True)):
            # Towards a side, the bytes we wrote last came from its peer's direction.
            peer = side.peer
            assert peer is not None
            if side.transport is not None and not side.closed and peer.scanner.at_boundary:
                side.transport.write(close_frame(code, reason, masked=masked))
        self.close()

    def shutdown(self) -> None:
        """The gateway is stopping: tell both sides it is going away."""
        self.fail(CLOSE_GOING_AWAY, "gateway restarting")

    def side_closed(self, side: _Side, exc: Exception | None) -> None:
        if exc is not None:
            logger.debug("websocket %s side lost: %s", side.name, exc)
        peer = side.peer
        assert peer is not None
        if peer.transport is not None and not peer.transport.is_closing():
            peer.transport.close()  # flushes what is buffered first
        if side.closed and peer.closed:
            self._finish()

    def close(self) -> None:
        for side in (self.client, self.upstream):
            if side.transport is not None and not side.transport.is_closing():
                side.transport.close()

    def abort(self) -> None:
        for side in (self.client, self.upstream):
            if side.transport is not None:
                side.transport.abort()

    def _finish(self) -> None:
        if self._ping_timer is not None:
            self._ping_timer.cancel()
        if not self._done.done():
            self._done.set_result(None)

    def take_message_counts(self) -> tuple[int, int]:
        """Messages (from the client, to the client) since the last call."""
        now = (self.client.scanner.messages, self.upstream.scanner.messages)
        before, self._reported = self._reported, now
        return now[0] - before[0], now[1] - before[1]

    async def wait_closed(self) -> None:
        await self._done
