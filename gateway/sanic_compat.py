"""Every use of Sanic's internals, checked at start (and used here, or in `gateway.edge.protocol`).

The gateway relays bodies socket to socket, hands WebSocket sockets to its own tunnel, serves a
second port with Sanic's protocol and restarts dead workers. Sanic has no public API for these,
so they rely on attributes of Sanic 25.12 (pinned `<26` in pyproject.toml). The strict edge
(`gateway.edge.protocol`) subclasses Sanic's HTTP/1 reader; its needs are listed here too. An
upgrade that renames one must fail at start with the version and the attribute, not misbehave:
`check_sanic_internals()` runs in `python -m gateway` before anything is served.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import sanic
from sanic import Sanic
from sanic.exceptions import BadURL
from sanic.http.constants import Stage
from sanic.http.http1 import Http
from sanic.request import Request
from sanic.server.protocols.base_protocol import SanicProtocol
from sanic.server.protocols.http_protocol import HttpProtocol
from sanic.worker.manager import WorkerManager
from sanic.worker.multiplexer import WorkerMultiplexer

# (owner, attribute): what the functions below touch.
_REQUIRED: tuple[tuple[type, str], ...] = (
    (Http, "response_bytes_left"), (Http, "response_func"), (Http, "stage"),
    (Http, "request_body"), (Http, "request_bytes"),
    (SanicProtocol, "_can_write"), (SanicProtocol, "_time"), (SanicProtocol, "connections"),
    (HttpProtocol, "recv_buffer"),
    # gateway.edge.protocol replaces Http's head and body readers and drives the protocol's reads
    (Http, "http1_request_header"), (Http, "read"), (Http, "keep_alive"),
    (HttpProtocol, "_data_received"), (HttpProtocol, "receive_more"),
    (WorkerMultiplexer, "name"), (WorkerMultiplexer, "workers"), (WorkerMultiplexer, "restart"),
    (WorkerManager, "worker_state"), (WorkerManager, "monitor_publisher"),
    (WorkerManager, "_shutting_down"),
    # gateway.stop_signals stops the workers from a thread, after the wait for their first ack
    (WorkerManager, "shutdown"), (WorkerManager, "kill"), (WorkerManager, "wait_for_ack"),
)


class SanicIncompatible(RuntimeError):
    """The installed Sanic lacks an internal the gateway relies on."""


def check_sanic_internals() -> None:
    """Raise `SanicIncompatible` naming the Sanic version and each missing attribute."""
    missing = [f"{owner.__module__}.{owner.__qualname__}.{name}" for owner, name in _REQUIRED
               if not _has(owner, name)]
    if missing:
        raise SanicIncompatible(
            f"Sanic {sanic.__version__} lacks what the gateway relies on: {', '.join(missing)} "
            f"(written for Sanic 25.12; see gateway/sanic_compat.py)")


def _has(owner: type, name: str) -> bool:
    # Instance attributes that __init__ assigns show up among its code's names.
    init_names = getattr(getattr(vars(owner).get("__init__"), "__code__", None), "co_names", ())
    return name in getattr(owner, "__slots__", ()) or hasattr(owner, name) or name in init_names


# ---- requests and their connection ----------------------------------------------------------

class GatewayRequest(Request):
    """A request whose unparsable target still gets an answer.

    Sanic drops the connection without any response when the target is not a URL (for example
    the authority form of `CONNECT host:port`), because building its error page parses the same
    target again. Such a request is routed to `/` with `bad_target` set, and answered 400.
    """

    __slots__ = ("bad_target",)

    def __init__(self, url_bytes: bytes, *args: Any, **kwargs: Any) -> None:
        self.bad_target = False
        try:
            super().__init__(url_bytes, *args, **kwargs)
        except BadURL:
            super().__init__(b"/", *args, **kwargs)
            self.raw_url = url_bytes
            self.bad_target = True


def request_body_framing(request: Request) -> tuple[bool | str | None, int | None]:
    """How the client framed its body: (True, length), ("chunked", None) or (None, None)."""
    stream: Any = request.stream
    if stream is None:
        return None, None
    kind: bool | str | None = stream.request_body
    return kind, stream.request_bytes if kind is True else None


async def read_body_piece(request: Request) -> bytes | None:
    """The next piece of a streamed request body; None at its end."""
    stream: Any = request.stream
    assert stream is not None
    piece: bytes | None = await stream.read()
    return piece


class ClientFlow:
    """The client connection's write side, for relaying bytes around Sanic's `send`.

    Sanic pauses its protocol on the socket's high-water mark and sets `_can_write` again when
    it drains; its idle timer (RESPONSE_TIMEOUT) reads `_time`, refreshed here as bytes go out.
    """

    __slots__ = ("_protocol", "can_write", "transport")

    def __init__(self, request: Request) -> None:
        protocol: Any = request.protocol
        transport: Any = request.transport
        self._protocol = protocol
        self.transport: asyncio.Transport = transport
        self.can_write: asyncio.Event = protocol._can_write

    def touch(self, now: float | None = None) -> None:
        """Tell Sanic's idle timer the connection is busy."""
        self._protocol._time = time.monotonic() if now is None else now


def finish_response(request: Request) -> None:
    """Tell Sanic's HTTP/1 state machine that the body it framed was sent in full.

    Sanic counts body bytes only through its own `send`; these are the fields its
    `http1_response_normal` sets when the last byte goes out.
    """
    http: Any = request.stream
    http.response_bytes_left = 0
    http.response_func = None
    http.stage = Stage.IDLE


def take_buffered_bytes(request: Request) -> bytes:
    """Bytes the client sent after its request head that Sanic has read but not consumed."""
    buffered = getattr(request.protocol, "recv_buffer", None)
    if not buffered:
        return b""
    data = bytes(buffered)
    buffered.clear()
    return data


def release_connection(request: Request) -> None:
    """Drop a connection whose socket the gateway took over from Sanic's set.

    Sanic's protocol no longer owns the socket (a WebSocket tunnel does), so it never sees
    connection_lost; without this, graceful shutdown would wait for it.
    """
    protocol: Any = request.protocol
    connections = getattr(protocol, "connections", None)
    if connections is not None:
        connections.discard(protocol)


# ---- workers ---------------------------------------------------------------------------------

SERVER_WORKER_PREFIX = "Sanic-Server-"


def worker_name(app: Sanic[Any, Any]) -> str | None:
    """This worker's name under Sanic's manager ("Sanic-Server-1-0"); None without a manager."""
    try:
        name: str = app.m.name
    except AttributeError:
        return None
    return name


def worker_states(app: Sanic[Any, Any]) -> dict[str, dict[str, Any]]:
    """Every worker's state as the manager shares it (name -> {"state": ..., "pid": ...})."""
    return dict(app.m.workers)


def manager_worker_states(app: Sanic[Any, Any]) -> dict[str, dict[str, Any]]:
    """Main process: every worker's shared state (name -> {"state": ..., "pid": ...})."""
    manager: Any = app.manager
    return {name: dict(state) for name, state in dict(manager.worker_state).items()}


def manager_restart(app: Sanic[Any, Any], name: str) -> None:
    """Main process: ask the manager's loop to restart `name`, with the message a worker's
    `app.m.restart(name)` sends (`WorkerMultiplexer.restart`), so the loop does the work."""
    manager: Any = app.manager
    manager.monitor_publisher.send(f"{name}:")


def manager_is_stopping(app: Sanic[Any, Any]) -> bool:
    """Main process: the manager is shutting the workers down (never restart then)."""
    manager: Any = app.manager
    return bool(manager._shutting_down)


def http_protocol_factory(app: Sanic[Any, Any], connections: set[Any],
                          protocol: type[HttpProtocol] = HttpProtocol) -> Any:
    """A factory of a Sanic HTTP protocol for a listener the gateway opened itself."""
    from functools import partial

    from sanic.models.server_types import Signal

    return partial(protocol, loop=asyncio.get_running_loop(), app=app, signal=Signal(),
                   connections=connections, state={})
