"""Following WebSocket frame boundaries in a byte tunnel without touching the payload.

After the 101 the gateway relays raw bytes (so subprotocols, extensions, close codes and message
sizes are exactly WAIIDE's and the browser's). It still needs to know where frames start, in order
to inject its own keepalive pings between frames, to refuse messages over the configured size,
and to count messages for metrics and activity. `FrameScanner` reads only frame headers (2-14
bytes) and skips payloads by count, so its cost does not grow with message size.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable

OP_CONTINUATION = 0x0
OP_TEXT = 0x1
OP_BINARY = 0x2
OP_CLOSE = 0x8
OP_PING = 0x9
OP_PONG = 0xA

CLOSE_GOING_AWAY = 1001
CLOSE_PROTOCOL_ERROR = 1002
CLOSE_TOO_BIG = 1009

_U16 = struct.Struct("!H")
_U64 = struct.Struct("!Q")

# (opcode, payload length, compressed, first payload byte or -1) for each new data message.
MessageCallback = Callable[[int, int, bool, int], None]


class FrameScanner:
    """Tracks frame boundaries of one direction (masked: client to server)."""

    __slots__ = (
        "_masked",
        "_max_message",
        "_message_bytes",
        "_on_message",
        "_partial",
        "_pending_first",
        "_remaining",
        "messages",
    )

    def __init__(self, *, masked: bool, max_message_bytes: int,
                 on_message: MessageCallback | None = None) -> None:
        self._masked = masked
        self._remaining = 0
        self._partial = b""
        self._message_bytes = 0
        self._max_message = max_message_bytes
        self._on_message = on_message
        # (opcode, length, compressed, mask) of a message whose first payload byte is still to come
        self._pending_first: tuple[int, int, bool, bytes] | None = None
        self.messages = 0

    @property
    def at_boundary(self) -> bool:
        """True when the bytes relayed so far end exactly at the end of a frame."""
        return self._remaining == 0 and not self._partial

    def feed(self, data: bytes) -> int:
        """Account for `data`; returns 0, or the close code to fail the connection with.

        On a non-zero return, nothing of the offending frame has been accepted: the stream is
        still at the boundary before it, so a close frame can be sent in its place.
        """
        if self._partial:
            data = self._partial + data
            self._partial = b""
        pos = 0
        end = len(data)
        while pos < end:
            remaining = self._remaining
            if remaining:
                if self._pending_first is not None:
                    self._emit_pending(data[pos])
                step = min(end - pos, remaining)
                self._remaining = remaining - step
                pos += step
                continue
            parsed = self._header(data, pos, end)
            if parsed is None:
                self._partial = data[pos:]
                return 0
            if parsed < 0:
                return -parsed
            pos = parsed
        return 0

    def _header(self, data: bytes, pos: int, end: int) -> int | None:
        """Parse one header at `pos`: new position, None if incomplete, -code on violation."""
        if end - pos < 2:
            return None
        b0 = data[pos]
        b1 = data[pos + 1]
        length = b1 & 0x7F
        size = 2
        if length == 126:
            size = 4
            if end - pos < size:
                return None
            length = _U16.unpack_from(data, pos + 2)[0]
        elif length == 127:
            size = 10
            if end - pos < size:
                return None
            length = _U64.unpack_from(data, pos + 2)[0]
        masked = bool(b1 & 0x80)
        if masked != self._masked:
            return -CLOSE_PROTOCOL_ERROR
        mask = b""
        if masked:
            if end - pos < size + 4:
                return None
            mask = data[pos + size:pos + size + 4]
            size += 4
        opcode = b0 & 0x0F
        if opcode < OP_CLOSE:  # data frame (new message or continuation)
            message = length if opcode else self._message_bytes + length
            if message > self._max_message:
                return -CLOSE_TOO_BIG
            self._message_bytes = 0 if b0 & 0x80 else message
            if opcode:
                self.messages += 1
                if self._on_message is not None:
                    self._pending_first = (opcode, length, bool(b0 & 0x40), mask)
        self._remaining = length
        pos += size
        if self._pending_first is not None and (length == 0 or pos < end):
            self._emit_pending(data[pos] if length else -1)
        return pos

    def _emit_pending(self, first: int) -> None:
        opcode, length, compressed, mask = self._pending_first  # type: ignore[misc]
        self._pending_first = None
        if first >= 0 and mask:
            first ^= mask[0]
        assert self._on_message is not None
        self._on_message(opcode, length, compressed, first)


def close_frame(code: int, reason: str, *, masked: bool) -> bytes:
    """A close frame the gateway itself sends (masked towards WAIIDE, as a client must)."""
    payload = _U16.pack(code) + reason.encode()[:120]
    if not masked:
        return bytes((0x88, len(payload))) + payload
    mask = os.urandom(4)
    body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return bytes((0x88, 0x80 | len(payload))) + mask + body


PING_TO_CLIENT = bytes((0x89, 0x00))
