"""The real VS Code workbench through the gateway, in headless Chromium, with the token flow.

The stack is `supervisor_main.py` in lightweight mode: the real code-server, the gateway with
GATEWAY_TOKEN, the monitor (fixture `stack`).

Scenarios:
 1. On API_SERVER_PORT at the root, and on PORT under /WAIIDE/ (the sub-path the hub-facing
    port of lightweight mode serves; relative URLs, prefixed WebSockets):
    `?token=` → the gateway's redirect drops the token from the address; the workbench renders;
    the Explorer lists the workspace (read over the remote WebSocket) with no connection problem
    on screen; the file opened from the Explorer, typed into and saved with Ctrl+S is changed on
    disk; a terminal opened in the IDE runs a command whose file appears on disk and whose
    output appears in the terminal.
 2. A 100 MiB file downloaded with the Explorer's "Download..." arrives intact (sha256): the
    browser fetches code-server's `vscode-remote-resource` URL through the gateway.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Page

from tests.browser.ide import WORKSPACE_TEXT, Stack
from tests.browser.workbench import (
    RemoteSockets,
    assert_no_connection_problem,
    explorer_item,
    open_file,
    open_workbench,
    run_in_terminal,
    screenshot,
    terminal_text,
    type_and_save,
    wait_connected,
    wait_file_text,
)

pytestmark = pytest.mark.slow  # headless Chromium with the real code-server

MIB = 1024 * 1024
BIG_FILE_BYTES = 100 * MIB
DOWNLOAD_TIMEOUT_S = 60.0


@pytest.mark.parametrize("entry", ["api-port", "port-subpath"])
def test_workbench_through_gateway_edits_saves_and_runs_a_terminal(
        stack: Stack, browser: Callable[..., Page], entry: str) -> None:
    url = stack.token_url if entry == "api-port" else stack.port_token_url
    base = url.split("?", 1)[0]
    # Each entry gets its own file and output, since both share the stack's workspace.
    edited, output = stack.workspace / f"{entry}.txt", stack.workspace / f"{entry}-out.txt"
    edited.write_text(WORKSPACE_TEXT)
    page = browser()
    sockets = RemoteSockets(page)

    open_workbench(page, url)
    assert stack.token not in page.url and "token=" not in page.url, page.url
    assert page.url.startswith(base), page.url
    wait_connected(page, edited.name)
    live = sockets.live()
    assert live and all(s.url.startswith(base.replace("http", "ws", 1)) for s in live), live
    screenshot(page, f"{entry}-1-workbench-connected")

    open_file(page, edited.name)
    screenshot(page, f"{entry}-2-file-opened")
    typed = f"typed in Chromium through the gateway ({entry})"
    type_and_save(page, typed)
    on_disk = wait_file_text(page, edited, typed)
    assert on_disk == WORKSPACE_TEXT + typed, on_disk
    screenshot(page, f"{entry}-3-file-edited-and-saved")

    command = f"echo waiide-$((6*7)) > {output.name}; cat {output.name}"
    text = run_in_terminal(page, command, expect="waiide-42")
    assert wait_file_text(page, output, "waiide-42") == "waiide-42\n"
    screenshot(page, f"{entry}-4-terminal-output")
    assert "waiide-42" in terminal_text(page), text
    assert_no_connection_problem(page)


def _random_file(path: Path, size: int) -> str:
    """Write `size` random bytes to `path`; returns their sha256."""
    digest = hashlib.sha256()
    with path.open("wb") as out:
        for _ in range(size // MIB):
            chunk = os.urandom(MIB)
            digest.update(chunk)
            out.write(chunk)
    return digest.hexdigest()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as data:
        while chunk := data.read(MIB):
            digest.update(chunk)
    return digest.hexdigest()


# Writes, downloads and hashes 100 MiB: more than the default 120 s on a slow, busy runner.
@pytest.mark.timeout(150)
def test_100_mib_explorer_download_through_gateway_is_intact(
        stack: Stack, browser: Callable[..., Page], tmp_path: Path) -> None:
    big = stack.workspace / "big-100MiB.bin"
    expected = _random_file(big, BIG_FILE_BYTES)
    downloaded: Path | None = None
    try:
        page = browser(downloads=tmp_path / "downloads", directory_picker=False)
        open_workbench(page, stack.token_url)
        wait_connected(page, big.name)
        explorer_item(page, big.name).click(button="right")
        menu_item = page.locator(".context-view .monaco-menu").get_by_role(
            "menuitem", name="Download...")
        menu_item.wait_for(state="visible")
        screenshot(page, "download-1-explorer-context-menu")
        with page.expect_download(timeout=DOWNLOAD_TIMEOUT_S * 1000) as started:
            menu_item.click()
        download = started.value
        # The IDE handed the browser code-server's file route, served through the gateway.
        assert download.url.startswith(stack.origin + "/"), download.url
        assert "/vscode-remote-resource?" in download.url, download.url
        # path() waits for the end of the download (bounded by this test's timeout).
        downloaded = Path(download.path())
        assert download.failure() is None, download.failure()
        screenshot(page, "download-2-finished")
        assert downloaded.stat().st_size == BIG_FILE_BYTES
        assert _sha256(downloaded) == expected
        assert_no_connection_problem(page)
    finally:
        big.unlink(missing_ok=True)
        if downloaded is not None:
            downloaded.unlink(missing_ok=True)
