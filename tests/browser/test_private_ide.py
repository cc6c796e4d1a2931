"""The default stack on a real host: the IDE on a private socket, managed defaults, minimal open
endpoints, /absproxy with the public path — with the real code-server, Jupyter and the gateway.

The stack is `supervisor_main.py` in full mode, standalone, with nothing about the IDE's address
configured and no token given (fixture `full_stack`).

Scenarios:
 1. No TCP listener in the product's whole process tree except PORT and API_SERVER_PORT
    (psutil, every descendant), also after a workbench has connected (extension host running).
 2. The IDE's unix socket: a socket, owned by this user, mode 0600, in a 0700 directory.
 3. The IDE works through it: via the gateway (the generated token, kept in the user's data
    directory) and via Jupyter's proxy at /WAIIDE/ (the Jupyter token, kept likewise).
 4. A dev server behind `/absproxy/<port>/` sees the public path (`/WAIIDE/absproxy/<port>/...`)
    whether reached through Jupyter's /WAIIDE/ or through the gateway's port.
 5. Anonymous /api, /api/status and /api/services answer without the user name, addresses,
    pids or ports; with the token they show them.
 6. The workbench (Chromium) opened with only the managed machine settings: no Welcome page, no
    secondary side bar (chat), and its Remote settings are the managed ones (telemetry off,
    update checks off).
"""

from __future__ import annotations

import getpass
import http.server
import json
import os
import stat
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil  # type: ignore[import-untyped]
import pytest
from playwright.sync_api import Locator, Page
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from tests.browser.ide import Stack, supervised_stack
from tests.browser.workbench import (
    open_workbench,
    run_command,
    screenshot,
    wait_connected,
    wait_until,
)

pytestmark = pytest.mark.slow

READY_TIMEOUT_S = 90.0


def _wait_ready(stack: Stack) -> None:
    """Until the supervisor's banner says every child is ready (Jupyter starts last)."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    while "WAIIDE Hub is ready" not in stack.log.read_text(errors="replace"):
        if time.monotonic() > deadline:
            raise TimeoutError(f"stack not ready:\n{stack.log.read_text()[-3000:]}")
        time.sleep(0.2)


@pytest.fixture(scope="module")
def full_stack(tmp_path_factory: pytest.TempPathFactory, code_server: Path) -> Iterator[Stack]:
    with supervised_stack(tmp_path_factory.mktemp("private"), code_server, full=True,
                          token=None, user_settings=False) as stack:
        _wait_ready(stack)
        yield stack


def _data_home(stack: Stack) -> Path:
    assert stack.env is not None
    return Path(stack.env["XDG_DATA_HOME"])


def _jupyter_token(stack: Stack) -> str:
    return (_data_home(stack) / "waiide-hub" / f"jupyter-token-{stack.gateway_port}").read_text().strip()


def _socket(stack: Stack) -> Path:
    assert stack.env is not None
    return Path(stack.env["XDG_RUNTIME_DIR"]) / f"waiide-hub-{stack.gateway_port}" / "waiide.sock"


def _active_editor(page: Page) -> Locator:
    return page.locator(".editor-group-container.active .monaco-editor").first


def _open_remote_settings(page: Page, attempts: int = 4) -> None:
    """The command appears once the workbench knows its remote (a moment after connecting)."""
    for attempt in range(attempts):
        try:
            run_command(page, "Preferences: Open Remote Settings (JSON)", timeout_s=5.0)
            return
        except PlaywrightTimeout:
            if attempt == attempts - 1:
                raise
            page.keyboard.press("Escape")


def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
    request = urllib.request.Request(url, headers=headers or {})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=30) as reply:
            return reply.status, reply.read().decode(errors="replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")


def _tcp_listeners(root_pid: int) -> dict[int, str]:
    """Listening TCP port -> the process holding it, over the whole tree under `root_pid`."""
    root = psutil.Process(root_pid)
    found: dict[int, str] = {}
    for proc in [root, *root.children(recursive=True)]:
        try:
            for conn in proc.net_connections(kind="inet"):
                if conn.status == psutil.CONN_LISTEN:
                    found[conn.laddr.port] = f"{proc.pid} {' '.join(proc.cmdline())[:100]}"
        except psutil.NoSuchProcess:
            continue  # a short-lived helper ended while we looked
    return found


def test_only_port_and_api_port_listen_on_tcp(full_stack: Stack) -> None:
    listeners = _tcp_listeners(full_stack.pid)
    assert set(listeners) == {full_stack.port, full_stack.gateway_port}, listeners


def test_the_ide_socket_is_private(full_stack: Stack) -> None:
    sock = _socket(full_stack)
    info = os.stat(sock)
    assert stat.S_ISSOCK(info.st_mode)
    assert info.st_uid == os.getuid()
    assert stat.S_IMODE(info.st_mode) == 0o600
    assert stat.S_IMODE(os.stat(sock.parent).st_mode) == 0o700
    log = full_stack.log.read_text()
    assert "--socket" in " ".join(psutil.Process(full_stack.pid).children()[0].cmdline()), log


def test_the_ide_answers_through_the_gateway_and_jupyter(full_stack: Stack) -> None:
    status, body = _get(f"{full_stack.origin}/", {"Authorization": f"token {full_stack.token}"})
    assert status == 200 and "vscode" in body.lower(), body[:300]
    jupyter = {"Authorization": f"token {_jupyter_token(full_stack)}"}
    status, body = _get(f"http://127.0.0.1:{full_stack.port}/WAIIDE/", jupyter)
    assert status == 200 and "vscode" in body.lower(), body[:300]
    # the kept tokens are private files of this user
    for name in (f"gateway-token-{full_stack.gateway_port}", f"jupyter-token-{full_stack.gateway_port}"):
        assert stat.S_IMODE((_data_home(full_stack) / "waiide-hub" / name).stat().st_mode) == 0o600


class _PathEcho(http.server.BaseHTTPRequestHandler):
    """Answers every GET with the path it received."""

    def do_GET(self) -> None:
        body = json.dumps({"path": self.path}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass  # quiet: the test asserts on the answers


@pytest.fixture
def dev_server() -> Iterator[int]:
    """A real small HTTP server (a user's dev server) on a free loopback port."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _PathEcho)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_absproxy_gets_the_public_path(full_stack: Stack, dev_server: int) -> None:
    public = f"/WAIIDE/absproxy/{dev_server}/app/page?x=1"
    jupyter = {"Authorization": f"token {_jupyter_token(full_stack)}"}
    status, body = _get(f"http://127.0.0.1:{full_stack.port}{public}", jupyter)
    assert status == 200, body[:300]
    assert json.loads(body)["path"] == public  # what the browser's address bar shows
    gateway = {"Authorization": f"token {full_stack.token}"}
    status, body = _get(f"{full_stack.origin}{public}", gateway)
    assert status == 200, body[:300]
    assert json.loads(body)["path"] == public


@pytest.mark.parametrize("path", ["/api", "/api/status", "/api/services"])
def test_anonymous_api_is_minimal(full_stack: Stack, path: str) -> None:
    status, body = _get(f"{full_stack.origin}{path}")
    assert status in (200, 503), body
    for hidden in (getpass.getuser(), "127.0.0.1", str(full_stack.port),
                   str(full_stack.gateway_port), "unix:", "waiide.sock", '"pid"'):
        assert hidden not in body, (path, hidden, body)
    if path != "/api":
        listed = json.loads(body)["components" if path == "/api/status" else "services"]
        assert listed["waiide"]["state"] == "up", body
    status, body = _get(f"{full_stack.origin}{path}",
                        {"Authorization": f"token {full_stack.token}"})
    assert status in (200, 503)
    full = json.loads(body)
    if path == "/api":
        assert full["user"] == getpass.getuser()
    elif path == "/api/services":
        assert full["services"]["waiide"]["pid"] > 0
        assert str(_socket(full_stack)) in full["services"]["waiide"]["url"]


@pytest.mark.timeout(150)
def test_workbench_has_the_managed_defaults(full_stack: Stack,
                                            browser: Callable[..., Page]) -> None:
    page = browser()
    open_workbench(page, f"{full_stack.origin}/?token={full_stack.token}")
    wait_connected(page)
    screenshot(page, "managed-defaults-workbench")
    tabs = page.locator(".tabs-container .tab").all_inner_texts()
    assert not any("Welcome" in tab for tab in tabs), tabs
    assert not page.locator(".part.auxiliarybar").is_visible(), "the secondary side bar is open"
    _open_remote_settings(page)
    wait_until(page, lambda: '"telemetry.telemetryLevel"' in _active_editor(page).inner_text(),
               15.0, "the Remote settings in the editor")
    text = " ".join(_active_editor(page).inner_text().split())
    screenshot(page, "managed-defaults-remote-settings")
    for setting in ('"telemetry.telemetryLevel": "off"', '"update.mode": "none"',
                    '"extensions.autoCheckUpdates": false'):
        assert setting in text, text
    # with the workbench (and its extension host) running, still no other TCP listener
    assert set(_tcp_listeners(full_stack.pid)) == {full_stack.port, full_stack.gateway_port}
