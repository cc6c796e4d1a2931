"""The WebSocket stream scenario's client: one connection reading a 64 MiB binary stream.

A minimal RFC 6455 reader on a raw socket rather than a WebSocket library, because the stream is
about the proxy's bytes per second and the client must not be the limit: it reads into a 1 MiB
buffer (a few large recv calls per message) and folds payload bytes into a CRC-32 as they arrive,
without assembling messages. Measured here against the upstream alone: about 1.0-1.5 GB/s, where
a Node `ws` client with SHA-1 reached 0.65 GB/s.

It accepts any framing a proxy may choose (fragments, continuation frames), answers pings, and
checks the handshake (101 and Sec-WebSocket-Accept), the byte count, the CRC-32 and the close code.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import socket
import struct
import time
import zlib
from dataclasses import dataclass

RECV_BUFFER = 1 << 20
MAX_HANDSHAKE = 64 << 10
WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA


class StreamError(Exception):
    """The stream could not be read or did not verify."""


@dataclass(frozen=True, slots=True)
class StreamResult:
    """What one stream delivered."""

    nbytes: int
    crc32: int
    close_code: int | None


def _handshake(sock: socket.socket, host: str, path: str) -> bytes:
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall((f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n"
                  f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                  "Sec-WebSocket-Version: 13\r\n\r\n").encode())
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk or len(data) > MAX_HANDSHAKE:
            raise StreamError(f"handshake: no complete answer ({len(data)} bytes)")
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    if " 101 " not in lines[0] + " ":
        raise StreamError(f"handshake answered {lines[0]!r}")
    expect = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
    headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}
    if headers.get("sec-websocket-accept") != expect:
        raise StreamError("handshake: wrong Sec-WebSocket-Accept")
    return rest


def _send_control(sock: socket.socket, opcode: int, payload: bytes) -> None:
    mask = os.urandom(4)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    sock.sendall(bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + masked)


def _parse_header(data: bytes) -> tuple[int, int, int] | None:
    """(opcode, payload length, header length) of the frame starting `data`, or None if short."""
    if len(data) < 2:
        return None
    opcode, length, size = data[0] & 0x0F, data[1] & 0x7F, 2
    if length == 126:
        size = 4
        if len(data) < size:
            return None
        length = struct.unpack_from(">H", data, 2)[0]
    elif length == 127:
        size = 10
        if len(data) < size:
            return None
        length = struct.unpack_from(">Q", data, 2)[0]
    if data[1] & 0x80:
        raise StreamError("server sent a masked frame")
    return opcode, length, size


class _Reader:
    """Frame state across recv calls: payload bytes go straight into the CRC."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.nbytes = 0
        self.crc = 0
        self.close_code: int | None = None
        self.closed = False
        self._head = b""        # bytes of a frame header split across reads
        self._opcode = -1       # opcode of the frame whose payload is being read
        self._remaining = 0
        self._control = b""

    def feed(self, view: memoryview) -> None:
        pos, end = 0, len(view)
        while pos < end and not self.closed:
            if self._remaining:
                take = min(self._remaining, end - pos)
                self._payload(view[pos:pos + take])
                pos += take
                self._remaining -= take
                if not self._remaining:
                    self._frame_done()
                continue
            head = self._head + bytes(view[pos:pos + 14])
            parsed = _parse_header(head)
            if parsed is None:
                self._head, pos = head, end
                continue
            opcode, length, size = parsed
            pos += size - len(self._head)
            self._head = b""
            self._opcode, self._remaining = opcode, length
            if opcode == OP_TEXT:
                raise StreamError("text frame in a binary stream")
            if not length:
                self._frame_done()

    def _payload(self, data: memoryview) -> None:
        if self._opcode in (OP_BINARY, OP_CONT):
            self.crc = zlib.crc32(data, self.crc)
            self.nbytes += len(data)
        else:
            self._control += bytes(data)

    def _frame_done(self) -> None:
        if self._opcode == OP_PING:
            _send_control(self.sock, OP_PONG, self._control)
        elif self._opcode == OP_CLOSE:
            self.close_code = struct.unpack(">H", self._control[:2])[0] \
                if len(self._control) >= 2 else None
            # Answering the close is courtesy; the peer may already have dropped the socket.
            with contextlib.suppress(OSError):
                _send_control(self.sock, OP_CLOSE, self._control[:2])
            self.closed = True
        self._control = b""


def read_stream(host: str, port: int, path: str, timeout_s: float) -> StreamResult:
    """Open ws://host:port`path` and read until the server closes; raise StreamError on failure.

    The stream ends at the close frame, or at the end of the connection (reported as close code
    None: the proxy did not forward a close frame).
    """
    deadline = time.monotonic() + timeout_s
    try:
        with socket.create_connection((host, port), timeout=timeout_s) as sock:
            reader = _Reader(sock)
            rest = _handshake(sock, f"{host}:{port}", path)
            if rest:
                reader.feed(memoryview(rest))
            buf = bytearray(RECV_BUFFER)
            view = memoryview(buf)
            while not reader.closed:
                sock.settimeout(max(0.001, deadline - time.monotonic()))
                n = sock.recv_into(view)
                if not n:
                    break
                reader.feed(view[:n])
    except TimeoutError as exc:
        raise StreamError(f"stream not done within {timeout_s:.0f}s") from exc
    except OSError as exc:
        raise StreamError(f"stream: {exc}") from exc
    return StreamResult(reader.nbytes, reader.crc, reader.close_code)
