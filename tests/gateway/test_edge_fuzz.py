"""Bounded fuzzing of the gateway's edge: mutated request heads and chunked bodies (issue 13).

Each example mutates one of a few valid (or deliberately ambiguous) requests, sends it on a fresh
connection to a real gateway in front of a recording upstream, and checks:

- the answer is a 2xx from the upstream, a 4xx, a 501 (an unknown method or transfer coding, the
  one 5xx RFC 9110 prescribes for the client's input), or no answer and a closed connection;
  never another 5xx;
- the gateway's log never shows a traceback;
- every byte the upstream got parses with llhttp's strict parser, and every request it got is one
  that an independent strict reading of the client's bytes (llhttp) also sees — so nothing
  smuggled in a body ever arrives as a request of its own.

The examples are derandomized and capped, so the test takes a bounded time (about a minute).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httptools
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import Server, gateway_process
from tests.gateway.recorder import RecordingUpstream, exchange

BASES = [
    b"GET /fz{n}/a?b=1 HTTP/1.1\r\nHost: x\r\nAccept: */*\r\nCookie: a=1\r\n\r\n",
    b"POST /fz{n}/p HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
    (b"POST /fz{n}/c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
     b"5;e=1\r\nhello\r\n3\r\nabc\r\n0\r\n\r\n"),
    (b"POST /fz{n}/s HTTP/1.1\r\nHost: x\r\nContent-Length: 40\r\n\r\n"
     b"GET /smuggled{n} HTTP/1.1\r\nHost: x\r\n\r\n"),
    (b"POST /fz{n}/t HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
     b"0\r\n\r\nGET /fz{n}/next HTTP/1.1\r\nHost: x\r\n\r\n"),
]
SNIPPETS = [b"\r", b"\n", b"\r\n", b"\x00", b" ", b"\t", b"\x0b", b"\xa0", b":", b",", b";",
            b"0", b"5", b"a", b"-", b'"', b"chunked", b"\r\n\r\n", b"Content-Length: 3\r\n",
            b"Transfer-Encoding: chunked\r\n", b"Transfer-Encoding: gzip, chunked\r\n",
            b"Host: y\r\n", b"GET /smuggled{n} HTTP/1.1\r\nHost: x\r\n\r\n", "\uff14".encode()]

mutation = st.one_of(
    st.tuples(st.just("insert"), st.integers(0, 400), st.sampled_from(SNIPPETS)),
    st.tuples(st.just("delete"), st.integers(0, 400), st.integers(1, 12)),
    st.tuples(st.just("replace"), st.integers(0, 400), st.sampled_from(SNIPPETS)),
)


def mutate(base: bytes, ops: list[tuple[str, int, object]]) -> bytes:
    data = bytearray(base)
    for op, at, arg in ops:
        at = at % (len(data) + 1)
        if isinstance(arg, int):  # delete `arg` bytes
            del data[at:at + arg]
        elif isinstance(arg, bytes):
            data[at:at + (op == "replace")] = arg
    return bytes(data)


class _Targets:
    def __init__(self) -> None:
        self.targets: list[bytes] = []
        self.url = b""

    def on_message_begin(self) -> None:
        self.url = b""

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_headers_complete(self) -> None:
        self.targets.append(_origin(self.url))


def _origin(target: bytes) -> bytes:
    if target.startswith(b"/"):
        return target
    try:
        url = httptools.parse_url(target)
    except httptools.HttpParserInvalidURLError:
        return target
    path = url.path or b"/"
    return path + b"?" + url.query if url.query else path


def strict_targets(data: bytes) -> list[bytes]:
    """The request targets an independent strict parser (llhttp) reads in `data`."""
    seen = _Targets()
    try:
        httptools.HttpRequestParser(seen).feed_data(data)
    except httptools.HttpParserError:
        pass  # what came before the error still counts
    return seen.targets


@pytest.fixture(scope="module")
def fuzz_setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server,
                                                                           RecordingUpstream]]:
    env = {"GATEWAY_AUTH": "none", "GATEWAY_HEADER_TIMEOUT": "1",
           "GATEWAY_MAX_BODY_BYTES": "100000"}
    tmp: Path = tmp_path_factory.mktemp("fuzz")
    with RecordingUpstream() as upstream, \
            gateway_process(tmp, upstream.port, env, workers=1) as gateway:
        yield gateway, upstream


_counter = iter(range(1_000_000))
_allowed: set[bytes] = set()


@settings(max_examples=150, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(base=st.sampled_from(BASES), ops=st.lists(mutation, min_size=1, max_size=4))
def test_mutated_requests_never_get_a_5xx_or_reach_waiide_unvalidated(
        fuzz_setup: tuple[Server, RecordingUpstream], base: bytes,
        ops: list[tuple[str, int, object]]) -> None:
    gateway, upstream = fuzz_setup
    n = str(next(_counter)).encode()
    payload = mutate(base.replace(b"{n}", n),
                     [(op, at, arg.replace(b"{n}", n) if isinstance(arg, bytes) else arg)
                      for op, at, arg in ops])
    _allowed.update(strict_targets(payload))
    mark = upstream.mark()
    log_start = len(gateway.log_text())
    answer = exchange(gateway.port, payload, timeout_s=1.5)
    time.sleep(0.05)
    requests, errors = upstream.since(mark)
    assert errors == [], f"unparsable bytes reached the upstream for {payload!r}: {errors}"
    for request in requests:
        assert request.target in _allowed, (
            f"{request.target!r} reached the upstream but is no request of {payload!r}")
    status = answer.status
    assert status is None or status < 500 or status == 501, (payload, answer.raw[:300])
    if status is None:
        assert answer.closed or not answer.raw, (payload, answer.raw[:300])
    log = gateway.log_text()[log_start:]
    assert "Traceback" not in log and "Fatal error" not in log, (payload, log)
