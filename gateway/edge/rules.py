"""Strict HTTP/1.1 request framing at the gateway's edge (RFC 9112, RFC 9110): pure functions.

The gateway stands in front of a shell, so it must never read a request differently from the
server behind it (request smuggling), and never pass on a field line that another parser could
split differently. Everything here either returns validated, normalised values or raises
`HttpViolation` with the status to answer; nothing is repaired silently:

- request line: `method SP request-target SP HTTP/1.x`, single spaces, a token method, a target of
  visible ASCII. Absolute-form (`http://host/p?q`) becomes origin-form, and its authority replaces
  Host (RFC 9112 §3.2.2); authority-form only with CONNECT; `*` and anything else: 400.
- field lines (checked by llhttp through httptools, strict by default, and faster than the
  Python parser it replaces): a token name, the colon right after it (no whitespace: §5.1), a
  value without CR, LF, NUL or other controls except HTAB; obs-fold (a line starting with
  whitespace) is rejected (§5.2). Exactly one valid Host in HTTP/1.1 (§3.2).
- framing (§6): Content-Length only ASCII digits and one value; Transfer-Encoding with `chunked`
  last (else 400), only codings the gateway understands (else 501), never together with
  Content-Length, never in HTTP/1.0.
- chunked bodies (§7.1): sizes only HEXDIG, extensions well-formed, every line ended by CRLF.

Repeated Cookie fields are joined into one (as HTTP/2 gateways do, RFC 9113 §8.2.3), so every
cookie the client sent is seen by whoever removes credentials.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import httptools

MAX_CONTENT_LENGTH_DIGITS = 18  # below 2**63: no big-int arithmetic on hostile input
MAX_CHUNK_SIZE_DIGITS = 16
MAX_CHUNK_LINE = 4096  # a size line with extensions; longer is abuse

_TCHAR = r"!#$%&'*+\-.^_`|~0-9A-Za-z"
_TOKEN = r"[" + _TCHAR + r"]+"
_REQUEST_LINE = re.compile(r"(" + _TOKEN + r") ([\x21-\x7e]+) HTTP/([0-9])\.([0-9])")
_DIGITS = re.compile(rf"[0-9]{{1,{MAX_CONTENT_LENGTH_DIGITS}}}")
_TOKEN_STR = re.compile(_TOKEN)
# uri-host [ ":" port ]: an IP literal or a reg-name (RFC 3986 §3.2.2); no userinfo.
_HOST = re.compile(r"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-._~!$&'()*+,;=%]*)(?::[0-9]{0,5})?")
_ABSOLUTE = re.compile(r"([Hh][Tt][Tt][Pp][Ss]?)://([^/?]*)([^?]*)(\?.*)?")
_TOKEN_B = _TOKEN.encode()
_QUOTED = rb'"(?:[\t \x21\x23-\x5b\x5d-\x7e\x80-\xff]|\\[\t \x21-\x7e\x80-\xff])*"'
_CHUNK_LINE = re.compile(
    rb"([0-9A-Fa-f]{1,%d})" % MAX_CHUNK_SIZE_DIGITS
    + rb"(?:[ \t]*;[ \t]*" + _TOKEN_B + rb"(?:[ \t]*=[ \t]*(?:" + _TOKEN_B + rb"|" + _QUOTED
    + rb"))?)*")
_LEADING_SEPARATORS = re.compile(rb"[/\\]+")


class HttpViolation(Exception):
    """A request the gateway refuses at the edge; `status` is what the client is answered."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


def _bad(detail: str) -> HttpViolation:
    return HttpViolation(400, detail)


@dataclass(slots=True)
class RequestHead:
    """A request head that passed every check, ready to be handed on.

    `fields` are (lower-case name, value) with surrounding whitespace removed, decoded as UTF-8
    with surrogateescape so that encoding them back gives exactly the bytes received.
    """

    method: str
    target: bytes  # origin-form, or authority-form for CONNECT
    version: str  # "1.1" or "1.0"
    fields: list[tuple[str, str]]
    content_length: int | None
    chunked: bool
    keep_alive: bool
    upgrade: str  # the Upgrade field, lower-case ("" when absent)
    expect: str | None  # the Expect field, lower-case


def _target(method: str, raw: str) -> tuple[str, str | None]:
    """(target to route, authority that replaces Host or None) for a request-target."""
    if "#" in raw:
        raise _bad("A request target cannot carry a fragment.")
    if raw.startswith("/"):
        return raw, None
    absolute = _ABSOLUTE.fullmatch(raw)
    if absolute is not None:
        authority = absolute.group(2)
        if not authority or "@" in authority or not _HOST.fullmatch(authority):
            raise _bad("The absolute-form target has no valid host (userinfo is not accepted).")
        path = absolute.group(3) or "/"
        return path + (absolute.group(4) or ""), authority
    if method == "CONNECT" and _HOST.fullmatch(raw):
        return raw, None  # authority-form: routed, and refused, by the application
    raise _bad("The request target must be a path (origin-form) or an http(s) URL.")


def _content_length(values: list[str]) -> int:
    if len(values) != 1:
        raise _bad("Content-Length must appear once.")
    if not _DIGITS.fullmatch(values[0]):
        raise _bad("Content-Length must be ASCII digits.")
    return int(values[0])


def _is_chunked(values: list[str], version: str) -> bool:
    """True for a valid Transfer-Encoding that ends with chunked (the only coding understood)."""
    if version == "1.0":
        raise _bad("HTTP/1.0 requests cannot use Transfer-Encoding.")
    codings = [c.strip(" \t").lower() for v in values for c in v.split(",")]
    codings = [c for c in codings if c]
    if not codings or not all(_TOKEN_STR.fullmatch(c) for c in codings):
        raise _bad("Transfer-Encoding must be a list of transfer codings.")
    if codings[-1] != "chunked" or codings.count("chunked") != 1:
        raise _bad("Transfer-Encoding must end with chunked, applied once.")
    if len(codings) > 1:
        raise HttpViolation(501, f"Transfer coding {codings[0]!r} is not supported; "
                                 "only chunked is.")
    return True


def _connection_tokens(values: list[str]) -> list[str]:
    joined = values[0] if len(values) == 1 else ",".join(values)
    return [t.strip(" \t") for t in joined.lower().split(",")]


class _NoCallbacks:
    """httptools looks these up once per parser; None means "not interested", so llhttp
    validates the whole head without calling back into Python."""

    on_message_begin = on_url = on_header = on_headers_complete = None
    on_body = on_message_complete = on_chunk_header = on_chunk_complete = None


_NO_CALLBACKS = _NoCallbacks()


def parse_head(head: bytes) -> RequestHead:
    """Validate a request head: the bytes before the CRLF CRLF that ends it.

    The syntax is checked by llhttp (httptools), which is strict by default: token names, no
    whitespace before the colon, no obs-fold, no CR/LF/NUL/controls in values, CRLF line ends,
    one digits-only Content-Length, chunked last. Once llhttp accepted the head, splitting it on
    CRLF and each line at its first colon gives exactly llhttp's fields (and is cheaper than a
    callback per field). The rest (request line, targets, Host, Transfer-Encoding codings,
    HTTP/1.0 framing) is checked here.

    Raises:
        HttpViolation: 400 for any malformed or ambiguous head (an HTTP version other than 1.0
            and 1.1 included), 501 for an unknown method or transfer coding.
    """
    lines = head.decode("utf-8", "surrogateescape").split("\r\n")
    match = _REQUEST_LINE.fullmatch(lines[0])
    if match is None:
        raise _bad("The request line must be: method, target, HTTP version, single spaces.")
    if match.group(3) != "1" or match.group(4) not in ("0", "1"):
        raise _bad("Only HTTP/1.1 and HTTP/1.0 are served here.")
    try:
        httptools.HttpRequestParser(_NO_CALLBACKS).feed_data(head + b"\r\n\r\n")
    except httptools.HttpParserUpgrade:
        pass  # Upgrade or CONNECT: the head itself was valid
    except httptools.HttpParserInvalidMethodError:
        raise HttpViolation(501, f"Method {match.group(1)!r} is not implemented.") from None
    except httptools.HttpParserError as exc:
        raise _bad(f"Malformed request head: {exc}.") from None
    version = "1.1" if match.group(4) == "1" else "1.0"
    method = match.group(1)
    target, authority = _target(method, match.group(2))
    fields: list[tuple[str, str]] = []
    special: dict[str, list[str]] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        name = name.lower()
        value = value.strip(" \t")
        fields.append((name, value))
        if name in _SPECIAL:
            special.setdefault(name, []).append(value)
    if special:
        fields = _rewrite_fields(fields, special, authority)
    return _interpret(method, target, version, authority, fields, special)


def _interpret(method: str, target: str, version: str, authority: str | None,
               fields: list[tuple[str, str]], special: dict[str, list[str]]) -> RequestHead:
    hosts = special.get("host", [])
    if authority is None and (len(hosts) > 1 or (version == "1.1" and not hosts)):
        raise _bad("An HTTP/1.1 request needs exactly one Host field.")
    if hosts and not _HOST.fullmatch(hosts[0]):
        raise _bad("The Host field is not a valid host[:port].")
    content_length = None
    chunked = False
    if "transfer-encoding" in special:
        if "content-length" in special:
            raise _bad("Content-Length and Transfer-Encoding cannot both be present.")
        chunked = _is_chunked(special["transfer-encoding"], version)
    elif "content-length" in special:
        content_length = _content_length(special["content-length"])
    if "connection" in special:
        tokens = _connection_tokens(special["connection"])
        keep_alive = "close" not in tokens and (version == "1.1" or "keep-alive" in tokens)
    else:
        keep_alive = version == "1.1"
    upgrade = special["upgrade"][0].lower() if "upgrade" in special else ""
    expect = special["expect"][0].lower() if "expect" in special else None
    return RequestHead(method=method, target=target.encode("ascii"), version=version,
                       fields=fields, content_length=content_length, chunked=chunked,
                       keep_alive=keep_alive, upgrade=upgrade, expect=expect)


def _rewrite_fields(fields: list[tuple[str, str]], special: dict[str, list[str]],
                    authority: str | None) -> list[tuple[str, str]]:
    """Join repeated Cookie fields into the first; put an absolute-form authority in Host."""
    cookies = special.get("cookie", ())
    if len(cookies) < 2 and authority is None:
        return fields
    out: list[tuple[str, str]] = []
    joined = False
    for name, value in fields:
        if name == "cookie" and len(cookies) > 1:
            if not joined:
                out.append(("cookie", "; ".join(v for v in cookies if v)))
                joined = True
        elif name != "host" or authority is None:
            out.append((name, value))
    if authority is not None:
        out.append(("host", authority))
    return out


_SPECIAL = frozenset({"host", "content-length", "transfer-encoding", "connection", "upgrade",
                      "expect", "cookie"})


def chunk_size(line: bytes) -> int:
    """The size of a chunk from its size line (without the CRLF); extensions are checked, then
    ignored."""
    match = _CHUNK_LINE.fullmatch(line)
    if match is None:
        raise _bad("A chunk size must be hexadecimal digits, optionally followed by well-formed "
                   "extensions.")
    return int(match.group(1), 16)


def same_origin_location(target: bytes) -> str:
    """A redirect Location for `target` that can only lead to a path on this origin.

    Browsers read `//host`, `/\\host` and `\\\\host` as another authority, so every leading run of
    slashes and backslashes becomes one slash.
    """
    path = _LEADING_SEPARATORS.sub(b"/", target, count=1) if target[:1] in (b"/", b"\\") \
        else b"/" + target
    return path.decode("latin-1")
