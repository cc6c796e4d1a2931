"""A tab open across restarts of the supervised stack, with a token the supervisor generated.

The stack is `supervisor_main.py` in lightweight mode with no GATEWAY_TOKEN: the supervisor
generates one and keeps it under $XDG_DATA_HOME/waiide-hub (supervisor/credentials.py).

Scenario:
 1. The workbench is opened with the banner's URL (`?token=`), the Explorer lists the workspace.
 2. The gateway restarts under the supervisor (SIGTERM to its main process; the supervisor
    starts it again): the tab resumes its connections by itself — the same reconnection tokens
    on new `reconnection=true` WebSockets — and was not reloaded.
 3. The whole stack stops and starts again on the same ports (a container restart): the token
    in the kept file is the same. The tab's reconnection attempts are admitted by the gateway
    (its cookie is still valid), so they reach the new code-server, which does not know the old
    session: VS Code shows its own "Cannot reconnect. Please reload the window." — not an
    endless "Attempting to reconnect" against a gateway that refuses the cookie. Reloading the
    page (what the dialog's button does) opens the workbench again with the same cookie, no
    token needed.
 4. The old URL from the first start's banner still works in a browser without the cookie.
"""

from __future__ import annotations

import contextlib
import os
import signal
import urllib.request
from collections.abc import Callable
from pathlib import Path

import psutil  # type: ignore[import-untyped]
import pytest
from playwright.sync_api import Page

from tests.browser.ide import WORKSPACE_FILE, Stack, supervised_stack
from tests.browser.workbench import (
    RemoteSockets,
    assert_no_connection_problem,
    connection_problems,
    open_workbench,
    screenshot,
    wait_connected,
    wait_until,
)
from tests.procs import free_port

pytestmark = pytest.mark.slow

RESUME_TIMEOUT_S = 60.0
_MARK = "window.__waiideNotReloaded"


def _gateway_pid(stack: Stack) -> int | None:
    """The supervisor's `-m gateway` child (Sanic's main process), None between two of them."""
    for child in psutil.Process(stack.pid).children():
        with contextlib.suppress(psutil.NoSuchProcess):  # it ended while we looked
            if child.cmdline()[1:3] == ["-m", "gateway"] and child.status() != psutil.STATUS_ZOMBIE:
                return int(child.pid)
    return None


def _wait_restarted(page: Page, stack: Stack, old_pid: int, timeout_s: float = 60.0) -> None:
    """Until the supervisor has started a new gateway and it answers /api/healthz."""
    def answered() -> bool:
        pid = _gateway_pid(stack)
        if pid is None or pid == old_pid:
            return False
        with contextlib.suppress(OSError), \
                urllib.request.urlopen(f"{stack.origin}/api/healthz", timeout=5):  # not up yet
            return True
        return False

    wait_until(page, answered, timeout_s, "the supervisor restarting the gateway")


# Two stack starts, a gateway restart, VS Code's retry schedule: about 90 s here.
@pytest.mark.timeout(300)
def test_tab_survives_restarts_with_the_kept_token(tmp_path: Path, code_server: Path,
                                                    browser: Callable[..., Page]) -> None:
    ports = (free_port(), free_port())
    page = browser()
    sockets = RemoteSockets(page)
    with supervised_stack(tmp_path, code_server, token=None, ports=ports,
                          log_name="first.log") as first:
        first_url = first.token_url
        open_workbench(page, first_url)
        wait_connected(page, WORKSPACE_FILE)
        page.evaluate(f"{_MARK} = true")
        tokens = {s.reconnection_token for s in sockets.live()}
        assert len(tokens) == 2, sockets.sockets

        old = _gateway_pid(first)
        assert old is not None
        os.kill(old, signal.SIGTERM)  # a child of the supervisor this test started
        sockets.wait_all_closed(page)
        _wait_restarted(page, first, old)
        sockets.wait_resumed(page, tokens, RESUME_TIMEOUT_S)
        assert page.evaluate(_MARK) is True, "the page was reloaded"
        assert_no_connection_problem(page)
        screenshot(page, "kept-token-1-gateway-restarted")

    with supervised_stack(tmp_path, code_server, token=None, ports=ports,
                          log_name="second.log") as second:
        assert second.token == first.token, "the kept token changed across the restart"
        wait_until(page, lambda: any("Cannot reconnect" in p for p in connection_problems(page)),
                   RESUME_TIMEOUT_S, "VS Code's 'Cannot reconnect' (the new IDE answered)")
        screenshot(page, "kept-token-2-stack-restarted")
        page.reload(wait_until="domcontentloaded")
        page.locator(".monaco-workbench").wait_for(state="visible", timeout=30_000)
        wait_connected(page, WORKSPACE_FILE)
        assert page.url.startswith(second.origin) and "token=" not in page.url

        page.context.clear_cookies()  # a browser that never saw this server
        open_workbench(page, first_url)
        wait_connected(page, WORKSPACE_FILE)
        screenshot(page, "kept-token-3-old-url-without-cookie")
