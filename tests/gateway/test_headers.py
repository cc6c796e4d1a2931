"""Header rewriting rules, checked on the serialized bytes."""

from __future__ import annotations

from gateway.http.headers import request_head, response_headers


def head(headers: list[tuple[str, str]], **kw: object) -> bytes:
    args: dict[str, object] = {"method": "GET", "target": b"/p?q=%2F", "headers": headers,
                               "client_ip": "127.0.0.9", "scheme": "http", "body_length": None,
                               "chunked": False}
    args.update(kw)
    return request_head(**args)  # type: ignore[arg-type]


def test_request_line_keeps_target_bytes() -> None:
    assert head([]).startswith(b"GET /p?q=%2F HTTP/1.1\r\n")


def test_connection_listed_fields_and_credentials_are_dropped() -> None:
    out = head([("connection", "close, x-hop"), ("x-hop", "1"), ("authorization", "token t"),
                ("cookie", "a=1; gw=2"), ("x-keep", "yes")],
               drop=frozenset({"authorization"}), cookie="a=1")
    assert b"x-hop" not in out and b"token t" not in out
    assert b"cookie: a=1\r\n" in out and b"gw=2" not in out
    assert b"x-keep: yes\r\n" in out
    assert b"connection: keep-alive\r\n" in out


def test_websocket_keeps_its_handshake_fields() -> None:
    out = head([("upgrade", "websocket"), ("connection", "Upgrade"),
                ("sec-websocket-key", "k=="), ("sec-websocket-protocol", "a, b")], websocket=True)
    assert b"upgrade: websocket\r\n" in out and b"connection: Upgrade\r\n" in out
    assert b"sec-websocket-key: k==\r\n" in out and b"sec-websocket-protocol: a, b\r\n" in out


def test_body_framing_is_the_gateways() -> None:
    out = head([("transfer-encoding", "chunked"), ("content-length", "5")], method="POST",
               chunked=True)
    assert out.count(b"transfer-encoding") == 1 and b"content-length" not in out


def test_non_ascii_header_bytes_survive() -> None:
    value = "caf\udcc3\udca9"  # what Sanic's surrogateescape decoding gives for b"caf\xc3\xa9"
    assert b"x-name: caf\xc3\xa9\r\n" in head([("x-name", value)])


def test_response_hop_by_hop_removed_set_cookie_kept() -> None:
    out, length = response_headers([(b"Connection", b"x-a"), (b"X-A", b"1"),
                                    (b"Keep-Alive", b"5"), (b"Set-Cookie", b"a=1"),
                                    (b"Set-Cookie", b"b=2"), (b"Content-Length", b"10"),
                                    (b"Via", b"1.0 other")])
    names = [n for n, _ in out]
    assert names.count(b"Set-Cookie") == 2 and length == b"10"
    assert b"X-A" not in names and b"Keep-Alive" not in names
    assert (b"Via", b"1.0 other, 1.1 waiide-hub/0.1.0") in out
