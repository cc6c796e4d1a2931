"""Request targets: what the gateway proxies and how the public prefix comes off.

An absolute-form target (`GET http://host/path`) cannot choose another host: the connection
always goes to WAIIDE, so only its path and query are kept.
"""

from __future__ import annotations

import httptools


def origin_form(raw_target: bytes) -> bytes | None:
    """The path and query of a request target; None for forms the gateway does not proxy."""
    if raw_target.startswith(b"/"):
        return raw_target
    if raw_target[:7].lower() == b"http://" or raw_target[:8].lower() == b"https://":
        try:
            url = httptools.parse_url(raw_target)
        except httptools.HttpParserInvalidURLError:
            return None
        path = url.path or b"/"
        return path + b"?" + url.query if url.query else path
    return None


def strip_prefix(target: bytes, prefix: str | None) -> bytes | None:
    """`target` with the public `prefix` removed (None if it is not under it)."""
    if not prefix:
        return origin_form(target)
    raw = prefix.encode()
    if not target.startswith(raw):
        return None
    return target[len(raw):] or b"/"
