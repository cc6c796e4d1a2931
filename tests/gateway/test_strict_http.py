"""Unit tests of the edge's pure checks (gateway.edge.rules) and their settings."""

from __future__ import annotations

import pytest

from common.errors import ConfigError
from gateway.config import GatewayConfig
from gateway.edge.rules import HttpViolation, chunk_size, parse_head, same_origin_location

BASE = b"POST /p?q=1 HTTP/1.1\r\nHost: ide.example:8091"


def fields(*lines: bytes) -> bytes:
    return BASE + b"".join(b"\r\n" + line for line in lines)


def test_a_valid_head_keeps_every_field_byte_for_byte() -> None:
    head = parse_head(fields(b"X-Val: a \xc3\xa9 \xff\t", b"Content-Length: 12",
                             b"Connection: keep-alive"))
    assert head.method == "POST" and head.target == b"/p?q=1" and head.version == "1.1"
    assert head.content_length == 12 and not head.chunked and head.keep_alive
    value = dict(head.fields)["x-val"]
    assert value.encode("utf-8", "surrogateescape") == b"a \xc3\xa9 \xff"


@pytest.mark.parametrize(("lines", "status"), [
    ((b"Transfer-Encoding: chunked",), None),
    ((b"Transfer-Encoding: CHUNKED",), None),
    ((b"Transfer-Encoding: gzip, chunked",), 501),
    ((b"Transfer-Encoding: chunked, chunked",), 400),
    ((b"Transfer-Encoding: gzip",), 400),
    ((b"Transfer-Encoding:",), 400),
    ((b"Transfer-Encoding: chunked", b"Content-Length: 3"), 400),
    ((b"Content-Length: +3",), 400),
    ((b"Content-Length: 3 ",), None),  # trailing whitespace is OWS, not part of the value
    ((b"Content-Length: 99999999999999999999",), 400),
    ((b"Host: second",), 400),
    ((b"Expect: 100-continue", b"Content-Length: 1"), None),
])
def test_framing_fields(lines: tuple[bytes, ...], status: int | None) -> None:
    if status is None:
        parse_head(fields(*lines))
    else:
        with pytest.raises(HttpViolation) as info:
            parse_head(fields(*lines))
        assert info.value.status == status


@pytest.mark.parametrize(("target", "routed", "host"), [
    (b"http://x", b"/", "x"),
    (b"HTTPS://x:8443/a?b", b"/a?b", "x:8443"),
    (b"http://[::1]:80/p", b"/p", "[::1]:80"),
])
def test_absolute_form_becomes_a_path_and_its_host_the_host(target: bytes, routed: bytes,
                                                           host: str) -> None:
    head = parse_head(b"GET " + target + b" HTTP/1.1\r\nHost: other")
    assert head.target == routed
    assert [v for n, v in head.fields if n == "host"] == [host]


@pytest.mark.parametrize("target", [b"http://u@x/", b"http:///p", b"x:80", b"*", b"/a#frag",
                                    b"ftp://x/"])
def test_other_targets_are_400(target: bytes) -> None:
    with pytest.raises(HttpViolation) as info:
        parse_head(b"GET " + target + b" HTTP/1.1\r\nHost: x")
    assert info.value.status == 400


def test_http_1_0_framing() -> None:
    assert not parse_head(b"GET / HTTP/1.0").keep_alive
    assert parse_head(b"GET / HTTP/1.0\r\nConnection: keep-alive").keep_alive
    assert not parse_head(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: Close").keep_alive


def test_repeated_cookie_fields_are_joined_in_place() -> None:
    head = parse_head(fields(b"Cookie: a=1", b"X: y", b"Cookie: b=2; c=3", b"Cookie:"))
    assert head.fields == [("host", "ide.example:8091"), ("cookie", "a=1; b=2; c=3"),
                           ("x", "y")]


@pytest.mark.parametrize(("line", "size"), [
    (b"0", 0), (b"a", 10), (b"FF", 255), (b"5;name", 5), (b"5 ; n = v", 5),
    (b'5;n="q\\"uoted; x"', 5), (b"5;a=1;b", 5),
])
def test_chunk_size_lines(line: bytes, size: int) -> None:
    assert chunk_size(line) == size


@pytest.mark.parametrize("line", [b"", b"0x5", b" 5", b"5 ", b"-5", b"+5", b"5_0", b"5;",
                                  b"5;a=", b"5;a\nb", b"5;a\rb", b"5;\"x\"", b"1" * 17,
                                  "\u0665".encode()])
def test_bad_chunk_size_lines(line: bytes) -> None:
    with pytest.raises(HttpViolation):
        chunk_size(line)


@pytest.mark.parametrize(("target", "location"), [
    (b"/ide/?x=1", "/ide/?x=1"),
    (b"//evil.example/", "/evil.example/"),
    (b"/\\evil.example/", "/evil.example/"),
    (b"///evil.example/", "/evil.example/"),
    (b"\\/\\/evil.example", "/evil.example"),
    (b"/a//b", "/a//b"),
])
def test_redirects_stay_on_this_origin(target: bytes, location: str) -> None:
    assert same_origin_location(target) == location


def test_edge_settings_defaults_and_bad_values() -> None:
    cfg = GatewayConfig.from_env({"GATEWAY_TOKEN": "t"})
    assert (cfg.header_timeout_s, cfg.max_header_connections) == (20.0, 256)
    for key, value in (("GATEWAY_HEADER_TIMEOUT", "0"), ("GATEWAY_HEADER_TIMEOUT", "soon"),
                       ("GATEWAY_MAX_HEADER_CONNECTIONS", "0")):
        with pytest.raises(ConfigError, match=key):
            GatewayConfig.from_env({"GATEWAY_TOKEN": "t", key: value})
