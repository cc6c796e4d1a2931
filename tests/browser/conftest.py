"""Fixtures for the real-browser tests.

- `code_server`: the installed code-server; fails (never skips) with the install command when
  it or Chromium is missing;
- `stack`: `supervisor_main.py` in lightweight mode with the real code-server, shared by the
  session (`tests.browser.ide.supervised_stack`);
- `browser`: opens headless Chromium pages in fresh profiles, screenshots them when the test
  failed, and always closes them.

Screenshots go to test-artifacts/browser/ (git-ignored), emptied at the start of the session.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Page

from tests.browser.ide import Stack, supervised_stack
from tests.browser.workbench import (
    WorkbenchError,
    chromium_page,
    code_server_binary,
    require_chromium,
    reset_artifacts,
    screenshot,
)

_FAILED = pytest.StashKey[bool]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.when == "call":
        item.stash[_FAILED] = report.failed
    return report


@pytest.fixture(scope="session", autouse=True)
def _fresh_artifacts() -> None:
    reset_artifacts()


@pytest.fixture(scope="session")
def code_server() -> Path:
    """The code-server scripts/setup.sh installs (and Chromium is there too)."""
    try:
        require_chromium()
        return code_server_binary()
    except WorkbenchError as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory, code_server: Path) -> Iterator[Stack]:
    with supervised_stack(tmp_path_factory.mktemp("stack"), code_server) as running_stack:
        yield running_stack


@pytest.fixture
def browser(request: pytest.FixtureRequest, tmp_path: Path,
            code_server: Path) -> Iterator[Callable[..., Page]]:
    """`browser(**options)` opens a page in a fresh Chromium profile (see `chromium_page`).

    Every page is closed after the test, and screenshotted first if the test failed.
    """
    pages: list[Page] = []
    with contextlib.ExitStack() as exits:
        def open_page(**options: Any) -> Page:
            profile = tmp_path / f"chromium-profile-{len(pages)}"
            page = exits.enter_context(chromium_page(profile, **options))
            pages.append(page)
            return page

        yield open_page
        if request.node.stash.get(_FAILED, True):
            for index, page in enumerate(pages):
                # Only a diagnostic: the page may have gone down with the failure.
                with contextlib.suppress(PlaywrightError):
                    screenshot(page, f"FAILED-{request.node.name}-{index}")
