"""The real VS Code workbench through a real JupyterHub, in full mode, in headless Chromium.

A hub of its own (examples/jupyterhub_config_local.py, the real configurable-http-proxy, the
shared-password authenticator) spawns alice's default server with the supervisor's
default IDE: the real code-server, not the stand-in the other e2e tests use. Full mode, so every
request of the browser goes hub's proxy (CHP) → jupyterhub-singleuser (hub OAuth) →
jupyter-server-proxy → the gateway → code-server.

code-server keeps its user data in `$XDG_DATA_HOME/code-server`, which is `$HOME/.local/share`
here: the spawner gives the server HOME = JH_RUN_DIR/home/alice and none of the hub's XDG_*
variables, so the test user settings (`tests.browser.workbench.write_user_settings`: the
terminal's DOM renderer, no Welcome page) are written there before the spawn. The workspace is
WAIIDE_WORKSPACE (passed on to the server by the config) under that home.

Scenario, with a screenshot of each step in test-artifacts/browser/hub-*.png:
 1. The login form at /hub/login?next=/user/alice/WAIIDE/ refuses a wrong password, and
    with alice's password lands, after the OAuth redirects, on /user/alice/WAIIDE/.
 2. The workbench renders and connects: the Explorer lists the workspace file (read over the
    remote WebSocket), whose sockets run through the hub's proxy at that path and are relayed
    by the gateway; no connection problem on screen.
 3. The file opened from the Explorer, typed into and saved with Ctrl+S is changed on disk.
 4. A terminal opened in the IDE runs a command whose output appears in it and whose file
    appears on disk.
Then the server and the hub stop with none of their processes (terminals included) left.
"""

from __future__ import annotations

import contextlib
import os
import re
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit

import psutil
import pytest
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Page

from tests.browser.workbench import (
    ARTIFACTS_DIR,
    INSTALL_HINT,
    RemoteSockets,
    WorkbenchError,
    assert_no_connection_problem,
    chromium_page,
    code_server_binary,
    open_file,
    require_chromium,
    run_in_terminal,
    screenshot,
    terminal_text,
    type_and_save,
    wait_connected,
    wait_file_text,
    wait_until,
    write_user_settings,
)
from tests.e2e.hub import CHP, HubProcess, ProcInfo, kill_leftovers, start_hub
from tests.e2e.servers import USER, WaiideServer, spawn, stop

pytestmark = pytest.mark.slow  # a real JupyterHub, code-server and Chromium

PASSWORD = "alice-browser-test-pw"  # JH_PASSWORD: the shared-password authenticator
IDE_PATH = "WAIIDE/"  # where full mode's jupyter-server-proxy serves WAIIDE under the prefix
WORKSPACE_FILE = "hello-hub.txt"
WORKSPACE_TEXT = "hello from alice's workspace\n"
OUTPUT_FILE = "hub-terminal-out.txt"
LOGIN_TIMEOUT_S = 30.0  # login POST + OAuth round trip + the workbench's first paint
SHOT = "hub-"


@dataclass
class IdeServer:
    """alice's running server with the real code-server, and where its files are."""

    server: WaiideServer
    workspace: Path

    @property
    def hub(self) -> HubProcess:
        return self.server.hub


def _require_tools() -> None:
    """Fail (never skip) with the install command if Chromium, code-server or CHP is missing."""
    missing = []
    for check in (require_chromium, code_server_binary):
        try:
            check()
        except WorkbenchError as exc:
            missing.append(str(exc))
    if not os.access(CHP, os.X_OK):
        missing.append(f"configurable-http-proxy is missing at {CHP}: {INSTALL_HINT}")
    if missing:
        pytest.fail("\n".join(missing), pytrace=False)


def _code_server_env(server: WaiideServer) -> dict[str, str]:
    """The environment of the server's code-server (the supervisor's `waiide` child)."""
    for proc in psutil.Process(server.pid).children(recursive=True):
        with contextlib.suppress(psutil.Error):  # a short-lived helper may be gone already
            argv = proc.cmdline()
            if ("--bind-addr" in argv or "--socket" in argv) \
                    and any("code-server" in arg for arg in argv):
                return dict(proc.environ())
    raise server.hub.fail(f"no code-server among the server's processes: {server.snapshot()}")


@pytest.fixture
def ide_server(tmp_path: Path) -> Iterator[IdeServer]:
    """A full-mode hub whose servers run the real code-server; alice's server spawned on it.

    Teardown: stop the server through the hub, then the hub; fails if anything had to be killed.
    """
    _require_tools()
    run_dir = tmp_path / "hub"
    run_dir.mkdir()
    home = run_dir / "home" / USER  # the config's home_dir_template
    workspace = home / "workspace"
    workspace.mkdir(parents=True)
    (workspace / WORKSPACE_FILE).write_text(WORKSPACE_TEXT)
    write_user_settings(home / ".local" / "share")
    hub = start_hub(run_dir, "full", waiide_command=None, env={
        "JH_PASSWORD": PASSWORD,
        "WAIIDE_WORKSPACE": str(workspace),
        "WAIIDE_READY_TIMEOUT": "60",  # code-server takes ~5 s idle, more on busy cores
    })
    leftovers: list[ProcInfo] = []
    try:
        hub.wait_healthy()
        server = spawn(hub)
        env = _code_server_env(server)
        # Where code-server reads the settings written above (see the module docstring).
        assert env.get("HOME") == str(home) and "XDG_DATA_HOME" not in env, hub.fail(
            f"code-server runs with HOME={env.get('HOME')!r} "
            f"XDG_DATA_HOME={env.get('XDG_DATA_HOME')!r}; the test settings are under {home}")
        yield IdeServer(server, workspace)
        if hub.api.server(USER) is not None:
            _, alive = stop(server)
            leftovers = kill_leftovers(alive)
    finally:
        leftovers += hub.stop()
    assert not leftovers, hub.fail(f"processes outlived the stop and had to be killed: "
                                   f"{leftovers}")
    assert hub.proc.returncode == 0, hub.fail(f"jupyterhub exited with {hub.proc.returncode}")


def _gateway_websockets_open(server: WaiideServer) -> int:
    """waiide_hub_websocket_connections_open from the gateway's /metrics (its own port)."""
    with urllib.request.urlopen(f"{server.gateway_url}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    match = re.search(r"^waiide_hub_websocket_connections_open(?:\{[^}]*\})? (\S+)$", text,
                      re.MULTILINE)
    assert match, f"no websocket_connections_open in the gateway's /metrics:\n{text[:2000]}"
    return int(float(match.group(1)))


def _submit_login(page: Page, password: str, shot: str | None = None) -> None:
    """Fill and submit the hub's login form as a person would; screenshot it filled in."""
    page.fill("#username_input", USER)
    page.fill("#password_input", password)
    if shot:
        screenshot(page, shot)
    page.click("#login_submit")


# About 25 s on two idle cores, 35 s with six busy loops on them: the default 120 s holds.
def test_workbench_through_the_hub_in_full_mode(ide_server: IdeServer, tmp_path: Path) -> None:
    for old in ARTIFACTS_DIR.glob(f"{SHOT}*.png"):  # this test's screenshots of an earlier run
        old.unlink()
    hub, server = ide_server.hub, ide_server.server
    ide_path = server.prefix + IDE_PATH  # /user/alice/WAIIDE/, the README's URL
    edited = ide_server.workspace / WORKSPACE_FILE
    output = ide_server.workspace / OUTPUT_FILE
    failed = True
    with chromium_page(tmp_path / "chromium") as page:
        try:
            sockets = RemoteSockets(page)
            login_url = f"{hub.url}/hub/login?next={quote(ide_path)}"

            # 1. The login form: a wrong password is refused, alice's lands on the IDE.
            page.goto(login_url, wait_until="domcontentloaded")
            _submit_login(page, "not-" + PASSWORD)
            page.get_by_text("Invalid username or password").wait_for(state="visible")
            assert urlsplit(page.url).path == "/hub/login", page.url
            page.goto(login_url, wait_until="domcontentloaded")
            _submit_login(page, PASSWORD, f"{SHOT}1-login-form")
            page.wait_for_url(lambda url: urlsplit(url).path == ide_path,
                              wait_until="domcontentloaded", timeout=LOGIN_TIMEOUT_S * 1000)
            assert page.url.startswith(hub.url + ide_path), page.url

            # 2. The workbench renders and its remote connection is up, through the hub.
            page.locator(".monaco-workbench").wait_for(state="visible",
                                                       timeout=LOGIN_TIMEOUT_S * 1000)
            wait_connected(page, WORKSPACE_FILE)
            ws_base = hub.url.replace("http", "ws", 1) + ide_path
            live = sockets.live()
            assert live and all(s.url.startswith(ws_base) for s in live), (ws_base, live)
            # ... relayed by the gateway: Jupyter's proxy points at it, not at code-server.
            wait_until(page, lambda: _gateway_websockets_open(server) >= len(live), 10.0,
                       f"the gateway relaying the workbench's {len(live)} WebSockets")
            screenshot(page, f"{SHOT}2-workbench-connected")

            # 3. Open, edit and save the file through the editor; the change is on disk.
            open_file(page, WORKSPACE_FILE)
            screenshot(page, f"{SHOT}3-file-opened")
            typed = "typed in Chromium through JupyterHub"
            type_and_save(page, typed)
            assert wait_file_text(page, edited, typed) == WORKSPACE_TEXT + typed
            screenshot(page, f"{SHOT}4-file-saved")

            # 4. A terminal runs a command: its output shows, its file is on disk.
            command = f"echo waiide-$((6*7)) > {OUTPUT_FILE}; cat {OUTPUT_FILE}"
            run_in_terminal(page, command, expect="waiide-42")
            assert wait_file_text(page, output, "waiide-42") == "waiide-42\n"
            screenshot(page, f"{SHOT}5-terminal-output")
            assert "waiide-42" in terminal_text(page)
            assert_no_connection_problem(page)
            assert urlsplit(page.url).path == ide_path, page.url
            server.snapshot()  # the terminal's shell too: the stop must leave none of it
            failed = False
        finally:
            if failed:  # a diagnostic only: the page may have gone down with the failure
                with contextlib.suppress(PlaywrightError):
                    screenshot(page, f"{SHOT}FAILED")
