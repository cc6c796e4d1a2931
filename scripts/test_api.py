#!/usr/bin/env python3
"""Quick test of a running WAIIDE Hub: every endpoint, one PASS/FAIL line each.

Usage:
    python3 scripts/test_api.py                       # the defaults: gateway on :8091, PORT :8090
    python3 scripts/test_api.py --token "$GATEWAY_TOKEN"
    python3 scripts/test_api.py --gateway http://127.0.0.1:18091 --main http://127.0.0.1:18090
    python3 scripts/test_api.py --no-gateway --main https://hub.example.org \\
        --prefix /user/alice/waiide/ --token "$MY_HUB_TOKEN"     # through the hub's proxy

Checked on the gateway (API_SERVER_PORT): /api, /api/status, /api/user, /api/services,
/metrics and the proxied IDE root `/`. Checked on the main port (PORT, jupyterhub-singleuser in
full mode, the gateway in lightweight mode): /api/status (the health check, no token),
{prefix}api, {prefix}api/status, {prefix}WAIIDE/.

With no arguments it checks the stack that runs with the same environment: the stack
publishes its URLs, prefix and tokens for its user in a runtime file (mode 0600),
$WAIIDE_HUB_RUNTIME_DIR/stack-<API_SERVER_PORT>.json, default
~/.local/share/waiide-hub/runtime/stack-8091.json (see supervisor/runtime_file.py).

Credentials, sent as `Authorization: token …`: `--token`, else GATEWAY_TOKEN, else
JUPYTERHUB_API_TOKEN, else the runtime file's gateway token. The main port takes
`--main-token`, else JUPYTER_TOKEN, else `--token`, else JUPYTERHUB_API_TOKEN, else the runtime
file's main token (a standalone full-mode stack has its own Jupyter token), else the gateway's.
Arguments and variables win over the file.

Exit code: 0 when every check passed, 1 when any failed, 2 on a usage error.
Standard library only; every request has a timeout; HTTP proxies in the environment are ignored.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from email.message import Message
from pathlib import Path
from typing import Any

DEFAULT_TIMEOUT_S = 10.0
MAX_BODY_BYTES = 4 * 1024 * 1024
MAX_REDIRECTS = 5
LOGIN_MARKERS = ("/login", "/oauth2/authorize")
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


@dataclass(frozen=True, slots=True)
class Reply:
    """What one GET came back with (after same-origin redirects); `error` when none came."""

    url: str
    status: int | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""
    error: str | None = None
    login_redirect: str | None = None

    def json(self) -> Any:
        """The body as JSON, or None when it is not JSON."""
        try:
            return json.loads(self.body)
        except ValueError:
            return None


Judge = Callable[[Reply], tuple[bool, str]]


@dataclass(frozen=True, slots=True)
class Check:
    """One endpoint: what to GET, with which credential, and how to judge the reply."""

    name: str
    url: str
    token: str | None
    judge: Judge


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Redirects come back as replies; `fetch` decides which to follow."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect())


def _headers(message: Message) -> dict[str, str]:
    return {key.lower(): value for key, value in message.items()}


def _get_once(url: str, token: str | None, timeout_s: float) -> Reply:
    request = urllib.request.Request(url, headers={"Accept": "application/json, */*"})
    if token:
        request.add_header("Authorization", f"token {token}")
    try:
        with _OPENER.open(request, timeout=timeout_s) as response:
            return Reply(url, response.status, _headers(response.headers),
                         response.read(MAX_BODY_BYTES))
    except urllib.error.HTTPError as exc:
        with exc:
            body = exc.read(MAX_BODY_BYTES) if exc.fp is not None else b""
            return Reply(url, exc.code, _headers(exc.headers), body)
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
        detail = str(getattr(exc, "reason", exc)) or type(exc).__name__
        return Reply(url, error=f"no answer: {detail}")


def _same_origin(a: str, b: str) -> bool:
    pa, pb = urllib.parse.urlsplit(a), urllib.parse.urlsplit(b)
    return (pa.scheme, pa.netloc) == (pb.scheme, pb.netloc)


def fetch(url: str, token: str | None, timeout_s: float) -> Reply:
    """GET `url`, following same-origin redirects except those to a login page."""
    reply = _get_once(url, token, timeout_s)
    for _ in range(MAX_REDIRECTS):
        if reply.status is None or not 300 <= reply.status < 400:
            return reply
        location = reply.headers.get("location")
        if not location:
            return reply
        target = urllib.parse.urljoin(reply.url, location)
        if any(marker in urllib.parse.urlsplit(target).path for marker in LOGIN_MARKERS):
            return Reply(reply.url, reply.status, reply.headers, reply.body,
                         login_redirect=target)
        if not _same_origin(url, target):
            return reply
        reply = _get_once(target, token, timeout_s)
    return reply


# ---- judges: (passed, short reason) ---------------------------------------------------------

RUNTIME_DIR_VAR = "WAIIDE_HUB_RUNTIME_DIR"
GATEWAY_HINT = ("--token, GATEWAY_TOKEN (standalone) or JUPYTERHUB_API_TOKEN (under a hub), or "
                "run with the stack's environment so its runtime file is found")
MAIN_HINT = ("--main-token, JUPYTER_TOKEN (standalone full mode: Jupyter's token from the "
             "banner) or JUPYTERHUB_API_TOKEN (under a hub)")


def _refusal(reply: Reply, token: str | None, hint: str = GATEWAY_HINT) -> str | None:
    """Why the server refused us, if it did."""
    if reply.login_redirect:
        return f"redirected to log in ({reply.login_redirect}): credential not accepted"
    if reply.status in (401, 403):
        return "credential refused" if token else f"needs a token: {hint}"
    return None


def _json_object(reply: Reply, *keys: str) -> tuple[dict[str, Any] | None, str]:
    data = reply.json()
    if not isinstance(data, dict):
        return None, f"not a JSON object: {reply.body[:80]!r}"
    missing = [key for key in keys if key not in data]
    if missing:
        return None, f"JSON without {', '.join(missing)}"
    return data, ""


def judge_overview(reply: Reply) -> tuple[bool, str]:
    # Without a token /api is the minimal view (name, version, links); with one it also lists
    # the mode and the components.
    data, why = _json_object(reply, "name", "version")
    if reply.status != 200 or data is None:
        return False, why or f"expected 200, got {reply.status}"
    components = data.get("components")
    listed = f", components: {', '.join(components)}" if isinstance(components, dict) else ""
    return True, f"{data['name']} {data['version']}, {data.get('mode', '?')} mode{listed}"


def judge_status(reply: Reply) -> tuple[bool, str]:
    data, why = _json_object(reply, "status")
    if data is None:
        return False, why
    if reply.status == 200:
        return True, f"status {data['status']}"
    waiide = (data.get("components") or data.get("services") or {}).get("waiide") or {}
    detail = data.get("reason") or waiide.get("reason") or waiide.get("state")
    return False, f"status {data['status']}" + (f": {detail}" if detail else "")


def judge_user(reply: Reply, token: str | None) -> tuple[bool, str]:
    refused = _refusal(reply, token)
    if refused:
        return False, refused
    data, why = _json_object(reply, "name")
    if reply.status != 200 or data is None:
        return False, why or f"expected 200, got {reply.status}"
    return True, f"user {data['name']}" + (" (under JupyterHub)" if data.get("hub") else "")


def judge_services(reply: Reply, token: str | None) -> tuple[bool, str]:
    refused = _refusal(reply, token)
    if refused:
        return False, refused
    data = reply.json()
    if reply.status != 200 or not isinstance(data, dict):
        return False, f"expected 200 with a JSON object, got {reply.status}"
    components = data.get("services") or data.get("components") or {}
    states = [f"{name} {info.get('state', '?')}" for name, info in components.items()
              if isinstance(info, dict)]
    return True, ", ".join(states) or "no components listed"


def judge_metrics(reply: Reply) -> tuple[bool, str]:
    text = reply.body.decode("utf-8", "replace")
    if reply.status != 200:
        return False, f"expected 200, got {reply.status}"
    if "# TYPE " not in text:
        return False, "not Prometheus text (no # TYPE line)"
    families = sum(1 for line in text.splitlines() if line.startswith("# TYPE "))
    return True, f"{families} metric families"


def judge_ide(reply: Reply, token: str | None, hint: str = GATEWAY_HINT) -> tuple[bool, str]:
    refused = _refusal(reply, token, hint)
    if refused:
        return False, refused
    if reply.status in (502, 503, 504):
        return False, "WAIIDE unreachable behind the proxy"
    if reply.status is None or not 200 <= reply.status < 400:
        return False, f"expected 2xx/3xx, got {reply.status}"
    kind = reply.headers.get("content-type", "?").split(";")[0]
    return True, f"{kind}, {len(reply.body)} bytes"


def judge_version(reply: Reply) -> tuple[bool, str]:
    data, why = _json_object(reply, "version")
    if reply.status != 200 or data is None:
        return False, why or f"expected 200, got {reply.status}"
    hub = reply.headers.get("x-jupyterhub-version")
    return True, f"version {data['version']}" + (f", X-JupyterHub-Version {hub}" if hub else "")


def judge_main_status(reply: Reply, token: str | None) -> tuple[bool, str]:
    refused = _refusal(reply, token, MAIN_HINT)
    if refused:
        return False, refused
    data = reply.json()
    if reply.status != 200 or not isinstance(data, dict):
        return judge_status(reply) if isinstance(data, dict) else (
            False, f"expected 200 with JSON, got {reply.status}")
    if "status" in data:  # lightweight: the gateway's status document
        return True, f"status {data['status']}"
    return True, (f"Jupyter: {data.get('connections', '?')} connections, "
                  f"{data.get('kernels', '?')} kernels")


# ---- the plan -------------------------------------------------------------------------------

def _with_token(judge: Callable[[Reply, str | None], tuple[bool, str]],
                token: str | None) -> Judge:
    return lambda reply: judge(reply, token)


def gateway_checks(base: str, token: str | None) -> list[Check]:
    """The gateway's own routes and the proxied IDE root."""
    url = base.rstrip("/")
    return [
        Check("gateway /api", f"{url}/api", None, judge_overview),
        Check("gateway /api/status", f"{url}/api/status", None, judge_status),
        Check("gateway /api/user", f"{url}/api/user", token, _with_token(judge_user, token)),
        Check("gateway /api/services", f"{url}/api/services", token,
              _with_token(judge_services, token)),
        Check("gateway /metrics", f"{url}/metrics", None, judge_metrics),
        Check("gateway / (WAIIDE)", f"{url}/", token, _with_token(judge_ide, token)),
    ]


def main_checks(base: str, prefix: str, token: str | None) -> list[Check]:
    """The main port: the hub's readiness URL, the status API and the IDE through the proxy."""
    root = base.rstrip("/") + "/" + prefix.strip("/")
    root = root.rstrip("/") + "/"
    health = base.rstrip("/") + "/api/status"
    checks = [Check("main /api/status", health, None, judge_status)]
    if prefix.strip("/"):  # with prefix "/" these are the same URL as the health check
        checks.append(Check(f"main {prefix}api/status", f"{root}api/status", token,
                            _with_token(judge_main_status, token)))
    return [
        *checks,
        Check(f"main {prefix}api", f"{root}api", None, judge_version),
        Check(f"main {prefix}WAIIDE/", f"{root}WAIIDE/", token,
              lambda reply: judge_ide(reply, token, MAIN_HINT)),
    ]


def run_check(check: Check, timeout_s: float, width: int = 28) -> bool:
    """Run one check and print its line (names padded to `width`)."""
    reply = fetch(check.url, check.token, timeout_s)
    if reply.error is not None:
        passed, reason, status = False, reply.error, "---"
    else:
        passed, reason = check.judge(reply)
        status = str(reply.status)
    print(f"{'PASS' if passed else 'FAIL'}  {check.name:<{width}}  {status:>3}  {check.url}  "
          f"{reason}", flush=True)
    return passed


def _first(*values: str | None) -> str | None:
    return next((value for value in values if value), None)


def runtime_file(environ: Mapping[str, str], api_port: str) -> Path:
    """Where a stack with this API_SERVER_PORT publishes its URLs and tokens."""
    named = (environ.get(RUNTIME_DIR_VAR) or "").strip()
    home = (environ.get("HOME") or "").strip()
    directory = Path(named) if named else (
        (Path(home) if home else Path.home()) / ".local" / "share" / "waiide-hub" / "runtime")
    return directory / f"stack-{api_port}.json"


def read_runtime_file(path: Path) -> tuple[dict[str, Any], str]:
    """The stack's published settings (empty when there are none) and a line saying so."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}, f"no runtime file {path}: no stack with this API_SERVER_PORT runs as this user"
    except (OSError, ValueError) as exc:
        return {}, f"runtime file {path} unreadable: {exc}"
    if not isinstance(data, dict):
        return {}, f"runtime file {path} is not a JSON object"
    return data, f"using the stack's runtime file {path} (pid {data.get('pid', '?')})"


def _port_of(url: str | None) -> str | None:
    if not url:
        return None
    try:
        port = urllib.parse.urlsplit(url).port
    except ValueError:
        return None
    return str(port) if port else None


def parse_args(argv: Sequence[str], environ: Mapping[str, str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Check every endpoint of a running WAIIDE Hub; one PASS/FAIL line each.")
    parser.add_argument("--gateway", default=None,
                        help="gateway base URL (default http://127.0.0.1:$API_SERVER_PORT, 8091)")
    parser.add_argument("--main", default=None,
                        help="main-port base URL (default http://127.0.0.1:$PORT, 8090)")
    parser.add_argument("--prefix", default=None,
                        help="server prefix on the main port (default $JUPYTERHUB_SERVICE_PREFIX "
                             "or /)")
    parser.add_argument("--token", default=None,
                        help="credential (default $GATEWAY_TOKEN, then $JUPYTERHUB_API_TOKEN)")
    parser.add_argument("--main-token", default=None,
                        help="credential for the main port (default $JUPYTER_TOKEN, then --token)")
    parser.add_argument("--no-gateway", action="store_true", help="skip the gateway checks")
    parser.add_argument("--no-main", action="store_true", help="skip the main-port checks")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S,
                        help=f"seconds per request (default {DEFAULT_TIMEOUT_S:g})")
    args = parser.parse_args(argv)
    if args.timeout <= 0:
        parser.error("--timeout must be > 0")
    if args.no_gateway and args.no_main:
        parser.error("--no-gateway and --no-main leave nothing to check")
    api_port = _port_of(args.gateway) or environ.get("API_SERVER_PORT") or "8091"
    stack, args.stack_note = read_runtime_file(runtime_file(environ, api_port))
    args.gateway = (args.gateway or stack.get("gateway_url")
                    or f"http://127.0.0.1:{environ.get('API_SERVER_PORT') or 8091}")
    args.main = (args.main or stack.get("main_url")
                 or f"http://127.0.0.1:{environ.get('PORT') or 8090}")
    args.prefix = (args.prefix or environ.get("JUPYTERHUB_SERVICE_PREFIX") or stack.get("prefix")
                   or "/")
    given = args.token  # an explicit --token counts for both ports
    args.token = _first(given, environ.get("GATEWAY_TOKEN"),
                        environ.get("JUPYTERHUB_API_TOKEN"), stack.get("gateway_token"))
    args.main_token = _first(args.main_token, environ.get("JUPYTER_TOKEN"), given,
                             environ.get("JUPYTERHUB_API_TOKEN"), stack.get("main_token"),
                             args.token)
    return args


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] = os.environ) -> int:
    """Run every check; the exit code (0 only when all passed)."""
    try:
        args = parse_args(sys.argv[1:] if argv is None else argv, environ)
    except SystemExit as exc:
        return EXIT_OK if exc.code == 0 else EXIT_USAGE
    print(f"test_api: {args.stack_note}", flush=True)
    checks: list[Check] = []
    if not args.no_gateway:
        checks += gateway_checks(args.gateway, args.token)
    if not args.no_main:
        checks += main_checks(args.main, args.prefix, args.main_token)
    width = max(len(check.name) for check in checks)
    results = [run_check(check, args.timeout, width) for check in checks]
    failed = results.count(False)
    print(f"test_api: {len(results) - failed} of {len(results)} endpoints passed")
    return EXIT_OK if failed == 0 else EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
