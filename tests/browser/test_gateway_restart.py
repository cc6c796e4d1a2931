"""The open workbench survives a restart of the gateway in front of it, without a reload.

code-server and the gateway are started here (not by the supervisor) so the gateway can be
stopped and started again on the same port while the IDE keeps running. The IDE listens on a
unix socket, as the supervisor runs it by default (supervisor/ide_socket.py).

Scenario:
 1. Workbench open through the gateway (token flow), a file edited and saved, a terminal open.
 2. The gateway is stopped (process group): the browser sees both remote WebSockets close.
 3. A few seconds later the gateway starts again on the same port. The page resumes its
    connections by itself: new `reconnection=true` WebSockets with the *same* reconnection
    tokens carry data, the page was not reloaded, and no "Cannot reconnect" dialog shows.
 4. An edit saved after the restart reaches disk, and the terminal opened before the restart
    still runs commands.
 5. Control: when the IDE itself restarts (a new code-server that does not know the page's
    reconnection tokens), the workbench shows "Cannot reconnect. Please reload the window." and
    `connection_problems` reports it — so its empty answer in 3 and 4 means something.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page

from tests.browser.ide import (
    TOKEN,
    WORKSPACE_FILE,
    ide_env,
    make_workspace,
    running_tree,
)
from tests.browser.workbench import (
    RemoteSockets,
    WorkbenchError,
    assert_no_connection_problem,
    connection_problems,
    open_file,
    open_workbench,
    run_in_terminal,
    screenshot,
    type_and_save,
    wait_connected,
    wait_file_text,
    wait_until,
)
from tests.procs import PYTHON, ROOT, free_port, running

pytestmark = pytest.mark.slow  # headless Chromium with the real code-server

GATEWAY_DOWN_S = 3.0
# VS Code retries after 0, 5, 5, 10, 10 … s (`remoteAgentConnection.ts`); a restart within a few
# seconds is picked up by the second or third attempt.
RESUME_TIMEOUT_S = 45.0
_MARK = "window.__waiideNotReloaded"


@pytest.fixture
def ide_socket() -> Iterator[Path]:
    """A socket path in a fresh 0700 directory, short enough for AF_UNIX (107 bytes)."""
    directory = Path(tempfile.mkdtemp(prefix="waiide-test-"))
    try:
        yield directory / "waiide.sock"
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _wait_unix_http(path: Path, timeout_s: float) -> None:
    """Until GET /healthz over the unix socket `path` gets any answer."""
    deadline = time.monotonic() + timeout_s
    while True:
        with contextlib.suppress(OSError), \
                socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:  # not listening yet
            sock.settimeout(5)
            sock.connect(str(path))
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            if sock.recv(16).startswith(b"HTTP/1."):
                return
        if time.monotonic() > deadline:
            raise TimeoutError(f"code-server not answering on {path} within {timeout_s}s")
        time.sleep(0.2)


@contextlib.contextmanager
def _code_server(base: Path, code_server: Path, workspace: Path, sock: Path) -> Iterator[None]:
    """code-server as the supervisor runs it by default, on the unix socket `sock`."""
    argv = [str(code_server), "--socket", str(sock), "--socket-mode", "600", "--auth", "none",
            "--disable-telemetry", "--disable-update-check", "--disable-workspace-trust",
            str(workspace)]
    with running_tree(argv, ide_env(base, code_server), log_path=base / "code-server.log"):
        _wait_unix_http(sock, 60)
        yield


@contextlib.contextmanager
def _gateway(base: Path, port: int, sock: Path) -> Iterator[str]:
    """`python -m gateway` (token auth, 2 workers) on `port`; the same port each time."""
    env = {"HOST": "127.0.0.1", "API_SERVER_PORT": str(port), "WAIIDE_SOCKET": str(sock),
           "GATEWAY_WORKERS": "2", "GATEWAY_AUTH": "token",
           "GATEWAY_TOKEN": TOKEN, "PYTHONPATH": str(ROOT)}
    # SIGTERM to the main process only, as the supervisor does: Sanic's main stops its workers
    # and its state manager in order (a group-wide SIGTERM kills the manager under it).
    with running([PYTHON, "-m", "gateway"], env, cwd=ROOT, log_path=base / "gateway.log",
                 ready_url=f"http://127.0.0.1:{port}/api/healthz", ready_timeout_s=60,
                 term_leader_only=True):
        yield f"http://127.0.0.1:{port}"


# About 50 s here: two gateway starts, two WebSocket closes, VS Code's retry schedule.
@pytest.mark.timeout(180)
def test_workbench_reconnects_by_itself_after_gateway_restart(
        tmp_path: Path, code_server: Path, browser: Callable[..., Page], ide_socket: Path) -> None:
    workspace = make_workspace(tmp_path)
    saved = workspace / WORKSPACE_FILE
    gateway_port, ide_port = free_port(), ide_socket
    with _code_server(tmp_path, code_server, workspace, ide_port):
        page = browser()
        sockets = RemoteSockets(page)
        with _gateway(tmp_path, gateway_port, ide_port) as origin:
            open_workbench(page, f"{origin}/?token={TOKEN}")
            wait_connected(page, WORKSPACE_FILE)
            open_file(page, WORKSPACE_FILE)
            type_and_save(page, "saved before the gateway restart")
            wait_file_text(page, saved, "saved before the gateway restart")
            run_in_terminal(page, "echo before-$((6*7))", expect="before-42")
            page.evaluate(f"{_MARK} = true")
            tokens = {s.reconnection_token for s in sockets.live()}
            assert len(tokens) == 2, sockets.sockets  # management + extension host
            screenshot(page, "restart-1-before")
        sockets.wait_all_closed(page)
        page.wait_for_timeout(GATEWAY_DOWN_S * 1000)
        screenshot(page, "restart-2-gateway-down")

        with _gateway(tmp_path, gateway_port, ide_port) as origin:
            resumed = sockets.wait_resumed(page, tokens, RESUME_TIMEOUT_S)
            assert all(s.url.startswith(origin.replace("http", "ws", 1) + "/") for s in resumed)
            assert page.evaluate(_MARK) is True, "the page was reloaded"
            assert_no_connection_problem(page)

            type_and_save(page, " and after it")
            text = wait_file_text(page, saved, "and after it")
            assert "saved before the gateway restart and after it" in text, text
            run_in_terminal(page, "echo after-$((6*7))", expect="after-42")
            assert_no_connection_problem(page)
            screenshot(page, "restart-3-reconnected-edit-and-terminal")


def test_control_an_ide_restart_shows_cannot_reconnect(
        tmp_path: Path, code_server: Path, browser: Callable[..., Page], ide_socket: Path) -> None:
    workspace = make_workspace(tmp_path)
    gateway_port, ide_port = free_port(), ide_socket
    page = browser()
    with _gateway(tmp_path, gateway_port, ide_port) as origin:
        with _code_server(tmp_path, code_server, workspace, ide_port):
            open_workbench(page, f"{origin}/?token={TOKEN}")
            wait_connected(page, WORKSPACE_FILE)
        with _code_server(tmp_path, code_server, workspace, ide_port):
            wait_until(page, lambda: any("Cannot reconnect" in p for p in connection_problems(page)),
                       RESUME_TIMEOUT_S, "the 'Cannot reconnect' dialog")
            screenshot(page, "restart-4-control-ide-restarted-cannot-reconnect")
            with pytest.raises(WorkbenchError, match="Cannot reconnect"):
                assert_no_connection_problem(page)
