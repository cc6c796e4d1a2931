"""One HTTP/1.1 GET over a fresh connection (TCP, TLS or a unix socket), on asyncio streams alone.

The monitor's probes need a status and at most a small body, once per interval, from three
local servers. An HTTP client library costs far more than that: aiohttp alone adds about 12 MiB
PSS to the monitor process (bench/memory.py). So this module speaks the little HTTP/1.1 a probe
needs: `Connection: close`, a status line, header fields, and a body framed by Content-Length,
chunked transfer coding or the end of the connection, read up to a limit.

Errors are `ProbeError` with the kinds of `monitor.errors`: connect_error (refused, no such
socket, unreachable), timeout (the whole exchange exceeded its deadline), protocol_error (an
answer that is not HTTP/1.x, or a connection lost mid-answer).
"""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path
from urllib.parse import urlsplit

from monitor.errors import ProbeError

MAX_HEAD_BYTES = 64 * 1024
USER_AGENT = "waiide-hub-monitor"


async def http_get(url: str, *, socket: Path | None, timeout_s: float, max_body: int,
                   shown_url: str | None = None) -> tuple[int, bytes]:
    """GET `url` (over the unix `socket` when given); (status, first `max_body` body bytes).

    Args:
        shown_url: how error reasons name the target (default `url`).

    Raises:
        ProbeError: connect_error, timeout or protocol_error (see the module docstring).
    """
    name = shown_url or url
    parts = urlsplit(url)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        async with asyncio.timeout(timeout_s):
            reader, writer = await _connect(parts.scheme, parts.hostname or "localhost",
                                            parts.port, socket, name)
            try:
                host = parts.netloc or "localhost"
                writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: {USER_AGENT}\r\n"
                             "Accept: */*\r\nConnection: close\r\n\r\n".encode("latin-1"))
                await writer.drain()
                return await _read_response(reader, max_body, name)
            finally:
                writer.close()
    except TimeoutError as exc:
        raise ProbeError("timeout", f"no answer within {timeout_s:g}s") from exc
    except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as exc:
        raise ProbeError("protocol_error",
                         f"bad response from {name}: {exc.__class__.__name__} {exc}") from exc


async def _connect(scheme: str, host: str, port: int | None, socket: Path | None,
                   name: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    try:
        if socket is not None:
            return await asyncio.open_unix_connection(str(socket), limit=MAX_HEAD_BYTES)
        tls = ssl.create_default_context() if scheme == "https" else None
        default_port = 443 if tls else 80
        return await asyncio.open_connection(host, port or default_port, ssl=tls,
                                             limit=MAX_HEAD_BYTES)
    except OSError as exc:
        detail = exc.strerror or exc.__class__.__name__
        raise ProbeError("connect_error", f"cannot connect to {name}: {detail}") from exc


async def _read_response(reader: asyncio.StreamReader, max_body: int,
                         name: str) -> tuple[int, bytes]:
    status_line = await reader.readuntil(b"\r\n")
    version, _, rest = status_line.decode("latin-1").partition(" ")
    code = rest[:3]
    if not version.startswith("HTTP/1.") or not code.isdigit():
        raise ProbeError("protocol_error", f"bad response from {name}: not HTTP ({status_line[:40]!r})")
    headers: dict[str, str] = {}
    while (line := await reader.readuntil(b"\r\n")) != b"\r\n":
        field, _, value = line.decode("latin-1").partition(":")
        headers[field.strip().lower()] = value.strip()
    status = int(code)
    if status in (204, 304) or 100 <= status < 200:
        return status, b""
    if "chunked" in headers.get("transfer-encoding", "").lower():
        return status, await _read_chunked(reader, max_body)
    if "content-length" in headers:
        length = int(headers["content-length"])
        return status, await reader.readexactly(min(length, max_body))
    return status, await reader.read(max_body)


async def _read_chunked(reader: asyncio.StreamReader, max_body: int) -> bytes:
    body = bytearray()
    while len(body) < max_body:
        size_line = await reader.readuntil(b"\r\n")
        size = int(size_line.split(b";", 1)[0].strip(), 16)
        if size == 0:
            break
        body += await reader.readexactly(min(size, max_body - len(body)))
        if len(body) >= max_body:
            break
        await reader.readexactly(2)  # the CRLF after each chunk
    return bytes(body)
