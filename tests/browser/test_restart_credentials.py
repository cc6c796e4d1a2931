"""A tab open across restarts of the supervised stack, with a token the supervisor generated.

The stack is `supervisor_main.py` in lightweight mode with no GATEWAY_TOKEN: the supervisor
generates one and keeps it under $XDG_DATA_HOME/waiide-hub (supervisor/credentials.py). (A
restart of the gateway alone, with the IDE running, is test_gateway_restart.py: there the tab
resumes by itself.)

Scenario:
 1. The workbench is opened with the banner's URL (`?token=`), the Explorer lists the workspace.
 2. The whole stack stops and starts again on the same ports (a container restart): the token
    in the kept file is the same. The tab's reconnection attempts are admitted by the gateway
    (its cookie is still valid), so they reach the new code-server, which does not know the old
    session: VS Code shows its own "Cannot reconnect. Please reload the window." — not an
    endless "Attempting to reconnect" against a gateway that refuses the cookie. Reloading the
    page (what the dialog's button does) opens the workbench again with the same cookie, no
    token needed.
 3. The old URL from the first start's banner still works in a browser without the cookie.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Page

from tests.browser.ide import WORKSPACE_FILE, supervised_stack
from tests.browser.workbench import (
    connection_problems,
    open_workbench,
    screenshot,
    wait_connected,
    wait_until,
)
from tests.procs import free_port

pytestmark = pytest.mark.slow

RESUME_TIMEOUT_S = 60.0


# Two stack starts and VS Code's retry schedule: about 40 s here.
@pytest.mark.timeout(300)
def test_tab_survives_restarts_with_the_kept_token(tmp_path: Path, code_server: Path,
                                                    browser: Callable[..., Page]) -> None:
    ports = (free_port(), free_port())
    page = browser()
    with supervised_stack(tmp_path, code_server, token=None, ports=ports,
                          log_name="first.log") as first:
        first_url = first.token_url
        open_workbench(page, first_url)
        wait_connected(page, WORKSPACE_FILE)
        screenshot(page, "kept-token-1-open")

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
