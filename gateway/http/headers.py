"""Header rewriting between the client and WAIIDE (RFC 9110 §7.6).

Request side: hop-by-hop fields (the fixed list plus every field named in `Connection`) are
dropped, the gateway's own credentials are removed, `X-Forwarded-*` and `Via` are set, and `Host`
is kept as the client sent it so code-server's Origin check (Origin host == Host) passes without
`--trusted-origins`. Response side: hop-by-hop fields are dropped; everything else, including
`Content-Length`, `Content-Encoding` and repeated `Set-Cookie`, passes unchanged.

Sanic hands request header names lower-cased and values decoded with surrogateescape; encoding
them back the same way keeps every byte the client sent.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable

Headers = list[tuple[bytes, bytes]]

from common.defaults import INTERNAL_HEADER
from gateway import __version__

VIA = f"1.1 waiide-hub/{__version__}"
_VIA_BYTES = VIA.encode()

# RFC 9110 §7.6.1 plus the RFC 2616 list; `expect` because the gateway answers 100-continue itself.
REQUEST_HOP_BY_HOP = frozenset({
    "connection", "keep-alive", "proxy-connection", "te", "transfer-encoding", "upgrade",
    "proxy-authorization", "proxy-authenticate", "trailer", "trailers", "expect",
    "content-length",  # re-set from the framing the gateway actually uses
    INTERNAL_HEADER,  # the supervisor's secret between Jupyter's proxy and the gateway
})
_RESPONSE_HOP_BY_HOP = frozenset({
    b"connection", b"keep-alive", b"proxy-connection", b"te", b"transfer-encoding", b"upgrade",
    b"proxy-authenticate", b"proxy-authorization", b"trailer", b"trailers",
})
_WEBSOCKET_KEEP = frozenset({"upgrade"})


def _encode(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


def _connection_tokens(headers: Iterable[tuple[str, str]]) -> set[str]:
    tokens: set[str] = set()
    for name, value in headers:
        if name == "connection":
            tokens.update(t.strip().lower() for t in value.split(","))
    tokens.discard("")
    return tokens


def request_head(*, method: str, target: bytes, headers: Iterable[tuple[str, str]],
                 client_ip: str, scheme: str, body_length: int | None, chunked: bool,
                 websocket: bool = False, drop: frozenset[str] = frozenset(),
                 cookie: str | None = None, prefix: str | None = None) -> bytes:
    """Serialize the request head WAIIDE gets.

    Args:
        target: origin-form request target, passed through byte for byte.
        body_length: Content-Length to send, or None.
        chunked: send the body with chunked transfer coding.
        websocket: keep the Upgrade handshake (the WebSocket key and protocol pass unchanged).
        drop: further lower-case names to remove (the gateway's own credentials).
        cookie: replacement Cookie value (None: keep as sent; "": remove).
        prefix: the path prefix the gateway stripped, sent as X-Forwarded-Prefix.
    """
    items = list(headers)
    skip = REQUEST_HOP_BY_HOP | drop | _connection_tokens(items)
    if websocket:
        skip = skip - _WEBSOCKET_KEEP
    out = [_encode(method), b" ", target, b" HTTP/1.1\r\n"]
    forwarded_for = forwarded_proto = forwarded_host = via = None
    host = ""
    for name, value in items:
        if name in skip:
            continue
        if name == "x-forwarded-for":
            forwarded_for = value if forwarded_for is None else f"{forwarded_for}, {value}"
            continue
        if name == "via":
            via = value if via is None else f"{via}, {value}"
            continue
        if name == "cookie" and cookie is not None:
            continue
        if name == "host":
            host = value
        elif name == "x-forwarded-proto":
            forwarded_proto = value
        elif name == "x-forwarded-host":
            forwarded_host = value
        out += (_encode(name), b": ", _encode(value), b"\r\n")
    if cookie:
        out += (b"cookie: ", _encode(cookie), b"\r\n")
    xff = client_ip if forwarded_for is None else f"{forwarded_for}, {client_ip}"
    out += (b"x-forwarded-for: ", _encode(xff), b"\r\n")
    if forwarded_proto is None:
        out += (b"x-forwarded-proto: ", scheme.encode(), b"\r\n")
    if forwarded_host is None and host:
        out += (b"x-forwarded-host: ", _encode(host), b"\r\n")
    if prefix:
        out += (b"x-forwarded-prefix: ", _encode(prefix), b"\r\n")
    out += (b"via: ", _encode(via) + b", " + _VIA_BYTES if via else _VIA_BYTES, b"\r\n")
    if websocket:
        out.append(b"connection: Upgrade\r\n")
    else:
        out.append(b"connection: keep-alive\r\n")
        if chunked:
            out.append(b"transfer-encoding: chunked\r\n")
        elif body_length is not None:
            out += (b"content-length: ", str(body_length).encode(), b"\r\n")
    out.append(b"\r\n")
    return b"".join(out)


def response_headers(raw: Iterable[tuple[bytes, bytes]]) -> tuple[Headers, bytes | None]:
    """WAIIDE's response fields minus hop-by-hop ones, plus Via: (fields, Content-Length).

    The fields stay the bytes WAIIDE sent (httptools already refused CR/LF in them), so nothing is
    decoded and re-encoded per response. Content-Length comes back apart, because Sanic frames
    the response from it.
    """
    items = list(raw)
    listed: set[bytes] = set()
    for name, value in items:
        if name.lower() == b"connection":
            listed.update(t.strip().lower() for t in value.split(b","))
    out: Headers = []
    via = None
    length = None
    for name, value in items:
        lname = name.lower()
        if lname in _RESPONSE_HOP_BY_HOP or lname in listed:
            continue
        if lname == b"content-length":
            length = value
            continue
        if lname == b"via":
            via = value if via is None else via + b", " + value
            continue
        out.append((name, value))
    out.append((b"Via", via + b", " + _VIA_BYTES if via else _VIA_BYTES))
    return out, length


def raw_response_head(status: int, reason: bytes, raw: Iterable[tuple[bytes, bytes]]) -> bytes:
    """A response head exactly as WAIIDE sent its fields (for the WebSocket 101)."""
    out = [b"HTTP/1.1 ", str(status).encode(), b" ", reason, b"\r\n"]
    for name, value in raw:
        out += (name, b": ", value, b"\r\n")
    out += (b"Via: ", _VIA_BYTES, b"\r\n\r\n")
    return b"".join(out)


class ResponseHead:
    """Status line and headers of one upstream response (names keep their original case)."""

    __slots__ = ("chunked", "content_length", "headers", "keep_alive", "status", "upgrade")

    def __init__(self, status: int, headers: Headers, keep_alive: bool, upgrade: bool) -> None:
        self.status = status
        self.headers = headers
        self.keep_alive = keep_alive
        self.upgrade = upgrade
        self.content_length: int | None = None
        self.chunked = False
        for name, value in headers:
            lname = name.lower()
            if lname == b"content-length":
                with contextlib.suppress(ValueError):
                    self.content_length = int(value)
            elif lname == b"transfer-encoding":
                self.chunked = b"chunked" in value.lower()

    @property
    def announces_body(self) -> bool:
        """A length above zero or chunked framing (for HEAD and 304 only announced, not sent)."""
        return self.chunked or bool(self.content_length)
