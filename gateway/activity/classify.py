"""Which traffic is someone using the server, and which is a tab, a probe or a scrape by itself.

WebSocket messages from the workbench are never use once the IDE extension has been heard from
(a report, or its notice poll, which it sends as it starts and every few seconds after): an
open, untouched workbench sends KeepAlive (type 9) and Ack (type 3) messages and about 110
regular RPC messages per 30 s, and the extension sees input where it happens. Without the
extension (a custom WAIIDE_COMMAND, or before it has started), a client message that is not VS
Code's 13-byte KeepAlive/Ack counts, as before: better a server that stays up than one that stops
under a user.

Proxied HTTP requests count when a person is behind them: a page opened (a navigation), an upload,
a download of at least `DOWNLOAD_BYTES`, or a client that is not a browser (curl, scripts). A
browser's own small background fetches (`Sec-Fetch-Mode` other than navigate) are polling.
"""

from __future__ import annotations

VSCODE_HEADER_BYTES = 13
VSCODE_ACK = 3
VSCODE_KEEPALIVE = 9
_CHATTER_TYPES = frozenset({VSCODE_ACK, VSCODE_KEEPALIVE})
_CHATTER_MAX_COMPRESSED = 8
DOWNLOAD_BYTES = 1024 * 1024
_UPLOAD_METHODS = frozenset({"POST", "PUT", "PATCH"})

# Kinds of ignored traffic, as /api/activity counts them.
KEEPALIVE = "keepalive"
RPC_POLL = "rpc-poll"
HTTP_POLL = "http-poll"
PING = "ping"
PROBE = "probe"
SCRAPE = "scrape"


def is_vscode_chatter(length: int, compressed: bool, first: int) -> bool:
    """VS Code's KeepAlive and Ack messages (13 bytes, type byte first)."""
    if compressed:
        return length <= _CHATTER_MAX_COMPRESSED
    return length == VSCODE_HEADER_BYTES and first in _CHATTER_TYPES


def ws_message_use(length: int, compressed: bool, first: int, *,
                   extension_seen: bool) -> tuple[str | None, str | None]:
    """(cause, None) when a client WebSocket message is use, else (None, ignored kind)."""
    if is_vscode_chatter(length, compressed, first):
        return None, KEEPALIVE
    if extension_seen:
        return None, RPC_POLL
    return "websocket", None


def http_use(method: str, fetch_mode: str | None, bytes_in: int,
             bytes_out: int) -> tuple[str | None, str | None]:
    """(cause, None) when a proxied HTTP exchange is use, else (None, ignored kind)."""
    if bytes_in > 0 and method in _UPLOAD_METHODS:
        return "http-upload", None
    if bytes_out >= DOWNLOAD_BYTES:
        return "http-download", None
    if fetch_mode is None:
        return "http", None  # not a browser: somebody runs a client
    if fetch_mode == "navigate":
        return "http-page", None
    return None, HTTP_POLL
