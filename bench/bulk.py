"""Large HTTP transfers: N connections each downloading or uploading a fixed number of bodies.

One thread per connection (http.client over keep-alive; reads go straight into a 1 MiB buffer, so
the client makes few, large syscalls, and CRC-32 and the socket calls release the GIL). Every
transfer is verified: status 200, the exact byte count, and the CRC-32 of a download, or, for an
upload, the byte count the upstream's sink says it read. Only verified bytes count as throughput.

All connections start together; the clock runs from that start until the last one finishes. A
hard deadline bounds the whole scenario: connections still busy then are shut down and reported.
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

READ_BUFFER = 1 << 20
SOCKET_TIMEOUT_S = 30.0
# The upload sink reports request line + headers + body; proxies add some headers.
MAX_UPLOAD_OVERHEAD = 64 << 10


class TransferError(Exception):
    """One transfer failed verification or did not complete."""


@dataclass(slots=True)
class BulkResult:
    """The verified outcome of a bulk scenario."""

    bytes_ok: int = 0
    transfers_ok: int = 0
    seconds: float = 0.0
    errors: int = 0
    first_error: str | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add_ok(self, nbytes: int) -> None:
        with self._lock:
            self.bytes_ok += nbytes
            self.transfers_ok += 1

    def add_error(self, reason: str) -> None:
        with self._lock:
            self.errors += 1
            self.first_error = self.first_error or reason


Transfer = Callable[[http.client.HTTPConnection, bytearray], int]


def download(path: str, size: int, crc32: int) -> Transfer:
    """A transfer that GETs `path` and checks status, length and CRC-32; returns the byte count."""
    def run(conn: http.client.HTTPConnection, buf: bytearray) -> int:
        conn.request("GET", path)
        resp = conn.getresponse()
        view = memoryview(buf)
        got, crc = 0, 0
        while True:
            n = resp.readinto(buf)
            if not n:
                break
            crc = zlib.crc32(view[:n], crc)
            got += n
        if resp.status != 200:
            raise TransferError(f"HTTP {resp.status} for GET {path}")
        if got != size:
            raise TransferError(f"GET {path}: {got} bytes of {size}")
        if crc != crc32:
            raise TransferError(f"GET {path}: checksum mismatch")
        return got
    return run


def upload(path: str, body: bytes) -> Transfer:
    """A transfer that POSTs `body` and checks the sink's count of bytes read."""
    def run(conn: http.client.HTTPConnection, buf: bytearray) -> int:
        conn.request("POST", path, body=body,
                     headers={"Content-Type": "application/octet-stream"})
        resp = conn.getresponse()
        answer = resp.read(4096)
        if resp.status != 200:
            raise TransferError(f"HTTP {resp.status} for POST {path}: {answer[:120]!r}")
        parts = answer.split()
        read = int(parts[1]) if len(parts) == 2 and parts[1].isdigit() else -1
        if not 0 < read - len(body) <= MAX_UPLOAD_OVERHEAD:
            raise TransferError(
                f"POST {path}: upstream read {read} bytes for a {len(body)}-byte body")
        return len(body)
    return run


def _connection(base_url: str) -> http.client.HTTPConnection:
    parts = urlsplit(base_url)
    return http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80,
                                       timeout=SOCKET_TIMEOUT_S)


def _worker(base_url: str, transfer: Transfer, count: int, start: threading.Barrier,
            result: BulkResult, conns: list[http.client.HTTPConnection]) -> None:
    conn = _connection(base_url)
    conns.append(conn)
    buf = bytearray(READ_BUFFER)
    try:
        start.wait(timeout=SOCKET_TIMEOUT_S)
        for _ in range(count):
            result.add_ok(transfer(conn, buf))
    except (TransferError, OSError, http.client.HTTPException, threading.BrokenBarrierError,
            ValueError) as exc:
        result.add_error(str(exc) or type(exc).__name__)
    finally:
        conn.close()


def run(base_url: str, transfer: Transfer, *, connections: int, per_connection: int,
        timeout_s: float) -> BulkResult:
    """Run `per_connection` transfers on each of `connections` keep-alive connections to the
    host and port of `base_url` (the transfer carries the full path)."""
    result = BulkResult()
    barrier = threading.Barrier(connections + 1)
    conns: list[http.client.HTTPConnection] = []
    threads = [threading.Thread(target=_worker, name=f"bulk-{i}", daemon=True,
                                args=(base_url, transfer, per_connection, barrier,
                                      result, conns))
               for i in range(connections)]
    for thread in threads:
        thread.start()
    barrier.wait(timeout=SOCKET_TIMEOUT_S)
    started = time.perf_counter()
    deadline = time.monotonic() + timeout_s
    for thread in threads:
        thread.join(timeout=max(0.0, deadline - time.monotonic()))
    result.seconds = time.perf_counter() - started
    if any(thread.is_alive() for thread in threads):
        result.add_error(f"timeout: not done within {timeout_s:.0f}s")
        for conn in conns:
            # Unblocks a thread stuck in recv; the socket may already be closed.
            with contextlib.suppress(OSError, AttributeError):
                conn.sock.shutdown(socket.SHUT_RDWR)
        for thread in threads:
            thread.join(timeout=5)
    return result
