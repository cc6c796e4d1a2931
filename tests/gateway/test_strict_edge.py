"""The gateway's strict front door (issue 13), through a real gateway to a recording upstream.

Every case sends raw bytes on a socket and checks two things: the status the client gets (and
that the connection is closed after a violation), and exactly what reached the upstream — for a
refused head nothing at all, for a refused body never the offending bytes and never a complete
request.
"""

from __future__ import annotations

import hashlib
import hmac
import select
import socket
import struct
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Server, gateway_process
from tests.gateway.recorder import Answer, Recorded, RecordingUpstream, exchange, read_answer

TOKEN = "edge-test-token"
SECRET = "edge-internal-secret"
AUTH = f"Authorization: token {TOKEN}\r\n".encode()
SMUGGLED = b"GET /smuggled HTTP/1.1\r\nHost: x\r\n" + AUTH + b"\r\n"


@pytest.fixture(scope="module")
def recorder() -> Iterator[RecordingUpstream]:
    with RecordingUpstream() as upstream:
        yield upstream


@pytest.fixture(scope="module")
def edge(tmp_path_factory: pytest.TempPathFactory, recorder: RecordingUpstream) -> Iterator[Server]:
    """One worker (the header-phase accounting is per worker), token auth, tight limits."""
    env = {"GATEWAY_AUTH": "token", "GATEWAY_TOKEN": TOKEN, "GATEWAY_HEADER_TIMEOUT": "1",
           "GATEWAY_MAX_BODY_BYTES": "100000", "GATEWAY_INTERNAL_SECRET": SECRET}
    with gateway_process(tmp_path_factory.mktemp("edge"), recorder.port, env,
                         workers=1) as server:
        yield server


def through(edge: Server, recorder: RecordingUpstream, payload: bytes | list[bytes],
            **kw: float) -> tuple[Answer, list[Recorded], bytes]:
    """Send `payload`; return the answer, the requests and the bytes the upstream got meanwhile."""
    mark = recorder.mark()
    before = len(recorder.all_bytes())
    log_start = len(edge.log_text())
    answer = exchange(edge.port, payload, **kw)
    time.sleep(0.2)  # anything the gateway still forwards arrives within this
    requests, errors = recorder.since(mark)
    assert errors == [], f"the upstream got bytes it could not parse: {errors}"
    log = edge.log_text()[log_start:]
    assert "Traceback" not in log and "Fatal error" not in log, log
    return answer, requests, recorder.all_bytes()[before:]


def refused(answer: Answer, status: int = 400) -> None:
    assert answer.status == status, answer.raw[:300]
    assert answer.closed, "the connection must be closed after a refused request"
    body = answer.raw.split(b"\r\n\r\n", 1)[1]
    assert b'"detail"' in body and b"Traceback" not in body, body


def head(*lines: bytes, method: bytes = b"POST", target: bytes = b"/up") -> bytes:
    return method + b" " + target + b" HTTP/1.1\r\nHost: x\r\n" + AUTH + b"".join(
        line + b"\r\n" for line in lines) + b"\r\n"


CHUNKED = b"Transfer-Encoding: chunked"

# Issue 13, list 1: framings Sanic accepted or answered 502. (name, bytes, status)
FRAMING = [
    ("space before colon (CL.TE smuggling)",
     head(b"Content-Length: 4", b"Transfer-Encoding : chunked") + b"0\r\n\r\n" + SMUGGLED, 400),
    ("vertical tab before chunked", head(b"Transfer-Encoding:\x0bchunked") + b"0\r\n\r\n", 400),
    ("non-breaking space before chunked",
     head(b"Transfer-Encoding: \xa0chunked") + b"0\r\n\r\n", 400),
    ("vertical tab in Content-Length", head(b"Content-Length: \x0b4") + b"abcd", 400),
    ("fullwidth digit in Content-Length",
     head("Content-Length: \uff14".encode()) + b"abcd", 400),
    ("Content-Length list", head(b"Content-Length: 4, 4") + b"abcd", 400),
    ("two Content-Length fields", head(b"Content-Length: 4", b"Content-Length: 4") + b"abcd", 400),
    ("Content-Length with Transfer-Encoding",
     head(b"Content-Length: 4", CHUNKED) + b"0\r\n\r\n" + SMUGGLED, 400),
    ("chunked not last", head(b"Transfer-Encoding: chunked, gzip") + b"0\r\n\r\n", 400),
    ("unknown coding before chunked", head(b"Transfer-Encoding: gzip, chunked") + b"0\r\n\r\n",
     501),
    ("Transfer-Encoding in HTTP/1.0",
     b"POST /up HTTP/1.0\r\nHost: x\r\n" + AUTH + CHUNKED + b"\r\n\r\n0\r\n\r\n", 400),
]

# Bodies with a valid head: the head may reach the upstream, the offending bytes never.
BAD_CHUNKS = [
    ("chunk size 0x5", b"0x5\r\nhello\r\n0\r\n\r\n"),
    ("chunk size with a leading space", b" 5\r\nhello\r\n0\r\n\r\n"),
    ("chunk size in Arabic-Indic digits", "\u0665\r\nhello\r\n0\r\n\r\n".encode()),
    ("negative chunk size", b"-5\r\nhello\r\n0\r\n\r\n"),
    ("LF-only size line", b"5\nhello\r\n0\r\n\r\n"),
    ("chunk data not followed by CRLF", b"5\r\nhelloXX0\r\n\r\n" + SMUGGLED),
    ("bare LF in a chunk extension", b"5;a\nb\r\nhello\r\n0\r\n\r\n"),
    # Here the first chunk is valid and may go on; the trailer may not.
    ("trailer fields", b"5\r\nhello\r\n0\r\nX-Trailer: 1\r\n\r\n"),
]

# Issue 13, list 2: field lines that were forwarded byte for byte.
FIELD_LINES = [
    ("LF inside a value", b"x-a: a\nX-Injected-LF: 1"),
    ("bare CR inside a value", b"x-a: a\rX-Injected-CR: 1"),
    ("NUL in a value", b"x-a: a\x00b"),
    ("obs-fold", b"x-a: a\r\n folded"),
    ("whitespace before the colon", b"x-a : a"),
    ("space in a name", b"x a: a"),
    ("parentheses and @ in a name", b"x(a)@: a"),
    ("empty name", b": a"),
    ("LF after Host", b"x-b: 1\r\nhost2: a\nX-Injected-Host: 1"),
    ("DEL in a value", b"x-a: a\x7fb"),
]


@pytest.mark.parametrize(("name", "payload", "status"), FRAMING, ids=[c[0] for c in FRAMING])
def test_non_conforming_framing_is_refused_and_nothing_reaches_waiide(
        edge: Server, recorder: RecordingUpstream, name: str, payload: bytes,
        status: int) -> None:
    answer, requests, seen = through(edge, recorder, payload)
    refused(answer, status)
    assert requests == [] and seen == b"", seen


@pytest.mark.parametrize(("name", "body"), BAD_CHUNKS, ids=[c[0] for c in BAD_CHUNKS])
def test_bad_chunked_framing_is_400_and_never_forwarded(
        edge: Server, recorder: RecordingUpstream, name: str, body: bytes) -> None:
    answer, requests, seen = through(edge, recorder, head(CHUNKED) + body)
    refused(answer, 400)
    assert b"smuggled" not in seen and b"Trailer" not in seen, seen
    if name != "trailer fields":
        assert b"hello" not in seen, seen
    assert not any(r.complete for r in requests), "WAIIDE must never get the whole request"


@pytest.mark.parametrize(("name", "line"), FIELD_LINES, ids=[c[0] for c in FIELD_LINES])
def test_malformed_field_lines_are_400_and_never_forwarded(
        edge: Server, recorder: RecordingUpstream, name: str, line: bytes) -> None:
    answer, requests, seen = through(edge, recorder, head(line, method=b"GET", target=b"/f"))
    refused(answer, 400)
    assert requests == [] and seen == b"", seen


def test_valid_chunked_upload_still_passes(edge: Server, recorder: RecordingUpstream) -> None:
    body = b"5;name=\"q\\\"v\"\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
    answer, requests, _ = through(edge, recorder, head(CHUNKED) + body)
    assert answer.status == 200, answer.raw[:300]
    assert [r.body for r in requests] == [b"hello world"]


def test_absolute_form_without_a_path_is_proxied_as_slash(
        edge: Server, recorder: RecordingUpstream) -> None:
    answer, requests, _ = through(edge, recorder, head(method=b"GET", target=b"http://x"))
    assert answer.status == 200, answer.raw[:300]
    assert [(r.target, r.values(b"host")) for r in requests] == [(b"/", [b"x"])]


@pytest.mark.parametrize("payload", [
    b"GET x:80 HTTP/1.1\r\nHost: x\r\n" + AUTH + b"\r\n",
    b"CONNECT 127.0.0.1:22 HTTP/1.1\r\nHost: 127.0.0.1:22\r\n" + AUTH + b"\r\n",
    b"OPTIONS * HTTP/1.1\r\nHost: x\r\n" + AUTH + b"\r\n",
    b"GET http://user@x/ HTTP/1.1\r\nHost: x\r\n" + AUTH + b"\r\n",
    b"GET / HTTP/1.1\r\n" + AUTH + b"\r\n",  # no Host
    b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n" + AUTH + b"\r\n",
])
def test_other_target_forms_get_4xx_without_a_traceback(
        edge: Server, recorder: RecordingUpstream, payload: bytes) -> None:
    answer, requests, seen = through(edge, recorder, payload)
    assert answer.status is not None and 400 <= answer.status < 500, answer.raw[:300]
    assert requests == [] and seen == b""


@pytest.mark.parametrize("target", [b"//evil.example/", b"/\\evil.example/",
                                    b"///evil.example/", b"/\\/\\evil.example/x"])
def test_token_redirect_stays_on_this_origin(edge: Server, recorder: RecordingUpstream,
                                             target: bytes) -> None:
    payload = b"GET " + target + b"?token=" + TOKEN.encode() + b" HTTP/1.1\r\nHost: x\r\n\r\n"
    answer, _, seen = through(edge, recorder, payload)
    assert answer.status == 302, answer.raw[:300]
    location = answer.header("location") or ""
    assert location.startswith("/evil.example/") and "\\" not in location, location
    assert seen == b""


def _cookie_value() -> str:
    return hmac.new(TOKEN.encode(), b"waiide-hub cookie v1", hashlib.sha256).hexdigest()


def test_gateway_cookie_in_a_second_cookie_field_never_reaches_waiide(
        edge: Server, recorder: RecordingUpstream) -> None:
    cookie = f"waiide-hub-auth-{edge.port}={_cookie_value()}".encode()
    payload = (b"GET /c HTTP/1.1\r\nHost: x\r\nCookie: a=1\r\nX-Other: y\r\nCookie: " + cookie
               + b"; b=2\r\n\r\n")
    answer, requests, seen = through(edge, recorder, payload)
    assert answer.status == 200, answer.raw[:300]  # the cookie in the second field counts
    assert b"waiide-hub-auth" not in seen, seen
    assert [r.values(b"cookie") for r in requests] == [[b"a=1; b=2"]]


def test_gateway_cookie_is_removed_from_a_websocket_upgrade_with_token(
        edge: Server, recorder: RecordingUpstream) -> None:
    cookie = f"waiide-hub-auth-{edge.port}=forged".encode()
    payload = (b"GET /ws?token=" + TOKEN.encode() + b" HTTP/1.1\r\nHost: x\r\n"
               b"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
               b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
               b"Cookie: a=1\r\nCookie: " + cookie + b"\r\n\r\n")
    answer, requests, seen = through(edge, recorder, payload)
    assert answer.status == 403, answer.raw[:300]  # the recorder refuses every upgrade
    assert b"waiide-hub-auth" not in seen and TOKEN.encode() not in seen, seen
    assert [(r.target, r.values(b"cookie")) for r in requests] == [(b"/ws", [b"a=1"])]


def test_hub_cookies_are_removed_from_every_cookie_field(
        edge: Server, recorder: RecordingUpstream) -> None:
    payload = (b"GET /j HTTP/1.1\r\nHost: x\r\nx-waiide-hub-internal: " + SECRET.encode()
               + b"\r\nCookie: a=1\r\nCookie: jupyterhub-session-id=s; _xsrf=t\r\n"
               b"Cookie: jupyterhub-user-u=v; b=2\r\n\r\n")
    answer, requests, seen = through(edge, recorder, payload)
    assert answer.status == 200, answer.raw[:300]
    assert b"jupyterhub" not in seen and b"_xsrf" not in seen, seen
    assert [r.values(b"cookie") for r in requests] == [[b"a=1; b=2"]]


def test_chunked_upload_over_the_body_limit_gets_413(
        edge: Server, recorder: RecordingUpstream) -> None:
    chunks = [b"%x\r\n" % 20_000 + b"u" * 20_000 + b"\r\n" for _ in range(8)] + [b"0\r\n\r\n"]
    answer, requests, _ = through(edge, recorder, [head(CHUNKED), *chunks])
    refused(answer, 413)
    assert b"GATEWAY_MAX_BODY_BYTES" in answer.raw
    assert not any(r.complete for r in requests)


def _drip(port: int, payload: bytes, gap_s: float, limit_s: float) -> tuple[Answer, float]:
    """Send one byte every `gap_s` until the gateway answers; (answer, seconds it took)."""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=limit_s) as sock:
        for byte in payload:
            try:
                sock.sendall(bytes([byte]))
            except OSError:
                break
            if select.select([sock], [], [], gap_s)[0]:
                break
            if time.monotonic() - started > limit_s:
                break
        answer = read_answer(sock, started + limit_s)
    return answer, time.monotonic() - started


def test_a_dripping_client_gets_408_at_the_header_timeout(edge: Server) -> None:
    payload = b"GET /drip HTTP/1.1\r\nHost: x\r\n" + AUTH + b"X-Long: " + b"d" * 200 + b"\r\n\r\n"
    log_start = len(edge.log_text())
    answer, took = _drip(edge.port, payload, gap_s=0.1, limit_s=10)
    refused(answer, 408)
    assert b"GATEWAY_HEADER_TIMEOUT" in answer.raw
    # GATEWAY_HEADER_TIMEOUT=1: every byte reset Sanic's own timer, this one is from the first byte.
    assert took < 5, took
    assert "Traceback" not in edge.log_text()[log_start:]


def test_keep_alive_idle_is_not_the_header_phase(edge: Server) -> None:
    """The clock starts when the next request's bytes are there, not while the connection idles."""
    request = b"GET /ka HTTP/1.1\r\nHost: x\r\n" + AUTH + b"\r\n"
    with socket.create_connection(("127.0.0.1", edge.port), timeout=10) as sock:
        sock.sendall(request)
        assert read_answer(sock, time.monotonic() + 10).status == 200
        time.sleep(1.5)  # longer than GATEWAY_HEADER_TIMEOUT
        sock.sendall(request)
        assert read_answer(sock, time.monotonic() + 10).status == 200


def test_header_phase_cap_lets_the_oldest_connection_go(
        tmp_path: Path, recorder: RecordingUpstream) -> None:
    env = {"GATEWAY_AUTH": "none", "GATEWAY_HEADER_TIMEOUT": "30",
           "GATEWAY_MAX_HEADER_CONNECTIONS": "4"}
    with gateway_process(tmp_path, recorder.port, env, workers=1) as gw:
        socks = [socket.create_connection(("127.0.0.1", gw.port), timeout=10) for _ in range(4)]
        try:
            for sock in socks:
                sock.sendall(b"GET /slow HTTP/1.1\r\n")
                time.sleep(0.1)
            newest = socket.create_connection(("127.0.0.1", gw.port), timeout=10)
            socks.append(newest)
            newest.sendall(b"GET /fast HTTP/1.1\r\nHost: x\r\n\r\n")
            assert read_answer(newest, time.monotonic() + 10).status == 200
            oldest = read_answer(socks[0], time.monotonic() + 5)
            assert oldest.status == 408 and oldest.closed, oldest.raw[:300]
            for sock in socks[1:4]:  # the others are still waiting for their heads
                assert select.select([sock], [], [], 0.2)[0] == []
        finally:
            for sock in socks:
                sock.close()
        assert "Traceback" not in gw.log_text()


def test_aborted_downloads_are_quiet(edge: Server) -> None:
    """Clients that go away mid-body (RST) leave no traceback, only debug lines."""
    log_start = len(edge.log_text())
    request = b"GET /big HTTP/1.1\r\nHost: x\r\n" + AUTH + b"\r\n"
    for _ in range(40):
        sock = socket.create_connection(("127.0.0.1", edge.port), timeout=10)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.sendall(request)
        got = 0
        while got < 300_000:
            data = sock.recv(65536)
            if not data:
                break
            got += len(data)
        sock.close()  # SO_LINGER 0: a reset, as a browser tab closing mid-download
    time.sleep(1.0)
    log = edge.log_text()[log_start:]
    assert "Traceback" not in log and "Fatal error" not in log and "RuntimeError" not in log, log
    # The gateway still serves afterwards.
    assert exchange(edge.port, b"GET /after HTTP/1.1\r\nHost: x\r\n" + AUTH + b"\r\n").status \
        == 200
