"""Access decisions as tables: which credential forms let a request through, how it is cleaned
before it reaches WAIIDE, and what a refused request is answered with.

Requests are Sanic `Request` objects built from a raw target and header list (what Sanic's
protocol would build from the bytes). Hub tokens are checked by JupyterHub's own `HubOAuth`
against a scripted hub API on a real socket; the OAuth state cookie needs no hub.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import AsyncIterator, Sequence
from urllib.parse import parse_qs, urlsplit

import pytest
from sanic import Sanic
from sanic.compat import Header
from sanic.request import Request

from common.defaults import INTERNAL_HEADER
from gateway.access.gate import Access
from gateway.access.hub import HubTokenAuth
from gateway.access.token import TokenAuth
from gateway.access.verdict import (
    InternalHop,
    Outcome,
    Verdict,
    is_jupyter_credential,
    split_token_param,
    without_cookies,
)
from gateway.config import GatewayConfig
from gateway.sanic_compat import GatewayRequest
from tests.gateway.rawhttp import Peer, RawUpstream, raw_upstream

TOKEN = "t0ken+/="  # characters that must be percent-encoded in a query
QTOKEN = "t0ken%2B%2F%3D"
PORT = 8091
AUTH = TokenAuth(TOKEN, PORT)
OURS = f"{AUTH.cookie_name}={AUTH.cookie_value}"
A, R, M, INV = Outcome.ALLOW, Outcome.REDIRECT, Outcome.MISSING, Outcome.INVALID


@pytest.fixture(scope="module")
def app() -> Sanic:  # type: ignore[type-arg]
    Sanic.test_mode = True
    return Sanic("access_tables", request_class=GatewayRequest)


def request(app: Sanic, target: str, headers: Sequence[tuple[str, str]] = (),  # type: ignore[type-arg]
            method: str = "GET") -> Request:
    return GatewayRequest(target.encode(), Header(list(headers)), "1.1", method, None, app)


# ---- split_token_param, without_cookies ------------------------------------------------------

@pytest.mark.parametrize(("target", "expected"), [
    (b"/a", (b"/a", None)),
    (b"/a?x=1", (b"/a?x=1", None)),
    (b"/a?token=abc", (b"/a", "abc")),
    (b"/a?q=%2F&token=abc&r=%20", (b"/a?q=%2F&r=%20", "abc")),  # the rest byte for byte
    (b"/a?token=" + QTOKEN.encode(), (b"/a", TOKEN)),
    (b"/a?mytoken=1&token_x=2", (b"/a?mytoken=1&token_x=2", None)),  # other parameters
    (b"/a?token=", (b"/a", "")),  # present but empty: a (wrong) credential, not none
    (b"/a?token=1&token=2", (b"/a", "2")),  # both removed: neither reaches WAIIDE
])
def test_split_token_param(target: bytes, expected: tuple[bytes, str | None]) -> None:
    assert split_token_param(target) == expected


@pytest.mark.parametrize(("header", "expected"), [
    (None, None),
    ("", ""),
    ("a=1; jupyterhub-session-id=s; _xsrf=x; b=2", "a=1; b=2"),
    ("jupyterhub-user-alice-waiide=tok; username-alice=u", ""),
    (" a=1 ;; theme ; jupyterhub-hub-login=x", "a=1; theme"),
    ("my-jupyterhub-thing=1", "my-jupyterhub-thing=1"),  # only names that begin so
])
def test_without_jupyter_cookies(header: str | None, expected: str | None) -> None:
    assert without_cookies(header, is_jupyter_credential) == expected


# ---- TokenAuth ---------------------------------------------------------------------------------

TOKEN_TABLE: list[tuple[str, str, list[tuple[str, str]], bool, Verdict]] = [
    # (case, target, headers, websocket, verdict)
    ("nothing", "/", [], False, Verdict(M)),
    ("token header", "/", [("authorization", f"token {TOKEN}")], False,
     Verdict(A, drop_authorization=True)),
    ("bearer header", "/", [("authorization", f"Bearer {TOKEN}")], False,
     Verdict(A, drop_authorization=True)),
    ("scheme any case", "/", [("authorization", f"TOKEN  {TOKEN} ")], False,
     Verdict(A, drop_authorization=True)),
    ("wrong token header", "/", [("authorization", "token nope")], False, Verdict(INV)),
    ("empty token header", "/", [("authorization", "token ")], False, Verdict(INV)),
    # Not a scheme the gateway reads: no credential of ours (WAIIDE may have its own use).
    ("basic", "/", [("authorization", "Basic " + base64.b64encode(
        f"u:{TOKEN}".encode()).decode())], False, Verdict(M)),
    ("garbage header", "/", [("authorization", TOKEN)], False, Verdict(M)),
    ("query on a page", f"/a?x=1&token={QTOKEN}&y=2", [], False, Verdict(R, target=b"/a?x=1&y=2")),
    ("query on a websocket", f"/ws?token={QTOKEN}", [], True, Verdict(A, target=b"/ws")),
    ("wrong query on a page", "/a?token=nope", [], False, Verdict(INV)),
    ("wrong query on a websocket", "/ws?token=nope", [], True, Verdict(INV)),
    ("cookie", "/", [("cookie", f"theme=dark; {OURS}")], False, Verdict(A, cookie="theme=dark")),
    ("cookie alone", "/", [("cookie", OURS)], True, Verdict(A, cookie="")),
    ("stale cookie", "/", [("cookie", f"{AUTH.cookie_name}=0123abcd")], False, Verdict(INV)),
    ("only other cookies", "/", [("cookie", "theme=dark")], False, Verdict(M)),
    # Another gateway's cookie whose name extends ours (port 80910 vs 8091 is impossible, but
    # 8091 vs 809 is not): it is not our credential, so no credential at all.
    ("cookie of a longer name", "/", [("cookie", f"{AUTH.cookie_name}0=x")], False, Verdict(M)),
    ("cookie of a longer name, unspaced", "/", [("cookie", f"a=1;{AUTH.cookie_name}0=x")], False,
     Verdict(M)),
    ("header and cookie", "/", [("authorization", f"token {TOKEN}"), ("cookie", OURS)], False,
     Verdict(A, drop_authorization=True, cookie="")),
    ("wrong query, right header", "/a?token=nope&b=1", [("authorization", f"token {TOKEN}")],
     False, Verdict(A, target=b"/a?b=1", drop_authorization=True)),
    ("right query, wrong header, page", f"/a?token={QTOKEN}", [("authorization", "token x")],
     False, Verdict(R, target=b"/a")),
    ("query and cookie on a websocket", f"/ws?token={QTOKEN}", [("cookie", f"{OURS}; k=v")],
     True, Verdict(A, target=b"/ws", cookie="k=v")),
]


@pytest.mark.parametrize(("target", "headers", "websocket", "expected"),
                         [row[1:] for row in TOKEN_TABLE], ids=[row[0] for row in TOKEN_TABLE])
async def test_token_auth_verdicts(app: Sanic, target: str,  # type: ignore[type-arg]
                                   headers: list[tuple[str, str]], websocket: bool,
                                   expected: Verdict) -> None:
    assert await AUTH.authorize(request(app, target, headers), websocket=websocket) == expected


def test_the_cookie_holds_no_token_and_depends_on_it() -> None:
    assert TOKEN not in OURS
    assert AUTH.cookie_value != TokenAuth("other", PORT).cookie_value
    assert AUTH.cookie_name != TokenAuth(TOKEN, 9000).cookie_name
    header = AUTH.cookie_header(secure=True)
    # Kept 14 days: the token survives restarts, so a tab reconnects with its cookie (issue 14).
    assert header == f"{OURS}; Path=/; Max-Age=1209600; HttpOnly; SameSite=Lax; Secure"


# ---- InternalHop -----------------------------------------------------------------------------

HOP = InternalHop("hop-secret")


@pytest.mark.parametrize(("target", "headers", "expected"), [
    ("/", [], None),
    ("/", [(INTERNAL_HEADER, "wrong")], None),
    ("/", [(INTERNAL_HEADER, "hop-secret")], Verdict(A, drop_authorization=True)),
    ("/x?token=jt&a=1", [(INTERNAL_HEADER, "hop-secret"), ("authorization", "token jt"),
                         ("cookie", "_xsrf=1; jupyterhub-session-id=2; editor=3")],
     Verdict(A, target=b"/x?a=1", drop_authorization=True, cookie="editor=3")),
], ids=["absent", "wrong secret", "secret", "secret with Jupyter's credentials"])
def test_internal_hop(app: Sanic, target: str,  # type: ignore[type-arg]
                      headers: list[tuple[str, str]], expected: Verdict | None) -> None:
    assert HOP.check(request(app, target, headers)) == expected


# ---- Access.refuse -----------------------------------------------------------------------------

def token_access() -> Access:
    config = GatewayConfig.from_env({"GATEWAY_AUTH": "token", "GATEWAY_TOKEN": TOKEN,
                                     "API_SERVER_PORT": str(PORT)})
    return Access(config, TokenAuth(TOKEN, PORT))


HTML = ("accept", "text/html,application/xhtml+xml")
JSON = ("accept", "application/json")


@pytest.mark.parametrize(("method", "headers", "verdict", "status", "answer"), [
    ("GET", [HTML], Verdict(M), 401, "login page"),
    ("GET", [HTML], Verdict(INV), 403, "login page"),
    ("HEAD", [HTML], Verdict(M), 401, "login page"),
    ("GET", [JSON], Verdict(M), 401, "json"),
    ("GET", [JSON], Verdict(INV), 403, "json"),
    ("POST", [HTML], Verdict(M), 401, "error page"),  # a login form cannot resubmit a POST
], ids=["page missing", "page invalid", "head", "api missing", "api invalid", "post"])
def test_refusals(app: Sanic, method: str, headers: list[tuple[str, str]],  # type: ignore[type-arg]
                  verdict: Verdict, status: int, answer: str) -> None:
    response = token_access().refuse(request(app, "/x", headers, method), verdict)
    assert response.status == status
    assert response.headers["cache-control"] == "no-store"
    body = (response.body or b"").decode()
    detail = "A token is required" if status == 401 else "The token is not valid"
    if answer == "json":
        assert response.content_type == "application/json"
        assert json.loads(body)["detail"].startswith(detail)
    else:
        assert (response.content_type or "").startswith("text/html")
        assert ('<form' in body) is (answer == "login page")
    assert TOKEN not in body


@pytest.mark.parametrize(("headers", "secure"), [([], False),
                                                 ([("x-forwarded-proto", "https")], True)])
def test_redirect_sets_the_cookie_and_drops_the_token(app: Sanic,  # type: ignore[type-arg]
                                                      headers: list[tuple[str, str]],
                                                      secure: bool) -> None:
    response = token_access().refuse(request(app, f"/a?token={QTOKEN}&b=1", headers),
                                     Verdict(R, target=b"/a?b=1"))
    assert response.status == 302
    assert response.headers["location"] == "/a?b=1"
    assert response.headers["set-cookie"] == AUTH.cookie_header(secure)
    assert ("; Secure" in response.headers["set-cookie"]) is secure
    assert response.headers["cache-control"] == "no-store"


# ---- HubTokenAuth ----------------------------------------------------------------------------

SCOPE = "access:servers!server=alice/waiide"
HUB_USERS = {"alice-token": ["read:users!user=alice", SCOPE],
             "alice-no-scope": ["read:users!user=alice"]}


async def fake_hub_api(peer: Peer) -> None:
    """GET /hub/api/user: the model of the token's owner, 403 for an unknown token."""
    while raw := await peer.request():
        token = next((line.split(b" ", 2)[2].decode() for line in raw.split(b"\r\n")
                      if line.lower().startswith(b"authorization: token ")), "")
        scopes = HUB_USERS.get(token)
        if scopes is None:
            status, model = b"403 Forbidden", {"status": 403, "message": "bad token"}
        else:
            status, model = b"200 OK", {"kind": "user", "name": "alice", "scopes": scopes}
        body = json.dumps(model).encode()
        await peer.send(b"HTTP/1.1 " + status + b"\r\nContent-Type: application/json\r\n"
                        b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)


def hub_config(api_url: str) -> GatewayConfig:
    return GatewayConfig.from_env({
        "API_SERVER_PORT": str(PORT), "JUPYTERHUB_API_TOKEN": "server-api-token",
        "JUPYTERHUB_API_URL": api_url, "JUPYTERHUB_USER": "alice",
        "JUPYTERHUB_SERVER_NAME": "waiide", "JUPYTERHUB_SERVICE_PREFIX": "/user/alice/waiide/",
        "JUPYTERHUB_OAUTH_ACCESS_SCOPES": json.dumps([SCOPE])})


@pytest.fixture
async def hub() -> AsyncIterator[tuple[HubTokenAuth, RawUpstream]]:
    async with raw_upstream(fake_hub_api) as api:
        auth = HubTokenAuth(hub_config(f"http://127.0.0.1:{api.port}/hub/api"))
        auth.start()
        yield auth, api


HUB_COOKIE = f"waiide-hub-auth-{PORT}"
OAUTH_COOKIE = "jupyterhub-user-alice-waiide"
HUB_TABLE: list[tuple[str, str, list[tuple[str, str]], bool, Verdict]] = [
    ("nothing", "/", [], False, Verdict(M)),
    ("token header", "/", [("authorization", "token alice-token")], False,
     Verdict(A, drop_authorization=True)),
    ("bearer header, cookies cleaned", "/", [
        ("authorization", "Bearer alice-token"),
        ("cookie", (f"jupyterhub-session-id=s; {OAUTH_COOKIE}=o; theme=dark; "
                   f"{OAUTH_COOKIE}-oauth-state=st; _xsrf=x"))],
     False, Verdict(A, drop_authorization=True, cookie="theme=dark")),
    ("oauth cookie", "/", [("cookie", f"{OAUTH_COOKIE}=alice-token; k=v")], False,
     Verdict(A, cookie="k=v")),
    ("gateway cookie", "/", [("cookie", f"{HUB_COOKIE}=alice-token")], True,
     Verdict(A, cookie="")),
    ("unknown token", "/", [("authorization", "token forged")], False, Verdict(INV)),
    ("token without the access scope", "/", [("authorization", "token alice-no-scope")],
     False, Verdict(INV)),
    ("query on a page", "/a?token=alice-token&b=1", [], False,
     Verdict(R, target=b"/a?b=1", token="alice-token")),
    ("query on a websocket", "/ws?token=alice-token", [], True, Verdict(A, target=b"/ws")),
    ("header wins over a bad query, which is dropped", "/a?token=forged",
     [("authorization", "token alice-token")], False,
     Verdict(A, target=b"/a", drop_authorization=True)),
]


@pytest.mark.parametrize(("target", "headers", "websocket", "expected"),
                         [row[1:] for row in HUB_TABLE], ids=[row[0] for row in HUB_TABLE])
async def test_hub_auth_verdicts(app: Sanic,  # type: ignore[type-arg]
                                 hub: tuple[HubTokenAuth, RawUpstream], target: str,
                                 headers: list[tuple[str, str]], websocket: bool,
                                 expected: Verdict) -> None:
    auth, api = hub
    assert await auth.authorize(request(app, target, headers), websocket=websocket) == expected
    if expected.outcome is not M:  # a credential was checked, by asking the hub
        assert api.requests, "the hub was never asked"
        assert all(b"GET /hub/api/user" in r for _, r in api.requests)


def test_hub_cookie_carries_the_accepted_token() -> None:
    auth = HubTokenAuth(hub_config("http://127.0.0.1:9/hub/api"))
    assert auth.cookie_header(False, "alice-token") == (
        f"{HUB_COOKIE}=alice-token; Path=/; HttpOnly; SameSite=Lax")


# ---- the OAuth state cookie --------------------------------------------------------------------

def test_state_signing_round_trips_and_refuses_forgeries() -> None:
    auth = HubTokenAuth(hub_config("http://127.0.0.1:9/hub/api"))
    signed = auth._sign(b'{"n": "nonce", "t": 1.0}')
    assert auth._unsign(signed) == {"n": "nonce", "t": 1.0}
    data, mac = signed.split(".")
    forged_payload = base64.urlsafe_b64encode(b'{"n": "other", "t": 1.0}').decode().rstrip("=")
    other_server = HubTokenAuth(GatewayConfig.from_env({
        "JUPYTERHUB_API_TOKEN": "another-servers-token", "JUPYTERHUB_API_URL": "http://h/api"}))
    for bad in (f"{forged_payload}.{mac}", f"{data}.{mac[:-2]}AA", data, "", "!!!.???",
                other_server._sign(b'{"n": "nonce", "t": 1.0}'), auth._sign(b"[1, 2]"),
                auth._sign(b"not json")):
        assert auth._unsign(bad) is None, bad


def test_login_redirect_shape() -> None:
    auth = HubTokenAuth(hub_config("http://127.0.0.1:9/hub/api"))
    auth.start()
    url, cookie = auth.login_redirect("/user/alice/waiide/WAIIDE/?folder=/w", now=1000.0)
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    assert parts.path.endswith("/hub/api/oauth2/authorize")
    assert query["client_id"] == OAUTH_COOKIE and query["response_type"] == "code"
    assert query["redirect_uri"] == "/user/alice/waiide/oauth_callback"
    assert query["code_challenge_method"] == "S256"
    name, _, rest = cookie.partition("=")
    value, *flags = rest.split("; ")
    assert name == f"{OAUTH_COOKIE}-oauth-state"
    assert flags == ["Path=/user/alice/waiide/", "HttpOnly", "SameSite=Lax", "Max-Age=600"]
    state = auth._unsign(value)
    assert state is not None
    assert state["n"] == query["state"] and state["t"] == 1000.0
    assert state["next"] == "/user/alice/waiide/WAIIDE/?folder=/w"
    # The verifier stays in the signed cookie; the hub only sees its S256 challenge.
    digest = hashlib.sha256(str(state["v"]).encode()).digest()
    assert base64.urlsafe_b64encode(digest).decode().rstrip("=") == query["code_challenge"]
    assert str(state["v"]) not in url
    url2, _ = auth.login_redirect("/", now=1000.0)
    assert parse_qs(urlsplit(url2).query)["state"][0] != query["state"]  # fresh nonce


@pytest.mark.parametrize("case", ["no cookie", "forged cookie", "other nonce", "expired",
                                  "no code"])
async def test_a_callback_without_a_valid_state_is_refused_before_the_hub_is_asked(
        app: Sanic, case: str) -> None:  # type: ignore[type-arg]
    auth = HubTokenAuth(hub_config("http://127.0.0.1:9/hub/api"))  # nothing listens: never used
    auth.start()
    _, cookie = auth.login_redirect("/user/alice/waiide/", now=1000.0)
    pair = cookie.split("; ")[0]
    nonce = auth._unsign(pair.split("=", 1)[1])["n"]  # type: ignore[index]
    target, now, cookies = f"/oauth_callback?code=c&state={nonce}", 1000.0 + 60, pair
    if case == "no cookie":
        cookies = ""
    elif case == "forged cookie":
        cookies = pair[:-3] + "AAA"
    elif case == "other nonce":
        target = "/oauth_callback?code=c&state=someone-elses"
    elif case == "expired":
        now = 1000.0 + 601
    else:
        target = f"/oauth_callback?state={nonce}"
    headers = [("cookie", cookies)] if cookies else []
    assert await auth.finish_login(request(app, target, headers), now) is None
