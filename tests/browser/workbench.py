"""Driving the real VS Code workbench (code-server) in headless Debian Chromium, for the tests.

A small library on playwright's sync API, independent of how the IDE is reached (the gateway's
port, a JupyterHub URL): every helper takes a `Page` that is, or will be, showing the workbench.

    with chromium_page(tmp / "chromium") as page:
        open_workbench(page, f"{gateway}/?token={token}")
        wait_connected(page, "hello.txt")
        open_file(page, "hello.txt")
        type_and_save(page, "added in the browser")
        text = run_in_terminal(page, "echo waiide-$((6*7))", expect="waiide-42")
        screenshot(page, "edited")

Facts about code-server 4.139.1 the helpers rely on (see
code-server's documented behaviour in a real browser):

- `.monaco-workbench` appears about 4 s after the page starts loading; the Explorer lists the
  folder only once the remote connection (a WebSocket to `/stable-<commit>?reconnectionToken=…`)
  is up, because the folder is read over that connection. That listing is the connected signal.
- The terminal draws on a canvas (WebGL) unless `terminal.integrated.gpuAcceleration` is "off";
  only the DOM renderer puts its text in the page (`.xterm-rows`). `write_user_settings` writes
  that setting where code-server reads it; without it, `terminal_text` sees nothing.
- The workbench retries a broken connection after 0, 5, 5, 10 … s with the same
  reconnectionToken (`RemoteSockets` watches that). It shows "Disconnected. Attempting to
  reconnect…" only once nothing came from the server for 40 s (`ykn=40*1e3` in workbench.js), so
  a short outage leaves the screen unchanged; "Cannot reconnect. Please reload the window." is a
  modal dialog shown when the server refuses the token (e.g. the IDE itself restarted).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import (
    Locator,
    Page,
    ViewportSize,
    WebSocket,
    sync_playwright,
)
from playwright.sync_api import TimeoutError as PlaywrightTimeout

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS_DIR = ROOT / "test-artifacts" / "browser"
CHROMIUM = "/usr/bin/chromium"
INSTALL_HINT = "install it with `scripts/setup.sh test` (or `make setup-test`)"
# The launch flags that work on these machines (code-server-install.md, "In a real browser").
BROWSER_ARGS = ("--no-sandbox", "--disable-gpu", "--disable-quic",
                "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--no-first-run")
VIEWPORT: ViewportSize = {"width": 1280, "height": 800}
WORKBENCH_TIMEOUT_S = 30.0
CONNECT_TIMEOUT_S = 30.0
ACTION_TIMEOUT_S = 15.0
# User settings for test IDEs: the terminal's DOM renderer (readable text), no Welcome page or
# update and extension checks (there is no internet here).
TEST_USER_SETTINGS: Mapping[str, Any] = {
    "terminal.integrated.gpuAcceleration": "off",
    "workbench.startupEditor": "none",
    "workbench.tips.enabled": False,
    "extensions.autoCheckUpdates": False,
    "extensions.autoUpdate": False,
    "update.mode": "none",
    "telemetry.telemetryLevel": "off",
    "files.autoSave": "off",
    # Ports other processes on the machine listen on would pop up "available" notifications.
    "remote.autoForwardPorts": False,
    # The Chat view would take a third of the window in every screenshot.
    "chat.disableAIFeatures": True,
    "workbench.secondarySideBar.defaultVisibility": "hidden",
}
CONNECTION_PROBLEM = re.compile(
    r"reconnect|connection (?:lost|error|failed|closed)|disconnected|websocket", re.IGNORECASE)
_PROBLEM_SURFACES = (".monaco-dialog-box", ".notifications-toasts .notification-toast",
                     ".notifications-center .notification-list-item")
# Window.showDirectoryPicker (File System Access API) is answered by a native folder dialog that
# headless Chromium cannot show. Without it, the Explorer's "Download..." of a file over 32 MiB
# asks the browser to download the file's `vscode-remote-resource` URL instead, which is what
# Firefox and Safari users always get (VS Code `fileImportExport.ts: doDownloadBrowser`).
_NO_DIRECTORY_PICKER = """
delete Window.prototype.showDirectoryPicker;
delete window.showDirectoryPicker;
"""


class WorkbenchError(AssertionError):
    """The workbench did not do what a step expected; the message says what it showed."""


def require_chromium() -> str:
    """The Chromium binary, or a failure that says how to install it (never a skip)."""
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        raise WorkbenchError(f"Debian chromium is missing at {CHROMIUM}: {INSTALL_HINT}")
    return CHROMIUM


def code_server_binary(environ: Mapping[str, str] = os.environ) -> Path:
    """The code-server scripts/setup.sh installs, or a failure that says how to install it."""
    home = environ.get("WAIIDE_HUB_HOME") or os.path.join(environ.get("HOME", "~"), ".cache",
                                                          "waiide-hub")
    binary = Path(os.path.expanduser(home)) / "code-server" / "bin" / "code-server"
    if not os.access(binary, os.X_OK):
        raise WorkbenchError(f"code-server is missing at {binary}: {INSTALL_HINT}")
    return binary


def write_user_settings(xdg_data_home: Path,
                        settings: Mapping[str, Any] = TEST_USER_SETTINGS) -> Path:
    """Write code-server's user settings under `xdg_data_home` (run it with XDG_DATA_HOME set).

    code-server keeps its user data in `$XDG_DATA_HOME/code-server` (env-paths); the workbench
    reads `User/settings.json` there over the remote connection.
    """
    path = xdg_data_home / "code-server" / "User" / "settings.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(dict(settings), indent=2))
    return path


@contextlib.contextmanager
def chromium_page(user_data_dir: Path, *, downloads: Path | None = None,
                  directory_picker: bool = True) -> Iterator[Page]:
    """A page in a fresh headless Chromium profile at `user_data_dir`; always closed.

    Args:
        user_data_dir: an empty folder (a fresh profile: no stored workbench state).
        downloads: accept downloads into this folder (playwright removes them with the browser).
        directory_picker: False hides the File System Access folder picker, which headless
            Chromium cannot answer (see `_NO_DIRECTORY_PICKER`).
    """
    binary = require_chromium()
    user_data_dir.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(user_data_dir), executable_path=binary, headless=True, args=list(BROWSER_ARGS),
            viewport=VIEWPORT, accept_downloads=downloads is not None,
            downloads_path=str(downloads) if downloads else None)
        try:
            if not directory_picker:
                context.add_init_script(_NO_DIRECTORY_PICKER)
            context.set_default_timeout(ACTION_TIMEOUT_S * 1000)
            yield context.pages[0] if context.pages else context.new_page()
        finally:
            context.close()


def _ms(seconds: float) -> float:
    return seconds * 1000


def open_workbench(page: Page, url: str, timeout_s: float = WORKBENCH_TIMEOUT_S) -> None:
    """Load `url` and wait until the VS Code workbench is rendered (`.monaco-workbench`)."""
    page.goto(url, wait_until="domcontentloaded", timeout=_ms(timeout_s))
    page.locator(".monaco-workbench").wait_for(state="visible", timeout=_ms(timeout_s))


def explorer_item(page: Page, name: str) -> Locator:
    """The Explorer row of `name` (a file or folder at any expanded level)."""
    return page.locator(".explorer-folders-view").get_by_role("treeitem", name=name, exact=True)


def wait_connected(page: Page, name: str | None = None,
                   timeout_s: float = CONNECT_TIMEOUT_S) -> None:
    """Wait until the remote connection is up: the Explorer lists `name` (or any entry).

    The folder is read over the workbench's WebSocket, so its listing proves the connection.
    Raises WorkbenchError if a connection problem is on screen.
    """
    rows = explorer_item(page, name) if name else \
        page.locator(".explorer-folders-view").get_by_role("treeitem")
    try:
        rows.first.wait_for(state="visible", timeout=_ms(timeout_s))
    except PlaywrightTimeout as exc:  # say what the page showed instead
        raise WorkbenchError(f"the Explorer did not list {name or 'anything'} within "
                             f"{timeout_s}s; connection problems on screen: "
                             f"{connection_problems(page)}") from exc
    assert_no_connection_problem(page)


def connection_problems(page: Page) -> list[str]:
    """Texts of visible dialogs and notifications that report a connection problem."""
    found = []
    for selector in _PROBLEM_SURFACES:
        for element in page.locator(selector).all():
            with contextlib.suppress(PlaywrightError):  # an element may vanish while we read it
                if element.is_visible():
                    text = " ".join(element.inner_text(timeout=1000).split())
                    if CONNECTION_PROBLEM.search(text):
                        found.append(text)
    return found


def assert_no_connection_problem(page: Page) -> None:
    """Raise WorkbenchError if a reconnecting/connection-error dialog or notification shows."""
    problems = connection_problems(page)
    if problems:
        raise WorkbenchError(f"the workbench reports a connection problem: {problems}")


def wait_until(page: Page, check: Callable[[], bool], timeout_s: float, what: str,
               interval_s: float = 0.2) -> None:
    """Poll `check` until it is true; WorkbenchError naming `what` after `timeout_s`.

    Waits with `page.wait_for_timeout`, not `time.sleep`: playwright's sync API delivers page
    events (WebSocket frames, downloads) only while the caller is inside a playwright call.
    """
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise WorkbenchError(f"{what}: not within {timeout_s}s")
        page.wait_for_timeout(interval_s * 1000)


def wait_file_text(page: Page, path: Path, expected: str,
                   timeout_s: float = ACTION_TIMEOUT_S) -> str:
    """Poll `path` on disk until it contains `expected`; returns its text."""
    def has_it() -> bool:
        return path.is_file() and expected in path.read_text(errors="replace")

    try:
        wait_until(page, has_it, timeout_s, f"{path} containing {expected!r}")
    except WorkbenchError as exc:
        now = path.read_text(errors="replace") if path.is_file() else "<missing>"
        raise WorkbenchError(f"{exc}; it holds {now!r}") from None
    return path.read_text()


def _active_editor(page: Page) -> Locator:
    return page.locator(".editor-group-container.active .monaco-editor").first


def _tab(page: Page, name: str) -> Locator:
    return page.locator(f'.tabs-container .tab[data-resource-name="{name}"]').first


def open_file(page: Page, name: str, timeout_s: float = ACTION_TIMEOUT_S) -> None:
    """Open `name` from the Explorer (double-click: a pinned editor) and wait for its editor."""
    explorer_item(page, name).dblclick(timeout=_ms(timeout_s))
    _tab(page, name).wait_for(state="visible", timeout=_ms(timeout_s))
    _active_editor(page).locator(".view-lines").wait_for(state="visible", timeout=_ms(timeout_s))


def type_and_save(page: Page, text: str, timeout_s: float = ACTION_TIMEOUT_S) -> None:
    """Type `text` at the end of the active editor, save with Ctrl+S, wait until it is clean.

    Type plain text: the editor auto-closes brackets and quotes.
    """
    editor = _active_editor(page)
    editor.locator(".view-lines").click(timeout=_ms(timeout_s))
    page.keyboard.press("Control+End")
    page.keyboard.type(text)
    dirty = page.locator(".editor-group-container.active .tabs-container .tab.active.dirty")
    dirty.wait_for(state="visible", timeout=_ms(timeout_s))
    page.keyboard.press("Control+S")
    dirty.wait_for(state="detached", timeout=_ms(timeout_s))


def _terminal(page: Page) -> Locator:
    return page.locator(".terminal-wrapper.active .xterm").first


def open_terminal(page: Page, timeout_s: float = ACTION_TIMEOUT_S) -> None:
    """Show the terminal and wait for its shell prompt.

    Ctrl+` shows the terminal panel and creates a terminal if there is none; if the shortcut
    does not reach the workbench, "Terminal: Create New Terminal" from the command palette.
    """
    page.keyboard.press("Control+Backquote")
    try:
        _terminal(page).wait_for(state="visible", timeout=_ms(min(5.0, timeout_s)))
    except PlaywrightTimeout:  # the shortcut did not reach the workbench; use the palette
        run_command(page, "Terminal: Create New Terminal")
        _terminal(page).wait_for(state="visible", timeout=_ms(timeout_s))
    wait_until(page, lambda: terminal_text(page).strip() != "", timeout_s, "a shell prompt")


def run_command(page: Page, title: str, timeout_s: float = ACTION_TIMEOUT_S) -> None:
    """Run a command by its title from the command palette (F1)."""
    page.keyboard.press("F1")
    box = page.locator(".quick-input-widget input")
    box.wait_for(state="visible", timeout=_ms(timeout_s))
    box.fill(f">{title}")
    page.locator(".quick-input-list .monaco-list-row", has_text=title).first.wait_for(
        state="visible", timeout=_ms(timeout_s))
    page.keyboard.press("Enter")


def terminal_text(page: Page) -> str:
    """The visible text of the active terminal (DOM renderer rows, else the a11y buffer)."""
    terminal = _terminal(page)
    for selector in (".xterm-rows > div", ".xterm-accessibility-tree > div"):
        rows = terminal.locator(selector).all_text_contents()
        if any(row.strip() for row in rows):
            return "\n".join(row.replace("\xa0", " ").rstrip() for row in rows)
    return ""


def run_in_terminal(page: Page, command: str, expect: str | re.Pattern[str] | None = None,
                    timeout_s: float = ACTION_TIMEOUT_S) -> str:
    """Type `command` into the active terminal (opening one if none), wait for `expect`.

    Returns the terminal's text once `expect` shows up in it after the command line
    (or right after the command was sent, if `expect` is None).
    """
    if not _terminal(page).is_visible():
        open_terminal(page, timeout_s)
    _terminal(page).click()
    page.keyboard.type(command)
    page.keyboard.press("Enter")
    if expect is None:
        return terminal_text(page)
    pattern = expect if isinstance(expect, re.Pattern) else re.compile(re.escape(expect))

    def shown() -> bool:
        text = terminal_text(page)
        # The output, not the echo of the command line: look after the line that has it.
        # A command line wrapped over rows is not found verbatim: then search all the text.
        tail = text.split(command, 1)[-1] if command in text else text
        return bool(pattern.search(tail))

    wait_until(page, shown, timeout_s, f"terminal output {pattern.pattern!r} after {command!r}")
    return terminal_text(page)


def screenshot(page: Page, name: str, folder: Path = ARTIFACTS_DIR) -> Path:
    """Save a full-window PNG as `folder/name.png` (test-artifacts/ is git-ignored)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    page.screenshot(path=str(path))
    return path


def reset_artifacts(folder: Path = ARTIFACTS_DIR) -> None:
    """Remove the screenshots of an earlier run, so the folder shows this run only."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True, exist_ok=True)


@dataclass
class RemoteSocket:
    """One WebSocket of the workbench's remote connection, as the browser saw it."""

    url: str
    frames_received: int = 0
    closed: bool = False
    error: str | None = None

    @property
    def reconnection_token(self) -> str:
        """The connection this socket carries (kept across reconnections)."""
        return parse_qs(urlsplit(self.url).query).get("reconnectionToken", [""])[0]

    @property
    def is_reconnection(self) -> bool:
        return parse_qs(urlsplit(self.url).query).get("reconnection", [""])[0] == "true"


class RemoteSockets:
    """Records the remote-connection WebSockets a page opens (`?reconnectionToken=…`).

    The workbench opens two (management and extension host). When one breaks it opens new ones
    with the same reconnectionToken and `reconnection=true`, and the server resumes the session;
    a reload would start new tokens with `reconnection=false` instead.
    Create it before the page loads the workbench.
    """

    def __init__(self, page: Page) -> None:
        self.sockets: list[RemoteSocket] = []
        page.on("websocket", self._opened)

    def _opened(self, websocket: WebSocket) -> None:
        if "reconnectionToken=" not in websocket.url:
            return
        record = RemoteSocket(websocket.url)
        self.sockets.append(record)

        def on_frame(_: object) -> None:
            record.frames_received += 1

        def on_close(_: object) -> None:
            record.closed = True

        def on_error(message: str) -> None:
            record.error = message

        websocket.on("framereceived", on_frame)
        websocket.on("close", on_close)
        websocket.on("socketerror", on_error)

    def live(self) -> list[RemoteSocket]:
        """Sockets open now that have received data."""
        return [s for s in self.sockets if not s.closed and s.frames_received > 0]

    def wait_all_closed(self, page: Page, timeout_s: float = CONNECT_TIMEOUT_S) -> None:
        """Wait until the browser has seen every remote socket close."""
        wait_until(page, lambda: bool(self.sockets) and not self.live(), timeout_s,
                   f"the remote WebSockets closing ({self.sockets})")

    def wait_resumed(self, page: Page, tokens: set[str],
                     timeout_s: float = CONNECT_TIMEOUT_S) -> list[RemoteSocket]:
        """Wait until each of `tokens` is carried again by a live `reconnection=true` socket."""
        def resumed() -> list[RemoteSocket]:
            return [s for s in self.live() if s.is_reconnection and s.reconnection_token in tokens]

        wait_until(page, lambda: {s.reconnection_token for s in resumed()} == tokens, timeout_s,
                   f"the workbench resuming connections {sorted(tokens)} ({self.sockets})")
        return resumed()
