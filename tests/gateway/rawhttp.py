"""In-process servers on real sockets for the protocol-level gateway tests.

- `raw_upstream(script)`: a scripted HTTP/1.1 upstream; every accepted connection runs
  `script(peer)`, which reads requests and writes exactly the bytes the test wants (interim
  responses, broken framing, a close at the wrong moment).
- `inproc_gateway(env)`: the real gateway app (`create_app`) served by Sanic in this event loop.
- `read_response(reader)`: a client-side response reader that says whether the body was complete.

Every server binds 127.0.0.1:0 (or a unix socket) itself and is handed the bound socket, so there
is no port race; it is listening when the context is entered, and it is closed, with every
connection task cancelled, when the context exits, also on failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httptools
from sanic import Sanic

from gateway.app import create_app
from gateway.config import GatewayConfig

STEP_TIMEOUT_S = 10.0  # any single wait of these helpers; a hang fails instead of blocking


class Peer:
    """The server's side of one upstream connection."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 server: RawUpstream, index: int) -> None:
        self.reader = reader
        self.writer = writer
        self.server = server
        self.index = index  # 0 for the first connection the server accepted

    async def request(self) -> bytes:
        """One request (head and a Content-Length body); b'' when the client closed."""
        try:
            head = await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), STEP_TIMEOUT_S)
        except asyncio.IncompleteReadError:
            return b""
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        body = await asyncio.wait_for(self.reader.readexactly(length), STEP_TIMEOUT_S)
        self.server.requests.append((self.index, head + body))
        return head + body

    async def send(self, *pieces: bytes) -> None:
        """Write each piece with its own write and drain."""
        for piece in pieces:
            self.writer.write(piece)
            await self.writer.drain()

    async def wait_closed_by_client(self) -> None:
        """Until the client closes its end (EOF)."""
        await asyncio.wait_for(self.reader.read(), STEP_TIMEOUT_S)

    def close(self) -> None:
        self.writer.close()


Script = Callable[[Peer], Awaitable[None]]


@dataclass
class RawUpstream:
    """A scripted upstream; `requests` holds (connection index, request bytes) as they came."""

    address: tuple[str, int] | str
    requests: list[tuple[int, bytes]] = field(default_factory=list)
    peers: list[Peer] = field(default_factory=list)

    @property
    def port(self) -> int:
        assert isinstance(self.address, tuple)
        return self.address[1]

    @property
    def connections(self) -> int:
        return len(self.peers)


@contextlib.asynccontextmanager
async def raw_upstream(script: Script, *, unix_path: Path | None = None
                       ) -> AsyncIterator[RawUpstream]:
    """Serve `script` on a socket bound here (TCP on 127.0.0.1, or `unix_path`)."""
    if unix_path is None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        upstream = RawUpstream(sock.getsockname())
    else:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(str(unix_path))
        upstream = RawUpstream(str(unix_path))
    tasks: set[asyncio.Task[None]] = set()

    async def accepted(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        tasks.add(task)
        peer = Peer(reader, writer, upstream, len(upstream.peers))
        upstream.peers.append(peer)
        try:
            await script(peer)
        finally:
            writer.close()

    try:
        sock.listen(16)
        if unix_path is None:
            server = await asyncio.start_server(accepted, sock=sock)
        else:
            server = await asyncio.start_unix_server(accepted, sock=sock)
    except BaseException:
        sock.close()
        raise
    try:
        yield upstream
    finally:
        server.close()
        for task in tasks:
            task.cancel()
        await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), STEP_TIMEOUT_S)
        await asyncio.wait_for(server.wait_closed(), STEP_TIMEOUT_S)


@dataclass
class InprocGateway:
    port: int
    app: Sanic[Any, Any]

    async def open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.wait_for(asyncio.open_connection("127.0.0.1", self.port),
                                      STEP_TIMEOUT_S)


@contextlib.asynccontextmanager
async def inproc_gateway(upstream: RawUpstream, env: Mapping[str, str] | None = None
                         ) -> AsyncIterator[InprocGateway]:
    """The real gateway application in front of `upstream`, served in this event loop."""
    full_env = {"HOST": "127.0.0.1", "GATEWAY_AUTH": "none", "WAIIDE_HOST": "127.0.0.1"}
    if isinstance(upstream.address, str):
        full_env["WAIIDE_SOCKET"] = upstream.address
    else:
        full_env["WAIIDE_PORT"] = str(upstream.port)
    full_env.update(env or {})
    config = GatewayConfig.from_env(full_env)
    Sanic.test_mode = True  # one app name may be created again by the next test
    app = create_app(config)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    port = sock.getsockname()[1]
    server: Any = None  # sanic's AsyncioServer is not annotated
    try:
        server = await app.create_server(sock=sock, return_asyncio_server=True)
        assert server is not None
        await server.startup()
        await server.before_start()
        await server.after_start()
        yield InprocGateway(port, app)
    finally:
        if server is not None:
            await server.before_stop()
            server.close()
            await asyncio.wait_for(server.wait_closed(), STEP_TIMEOUT_S)
            await server.after_stop()
        sock.close()


@dataclass
class Response:
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes
    complete: bool  # the message ended as its framing says (not cut off)
    interim: list[int] = field(default_factory=list)

    def header(self, name: bytes) -> bytes | None:
        return next((v for n, v in self.headers if n.lower() == name.lower()), None)


class _Collect:
    def __init__(self) -> None:
        self.headers: list[tuple[bytes, bytes]] = []
        self.body: list[bytes] = []
        self.done = False
        self.status = 0
        self.interim: list[int] = []
        self.parser: httptools.HttpResponseParser | None = None

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        assert self.parser is not None
        status = self.parser.get_status_code()
        if 100 <= status < 200:
            self.interim.append(status)
            self.headers = []
        else:
            self.status = status

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        if self.status:
            self.done = True


async def read_response(reader: asyncio.StreamReader, *, head_only: bool = False,
                        timeout_s: float = STEP_TIMEOUT_S) -> Response:
    """Read one response; `complete` is False when the connection ended before its body did."""
    collect = _Collect()
    parser = httptools.HttpResponseParser(collect)
    collect.parser = parser
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not collect.done:
        if head_only and collect.status:
            break
        data = await asyncio.wait_for(reader.read(65536), max(deadline - loop.time(), 0.01))
        if not data:
            break
        parser.feed_data(data)
    return Response(collect.status, collect.headers, b"".join(collect.body),
                    collect.done or (head_only and collect.status > 0), collect.interim)
