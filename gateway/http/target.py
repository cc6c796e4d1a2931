"""Request targets: what the gateway proxies and how the public prefix comes off.

An absolute-form target (`GET http://host/path`) cannot choose another host: the connection
always goes to WAIIDE, so only its path and query are kept.

The IDE's public prefix (`{JUPYTERHUB_SERVICE_PREFIX}WAIIDE`, where Jupyter and the hub serve it)
is also served on the gateway's own port, so that one URL works everywhere: code-server's
`--abs-proxy-base-path` hands a dev server behind `/absproxy/<port>/` that public path, and the
links it writes must work on :8091 too (`ide_prefix_of`).
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


def ide_prefix_of(target: bytes, ide_prefix: bytes) -> bytes | None:
    """`ide_prefix` when `target` is under it (`{ide_prefix}/...`), else None."""
    if target.startswith(ide_prefix) and target[len(ide_prefix):len(ide_prefix) + 1] == b"/":
        return ide_prefix
    return None
