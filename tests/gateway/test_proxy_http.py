"""HTTP through a real multi-worker gateway to a real fake WAIIDE: bytes, headers, errors."""

from __future__ import annotations

import gzip
import http.client
import json
import socket
import time
from typing import Any

import pytest

from tests.conftest import Server, gateway_process
from tests.procs import free_port


def request(server: Server, method: str, target: str, headers: dict[str, str] | None = None,
            body: bytes | None = None, timeout: float = 30) -> tuple[http.client.HTTPResponse, bytes]:
    """One request with http.client, which sends the target exactly as given."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=timeout)
    try:
        conn.request(method, target, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp, resp.read()
    finally:
        conn.close()


def echo(server: Server, target: str, **kw: Any) -> dict[str, Any]:
    resp, body = request(server, kw.pop("method", "GET"), target, **kw)
    assert resp.status == 200, body
    return json.loads(body)  # type: ignore[no-any-return]


def header_values(echoed: dict[str, Any], name: str) -> list[str]:
    return [v for k, v in echoed["headers"] if k.lower() == name]


def raw_exchange(port: int, payload: bytes, timeout: float = 10) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(payload)
        chunks = []
        while True:
            try:
                data = sock.recv(65536)
            except TimeoutError:
                break
            if not data:
                break
            chunks.append(data)
            if b"\r\n\r\n" in b"".join(chunks) and b"connection: close" not in b"".join(
                    chunks).lower():
                break
        return b"".join(chunks)


@pytest.mark.parametrize("target", [
    "/a%2Fb/c",
    "/static/node_modules/@coder/x.js",
    "/static/node_modules/%40coder/x.js",
    "/with%20space/and+plus",
    "/unicode/%E2%9C%93/%C3%A9t%C3%A9",
    "/stable-53c2f325/static/out/vs/workbench.js?v=1&x=%2F&empty=&a=b=c",
    "/double//slash/./dot/../x",
    "/q?token_like=1&folder=%2Froot%2Fwork",
])
def test_path_and_query_reach_waiide_byte_for_byte(gateway: Server, target: str) -> None:
    assert echo(gateway, target)["raw_path"] == target


def test_methods_and_bodies_pass(gateway: Server) -> None:
    for method in ("POST", "PUT", "PATCH", "DELETE", "OPTIONS"):
        body = f"{method} body".encode()
        got = echo(gateway, "/m", method=method, body=body)
        assert got["method"] == method
        assert got["body_bytes"] == len(body)


def test_head_gets_headers_only(gateway: Server) -> None:
    resp, body = request(gateway, "HEAD", "/huge?size=5000&cl=1")
    assert resp.status == 200
    assert resp.getheader("Content-Length") == "5000"
    assert body == b""


def test_hop_by_hop_headers_are_dropped_and_forwarding_headers_set(gateway: Server) -> None:
    got = echo(gateway, "/hdr", headers={
        "Connection": "keep-alive, X-Private-Hop",
        "X-Private-Hop": "secret",
        "Keep-Alive": "timeout=5",
        "TE": "trailers",
        "Proxy-Authorization": "Basic abc",
        "X-End-To-End": "kept",
        "Host": "ide.example.test:8091",
        "X-Forwarded-For": "10.1.2.3",
    })
    names = {k.lower() for k, _ in got["headers"]}
    for dropped in ("x-private-hop", "keep-alive", "te", "proxy-authorization"):
        assert dropped not in names
    assert header_values(got, "x-end-to-end") == ["kept"]
    assert header_values(got, "host") == ["ide.example.test:8091"]
    assert header_values(got, "x-forwarded-host") == ["ide.example.test:8091"]
    assert header_values(got, "x-forwarded-proto") == ["http"]
    assert header_values(got, "x-forwarded-for") == ["10.1.2.3, 127.0.0.1"]
    assert header_values(got, "via")[0].startswith("1.1 waiide-hub/")


def test_response_hop_by_hop_dropped_end_to_end_kept(gateway: Server) -> None:
    resp, _ = request(gateway, "GET", "/cookies")
    assert resp.status == 200
    assert resp.headers.get_all("Set-Cookie") == ["a=1; Path=/", "b=2; Path=/; HttpOnly"]
    assert resp.getheader("Via", "").endswith("waiide-hub/0.1.0")


def test_compressed_bodies_pass_untouched(gateway: Server) -> None:
    resp, body = request(gateway, "GET", "/gzip", headers={"Accept-Encoding": "gzip"})
    assert resp.getheader("Content-Encoding") == "gzip"
    assert gzip.decompress(body) == b"hello compressed world\n" * 50


def test_redirects_pass_unchanged(gateway: Server) -> None:
    resp, _ = request(gateway, "GET", "/redirect")
    assert resp.status == 302
    assert resp.getheader("Location") == "/elsewhere?x=1"


@pytest.mark.parametrize("code", [201, 204, 304, 404, 418, 500, 503])
def test_status_codes_pass(gateway: Server, code: int) -> None:
    resp, body = request(gateway, "GET", f"/status/{code}")
    assert resp.status == code
    if code in (204, 304):
        assert body == b""


def test_upstream_connections_are_kept_alive(gateway: Server) -> None:
    ports = {echo(gateway, f"/pool/{i}")["peer_port"] for i in range(30)}
    # 30 requests over 2 workers must not open 30 upstream connections.
    assert len(ports) <= 6, ports


def test_absolute_form_target_still_goes_to_waiide(gateway: Server) -> None:
    decoy = socket.socket()
    decoy.bind(("127.0.0.1", 0))
    decoy.listen(1)
    decoy.settimeout(0.5)
    decoy_port = decoy.getsockname()[1]
    try:
        raw = raw_exchange(gateway.port, (
            f"GET http://127.0.0.1:{decoy_port}/stolen?x=1 HTTP/1.1\r\n"
            f"Host: 127.0.0.1:{decoy_port}\r\nConnection: close\r\n\r\n").encode())
        assert raw.startswith(b"HTTP/1.1 200"), raw[:200]
        body = json.loads(raw.split(b"\r\n\r\n", 1)[1])
        assert body["raw_path"] == "/stolen?x=1"
        with pytest.raises(TimeoutError):
            decoy.accept()
    finally:
        decoy.close()


@pytest.mark.parametrize("payload", [
    b"GARBAGE\r\n\r\n",
    b"GET /x HTTP/9.9\r\nHost: a\r\n\r\n",
    b"GET /x HTTP/1.1\r\nHost: a\r\nContent-Length: abc\r\n\r\n",
    b"CONNECT 127.0.0.1:22 HTTP/1.1\r\nHost: 127.0.0.1:22\r\n\r\n",
    b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
])
def test_malformed_requests_get_4xx(gateway: Server, payload: bytes) -> None:
    raw = raw_exchange(gateway.port, payload)
    status = int(raw.split(b" ", 2)[1])
    assert 400 <= status < 500, raw[:200]


def test_request_body_streams_to_waiide(gateway: Server) -> None:
    body = bytes(range(256)) * 4096  # 1 MiB
    _resp, out = request(gateway, "POST", "/upload", body=body)
    got = json.loads(out)
    assert got["bytes"] == len(body)
    import hashlib

    assert got["sha256"] == hashlib.sha256(body).hexdigest()


def test_chunked_upload_is_forwarded(gateway: Server) -> None:
    def gen():  # type: ignore[no-untyped-def]
        for i in range(50):
            yield bytes([i]) * 1000
    conn = http.client.HTTPConnection("127.0.0.1", gateway.port, timeout=30)
    conn.request("POST", "/upload", body=gen(), encode_chunked=True,
                 headers={"Transfer-Encoding": "chunked"})
    got = json.loads(conn.getresponse().read())
    conn.close()
    assert got["bytes"] == 50_000


def test_response_chunks_arrive_before_waiide_finishes(gateway: Server) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", gateway.port, timeout=30)
    started = time.monotonic()
    conn.request("GET", "/drip?n=3&delay=1.0")
    resp = conn.getresponse()
    first = resp.read1(100)
    first_at = time.monotonic() - started
    rest = resp.read()
    total_at = time.monotonic() - started
    conn.close()
    assert first.startswith(b"chunk 0")
    assert rest.endswith(b"chunk 2\n")
    # The first chunk must not wait for the 2 s the whole body takes.
    assert first_at < 1.0 <= total_at


def test_waiide_down_gives_502_page_and_json(session_tmp: Any, dead_port: int) -> None:
    with gateway_process(session_tmp, dead_port) as gw:
        resp, body = request(gw, "GET", "/", headers={"Accept": "text/html"})
        assert resp.status == 502
        assert resp.getheader("Content-Type", "").startswith("text/html")
        assert f"127.0.0.1:{dead_port}".encode() in body
        assert b"not reachable" in body
        resp, body = request(gw, "GET", "/api/x", headers={"Accept": "application/json"})
        assert resp.status == 502
        got = json.loads(body)
        assert got["upstream"] == f"127.0.0.1:{dead_port}"
        assert "refused" in got["detail"].lower()


def test_slow_waiide_gives_504(tight_gateway: Server) -> None:
    resp, body = request(tight_gateway, "GET", "/slow?delay=3", headers={"Accept": "*/*"})
    assert resp.status == 504
    assert b"GATEWAY_READ_TIMEOUT" in body


def test_waiide_dying_mid_body_is_not_passed_off_as_complete(gateway: Server) -> None:
    start = len(gateway.log_text())
    conn = http.client.HTTPConnection("127.0.0.1", gateway.port, timeout=30)
    conn.request("GET", "/die?size=1000000&after=5000")
    resp = conn.getresponse()
    assert resp.status == 200
    with pytest.raises(http.client.IncompleteRead):
        resp.read()
    conn.close()
    time.sleep(0.3)
    log = gateway.log_text()[start:]
    assert "cutting the client off" in log and "Traceback" not in log, log


def test_body_limit_gives_413(tight_gateway: Server) -> None:
    resp, body = request(tight_gateway, "POST", "/upload", body=b"x" * 200_000)
    assert resp.status == 413
    assert b"GATEWAY_MAX_BODY_BYTES" in body


@pytest.mark.slow
def test_unix_socket_upstream(session_tmp: Any, tmp_path: Any) -> None:
    from tests.conftest import fake_waiide

    sock = str(tmp_path / "waiide.sock")
    with fake_waiide(tmp_path, socket_path=sock), \
            gateway_process(tmp_path, free_port(), {"WAIIDE_SOCKET": sock}) as gw:
        assert echo(gw, "/via/unix%2Fsocket")["raw_path"] == "/via/unix%2Fsocket"


def test_head_is_written_when_the_body_comes_later(gateway: Server) -> None:
    """A length-delimited body that arrives after the head (here 1 s later) still gets the head
    first: the raw bytes must start with the status line."""
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=10) as sock:
        sock.sendall(b"GET /late-body?delay=0.5 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    assert data.startswith(b"HTTP/1.1 200"), data[:200]
    assert data.endswith(b"\r\n\r\nlater")
    for i in range(5):
        conn = http.client.HTTPConnection("127.0.0.1", gateway.port, timeout=30)
        conn.request("GET", f"/huge?size={100_000 + i}&cl=1")
        resp = conn.getresponse()
        assert resp.status == 200 and len(resp.read()) == 100_000 + i
        conn.close()
