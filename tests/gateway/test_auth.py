"""The standalone token: who gets in, and that the token never reaches WAIIDE."""

from __future__ import annotations

import getpass
import http.client
import json

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from tests.conftest import TEST_TOKEN, Server


def get(server: Server, target: str, headers: dict[str, str] | None = None,
        method: str = "GET") -> tuple[http.client.HTTPResponse, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        conn.request(method, target, headers=headers or {})
        resp = conn.getresponse()
        return resp, resp.read()
    finally:
        conn.close()


def test_no_credential_is_401_with_a_login_page_for_browsers(token_gateway: Server) -> None:
    resp, body = get(token_gateway, "/", {"Accept": "text/html"})
    assert resp.status == 401
    assert b"token" in body and b"<form" in body
    resp, body = get(token_gateway, "/some/file", {"Accept": "application/json"})
    assert resp.status == 401
    assert json.loads(body)["status"] == 401


def test_wrong_token_is_403(token_gateway: Server) -> None:
    assert get(token_gateway, "/x", {"Authorization": "token nope"})[0].status == 403
    assert get(token_gateway, "/x?token=nope")[0].status == 403


def test_authorization_header_admits_and_is_not_forwarded(token_gateway: Server) -> None:
    for scheme in ("token", "Bearer"):
        resp, body = get(token_gateway, "/echo", {"Authorization": f"{scheme} {TEST_TOKEN}"})
        assert resp.status == 200
        names = [k.lower() for k, _ in json.loads(body)["headers"]]
        assert "authorization" not in names


def test_query_token_sets_cookie_and_redirects_without_it(token_gateway: Server) -> None:
    resp, _ = get(token_gateway, f"/?folder=%2Fwork&token={TEST_TOKEN}&x=1")
    assert resp.status == 302
    assert resp.getheader("Location") == "/?folder=%2Fwork&x=1"
    cookie = resp.getheader("Set-Cookie", "")
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert TEST_TOKEN not in cookie
    pair = cookie.split(";", 1)[0]
    resp, body = get(token_gateway, "/echo?folder=%2Fwork", {"Cookie": f"other=1; {pair}"})
    assert resp.status == 200
    echoed = json.loads(body)
    assert echoed["raw_path"] == "/echo?folder=%2Fwork"
    cookies = [v for k, v in echoed["headers"] if k.lower() == "cookie"]
    assert cookies == ["other=1"], "the gateway's cookie must not reach WAIIDE"


def test_forged_cookie_is_refused(token_gateway: Server) -> None:
    resp, _ = get(token_gateway, "/x", {"Cookie": f"waiide-hub-auth-{token_gateway.port}=forged"})
    assert resp.status == 403


@pytest.mark.parametrize("path", ["/api", "/api/status", "/api/healthz"])
def test_health_endpoints_stay_open(token_gateway: Server, path: str) -> None:
    assert get(token_gateway, path)[0].status in (200, 503)


def test_user_endpoint_needs_the_token(token_gateway: Server) -> None:
    assert get(token_gateway, "/api/user")[0].status == 401
    assert get(token_gateway, "/api/user", {"Authorization": f"token {TEST_TOKEN}"})[0].status \
        == 200


@pytest.mark.parametrize("path", ["/api", "/api/status", "/api/services", "/api/healthz"])
def test_anonymous_api_says_nothing_about_the_user_or_addresses(token_gateway: Server,
                                                               path: str) -> None:
    """The seed's manual checks (`curl :8091/api` ...) answer without a token, minimally."""
    resp, body = get(token_gateway, path)
    assert resp.status in (200, 503)
    text = body.decode()
    user = getpass.getuser()
    for secret in (f'"{user}"', "127.0.0.1", str(token_gateway.port), '"pid"', "unix:", "url"):
        assert secret not in text, (path, secret, text)


def test_api_with_the_token_shows_the_full_view(token_gateway: Server) -> None:
    auth = {"Authorization": f"token {TEST_TOKEN}"}
    overview = json.loads(get(token_gateway, "/api", auth)[1])
    assert overview["user"] == getpass.getuser()
    assert "url" in overview["components"]["waiide"]
    assert json.loads(get(token_gateway, "/api")[1])["name"] == "waiide-hub"
    # a wrong token gets the anonymous view, not an error: the route is a health check
    wrong = json.loads(get(token_gateway, "/api", {"Authorization": "token nope"})[1])
    assert "user" not in wrong and "components" not in wrong


async def test_websocket_needs_the_token(token_gateway: Server) -> None:
    url = f"ws://127.0.0.1:{token_gateway.port}/ws"
    with pytest.raises(InvalidStatus) as caught:
        async with connect(url, proxy=None, open_timeout=10):
            pass
    assert caught.value.response.status_code == 401
    async with connect(f"{url}?token={TEST_TOKEN}", proxy=None, open_timeout=10) as ws:
        await ws.send("hi")
        assert await ws.recv() == "hi"
    async with connect(url, proxy=None, open_timeout=10,
                       additional_headers={"Authorization": f"token {TEST_TOKEN}"}) as ws:
        await ws.send("info")
        assert "subprotocol" in json.loads(await ws.recv())


def test_jupyter_proxy_hop_is_admitted_and_cleaned(session_tmp: object, upstream: Server) -> None:
    """Full mode: Jupyter's proxy reaches WAIIDE through the gateway with the supervisor's secret;
    Jupyter's and the hub's credentials, and the secret itself, stop at the gateway."""
    from tests.conftest import gateway_process

    secret = "s" * 43
    env = {"GATEWAY_AUTH": "token", "GATEWAY_TOKEN": TEST_TOKEN, "GATEWAY_INTERNAL_SECRET": secret}
    with gateway_process(session_tmp, upstream.port, env) as gw:  # type: ignore[arg-type]
        resp, body = get(gw, "/echo?x=1&token=jupyter-token", {
            "X-Waiide-Hub-Internal": secret, "Authorization": "token hub-token",
            "Cookie": "jupyterhub-user-alice-waiide=signed; _xsrf=x; ide-cookie=keep; "
                      "username-127-0-0-1-8090=jupyter"})
        assert resp.status == 200
        echoed = json.loads(body)
        names = {k.lower() for k, _ in echoed["headers"]}
        assert "authorization" not in names and "x-waiide-hub-internal" not in names
        assert [v for k, v in echoed["headers"] if k.lower() == "cookie"] == ["ide-cookie=keep"]
        assert echoed["raw_path"] == "/echo?x=1"
        assert get(gw, "/echo", {"X-Waiide-Hub-Internal": "wrong"})[0].status == 401
