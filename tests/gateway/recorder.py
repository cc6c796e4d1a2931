"""A recording upstream and a raw-socket client, for tests of what crosses the gateway's edge.

`RecordingUpstream` is a real HTTP/1.1 server on a real loopback socket (threads, stdlib plus
httptools). It keeps every byte each connection received and every request it could parse with
llhttp's strict parser; anything it cannot parse is kept in `errors`, so a test can tell exactly
which bytes reached "WAIIDE". It answers `200 ok`, `/big` with 32 MiB (Content-Length), and a
WebSocket upgrade with 403.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Self

import httptools

BIG_BODY_BYTES = 32 * 1024 * 1024
_PIECE = b"x" * 65536


@dataclass
class Recorded:
    """One request as the upstream parsed it."""

    method: str
    target: bytes
    headers: list[tuple[bytes, bytes]]
    body: bytes = b""
    complete: bool = False

    def values(self, name: bytes) -> list[bytes]:
        return [v for n, v in self.headers if n.lower() == name]


@dataclass
class _Conn:
    raw: bytearray = field(default_factory=bytearray)
    current: Recorded | None = None
    url: bytes = b""
    name: bytes = b""
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)


class RecordingUpstream:
    """See the module docstring; use as a context manager (the threads stop on exit)."""

    def __init__(self) -> None:
        self._sock = socket.socket()
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(256)
        self._sock.settimeout(0.2)
        self.port: int = self._sock.getsockname()[1]
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self.connections: list[bytearray] = []
        self.requests: list[Recorded] = []
        self.errors: list[str] = []

    def __enter__(self) -> Self:
        accept = threading.Thread(target=self._accept_loop, name="recorder-accept", daemon=True)
        accept.start()
        self._threads.append(accept)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in list(self._threads):
            thread.join(timeout=5)
        self._sock.close()

    # -- views for tests -----------------------------------------------------------------------
    def all_bytes(self) -> bytes:
        with self._lock:
            return b"".join(bytes(c) for c in self.connections)

    def mark(self) -> tuple[int, int, int]:
        """Where the records are now; pass to `since` to see what came after."""
        with self._lock:
            return len(self.requests), sum(len(c) for c in self.connections), len(self.errors)

    def since(self, mark: tuple[int, int, int]) -> tuple[list[Recorded], list[str]]:
        with self._lock:
            return list(self.requests[mark[0]:]), list(self.errors[mark[2]:])

    def wait_requests(self, count: int, timeout_s: float = 10.0) -> list[Recorded]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self._lock:
                if len(self.requests) >= count:
                    return list(self.requests)
            time.sleep(0.01)
        raise TimeoutError(f"the upstream got {len(self.requests)} requests, not {count}")

    # -- server --------------------------------------------------------------------------------
    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            thread.start()
            self._threads.append(thread)

    def _serve(self, sock: socket.socket) -> None:
        state = _Conn()
        with self._lock:
            self.connections.append(state.raw)
        replies: list[Recorded] = []
        callbacks = _Callbacks(self, state, replies)
        parser = callbacks.parser = httptools.HttpRequestParser(callbacks)
        sock.settimeout(0.2)
        with sock:
            while not self._stop.is_set():
                try:
                    data = sock.recv(65536)
                except TimeoutError:
                    continue
                except OSError:
                    return
                if not data:
                    return
                with self._lock:
                    state.raw += data
                try:
                    parser.feed_data(data)
                except httptools.HttpParserUpgrade:
                    self._reply(sock, b"HTTP/1.1 403 Forbidden\r\nContent-Length: 2\r\n"
                                      b"Connection: close\r\n\r\nno")
                    return
                except httptools.HttpParserError as exc:
                    with self._lock:
                        self.errors.append(f"{exc}: {bytes(state.raw)[-300:]!r}")
                    return
                while replies:
                    if not self._answer(sock, replies.pop(0)):
                        return

    def _answer(self, sock: socket.socket, request: Recorded) -> bool:
        if request.target.startswith(b"/big"):
            head = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % BIG_BODY_BYTES
            if not self._reply(sock, head):
                return False
            sent = 0
            while sent < BIG_BODY_BYTES and not self._stop.is_set():
                if not self._reply(sock, _PIECE):
                    return False
                sent += len(_PIECE)
            return True
        return self._reply(sock, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")

    @staticmethod
    def _reply(sock: socket.socket, data: bytes) -> bool:
        sock.settimeout(10)
        try:
            sock.sendall(data)
        except OSError:
            return False
        finally:
            sock.settimeout(0.2)
        return True


class _Callbacks:
    def __init__(self, upstream: RecordingUpstream, state: _Conn,
                 replies: list[Recorded]) -> None:
        self._up = upstream
        self._state = state
        self._replies = replies
        self.parser: httptools.HttpRequestParser | None = None

    def on_message_begin(self) -> None:
        self._state.url = b""
        self._state.headers = []

    def on_url(self, url: bytes) -> None:
        self._state.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self._state.headers.append((name, value))

    def on_headers_complete(self) -> None:
        state = self._state
        assert self.parser is not None
        method = self.parser.get_method().decode("latin-1")
        state.current = Recorded(method, state.url, state.headers)
        with self._up._lock:
            self._up.requests.append(state.current)

    def on_body(self, body: bytes) -> None:
        if self._state.current is not None:
            self._state.current.body += body

    def on_message_complete(self) -> None:
        current = self._state.current
        if current is not None:
            current.complete = True
            self._replies.append(current)


@dataclass
class Answer:
    """What the gateway sent back on one connection."""

    status: int | None  # None: no complete response head
    raw: bytes
    closed: bool  # the gateway closed the connection

    @property
    def head(self) -> bytes:
        return self.raw.split(b"\r\n\r\n", 1)[0]

    def header(self, name: str) -> str | None:
        for line in self.head.split(b"\r\n")[1:]:
            key, _, value = line.partition(b":")
            if key.strip().lower() == name.lower().encode():
                return value.strip().decode("latin-1")
        return None


class _ResponseEnd:
    def __init__(self) -> None:
        self.done = False

    def on_message_complete(self) -> None:
        self.done = True


def exchange(port: int, payload: bytes | list[bytes], *, timeout_s: float = 10.0,
             gap_s: float = 0.0) -> Answer:
    """Send `payload` (pieces `gap_s` apart) and read one response, or until the server closes
    or `timeout_s` passes."""
    pieces = payload if isinstance(payload, list) else [payload]
    with socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as sock:
        deadline = time.monotonic() + timeout_s
        with contextlib.suppress(OSError):  # the gateway may answer and close mid-send
            for piece in pieces:
                sock.sendall(piece)
                if gap_s:
                    time.sleep(gap_s)
        return read_answer(sock, deadline)


def read_answer(sock: socket.socket, deadline: float) -> Answer:
    end = _ResponseEnd()
    parser = httptools.HttpResponseParser(end)
    raw = b""
    closed = False
    while not end.done:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        sock.settimeout(left)
        try:
            data = sock.recv(65536)
        except TimeoutError:
            break
        except ConnectionResetError:
            closed = True
            break
        if not data:
            closed = True
            break
        raw += data
        try:
            parser.feed_data(data)
        except httptools.HttpParserError:
            break
    status = int(raw.split(b" ", 2)[1]) if raw.startswith(b"HTTP/1.") and b"\r\n" in raw else None
    if end.done and not closed:
        closed = _closed_soon(sock)
    return Answer(status, raw, closed)


def _closed_soon(sock: socket.socket, wait_s: float = 1.0) -> bool:
    sock.settimeout(wait_s)
    try:
        return sock.recv(1) == b""
    except TimeoutError:
        return False
    except OSError:
        return True


@contextlib.contextmanager
def recording_upstream() -> Iterator[RecordingUpstream]:
    with RecordingUpstream() as upstream:
        yield upstream
