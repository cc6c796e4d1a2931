"""The waiide-activity extension inside the real code-server, driven in headless Chromium.

code-server runs as the supervisor runs it, with the extension installed by scripts/setup.sh as a
built-in and WAIIDE_ACTIVITY_URL pointing at a recording server on a real loopback socket
(`tests.browser.activity_recorder`), with short intervals (reports at most every 2 s, busy work
every 5 s, notice polls every 2 s).

Scenarios:
 1. An open, visible, untouched workbench for 75 s: the extension polls the notice (so it runs)
    and reports nothing. Then a keystroke on the workbench (no editor, no terminal): "input".
 2. Typing in an editor: an "editor" report within a few seconds; Ctrl+S: "save". Causes that
    arrive together are coalesced: at most one report per 2 s.
 3. Typing in a terminal: "terminal-input"; `sleep 30` running: busy [{terminal, "sleep 30"}],
    re-sent every 5 s; Ctrl+C: a report with no busy work.
 4. Typing into a program in a terminal (`cat`), a key every 5 s: no event shows it but the
    window's activity state; after 70 s "input" reports come with an `at` that moves on.
 5. A pending notice: a warning notification with a "Keep working" button (screenshot
    test-artifacts/browser/activity-notice.png); the button gives a "keep-working" report at
    once; a second poll of the same notice does not show it again.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Page

from tests.browser.ide import WORKSPACE_FILE, ide_env, make_workspace, running_tree
from tests.browser.workbench import (
    open_file,
    open_terminal,
    open_workbench,
    run_in_terminal,
    screenshot,
    terminal_text,
    wait_connected,
    wait_until,
)
from tests.procs import ROOT, free_port
from tests.resources.activity_recorder import ActivityRecorder, Report

SECRET = "activity-test-secret"
EXTENSION_SRC = ROOT / "ide-extension" / "waiide-activity"
MIN_INTERVAL_S = 2.0
BUSY_INTERVAL_S = 5.0
NOTICE_INTERVAL_S = 2.0
REPORT_TIMEOUT_S = 15.0  # a report is due within MIN_INTERVAL_S; generous for busy cores
# VS Code marks the window inactive 40-70 s after the last input (and after loading); untouched
# for longer, a keystroke then makes it active again, which the extension reports as "input".
UNTOUCHED_S = 75.0
TYPING_S = 110.0  # "input" reports a lower bound 70 s behind, every 10 s


def _tree_hash(folder: Path) -> str:
    """The stamp scripts/setup.sh writes: sha256 over `sha256sum` lines of ./-relative names."""
    lines = []
    for path in sorted(folder.rglob("*"), key=lambda p: str(p.relative_to(folder)).encode()):
        if path.is_file():
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            lines.append(f"{digest}  ./{path.relative_to(folder)}\n")
    return hashlib.sha256("".join(lines).encode()).hexdigest()


def _require_builtin(code_server: Path) -> None:
    """The extension must be installed, current, among code-server's built-in extensions."""
    # <hub home>/code-server/bin/code-server -> <hub home>/code-server/node_modules/code-server
    installed = (code_server.parent.parent / "node_modules" / "code-server" / "lib" / "vscode"
                 / "extensions" / "waiide-activity")
    stamp = installed / ".waiide-stamp"
    if not stamp.is_file():
        pytest.fail(f"waiide-activity is not installed at {installed}: run scripts/setup.sh test",
                    pytrace=False)
    if stamp.read_text().strip() != _tree_hash(EXTENSION_SRC):
        pytest.fail(f"{installed} is older than {EXTENSION_SRC}: run scripts/setup.sh test",
                    pytrace=False)


@dataclass(frozen=True)
class ActivityIde:
    """code-server with the extension reporting to `recorder`."""

    url: str
    workspace: Path
    recorder: ActivityRecorder
    xdg_data: Path

    def extension_log(self) -> str:
        """The extension's log (code-server runs with `--log trace`: every cause it saw)."""
        logs = sorted(self.xdg_data.glob("code-server/logs/*/exthost*/waiide.waiide-activity/*"))
        return "\n".join(path.read_text(errors="replace") for path in logs)[-4000:]


@pytest.fixture
def activity_ide(tmp_path: Path, code_server: Path) -> Iterator[ActivityIde]:
    _require_builtin(code_server)
    workspace = make_workspace(tmp_path)
    port = free_port()
    argv = [str(code_server), "--bind-addr", f"127.0.0.1:{port}", "--auth", "none",
            "--disable-telemetry", "--disable-update-check", "--disable-workspace-trust",
            "--log", "trace", str(workspace)]
    with ActivityRecorder(SECRET) as recorder:
        env = ide_env(tmp_path, code_server)
        env.update({
            "WAIIDE_ACTIVITY_URL": recorder.url, "WAIIDE_ACTIVITY_SECRET": SECRET,
            "WAIIDE_ACTIVITY_MIN_INTERVAL": str(MIN_INTERVAL_S),
            "WAIIDE_ACTIVITY_BUSY_INTERVAL": str(BUSY_INTERVAL_S),
            "WAIIDE_ACTIVITY_NOTICE_INTERVAL": str(NOTICE_INTERVAL_S),
        })
        with running_tree(argv, env, log_path=tmp_path / "code-server.log",
                          ready_url=f"http://127.0.0.1:{port}/healthz", ready_timeout_s=60):
            yield ActivityIde(f"http://127.0.0.1:{port}/", workspace, recorder,
                              Path(env["XDG_DATA_HOME"]))
        assert recorder.rejected == [], recorder.rejected


def _connected_workbench(ide: ActivityIde, page: Page) -> None:
    open_workbench(page, ide.url)
    wait_connected(page, WORKSPACE_FILE)
    # The extension runs once it polls the notice: from then on its reports can be expected.
    wait_until(page, lambda: ide.recorder.notice_polls > 0, REPORT_TIMEOUT_S * 2,
               "the extension polling the notice (is it activated?)")


def _wait_report(page: Page, ide: ActivityIde, what: str, since: float,
                 check: Callable[[Report], bool], timeout_s: float = REPORT_TIMEOUT_S) -> Report:
    found: list[Report] = []

    def arrived() -> bool:
        found[:] = [r for r in ide.recorder.reports(since) if check(r)]
        return bool(found)

    with contextlib.suppress(AssertionError):
        wait_until(page, arrived, timeout_s, what)
    assert found, (f"{what}: not within {timeout_s}s; got {[r.body for r in ide.recorder.reports()]}"
                   f"\n--- extension log ---\n{ide.extension_log()}")
    return found[0]


def _assert_rate_limited(reports: list[Report]) -> None:
    """No two reports closer than the minimum interval (0.3 s slack for scheduling)."""
    times = [r.received_mono for r in reports]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert all(gap >= MIN_INTERVAL_S - 0.3 for gap in gaps), gaps


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_untouched_workbench_reports_nothing(activity_ide: ActivityIde,
                                             browser: Callable[..., Page]) -> None:
    page = browser()
    _connected_workbench(activity_ide, page)
    polls_before = activity_ide.recorder.notice_polls
    page.wait_for_timeout(UNTOUCHED_S * 1000)
    screenshot(page, "activity-untouched")
    polls = activity_ide.recorder.notice_polls - polls_before
    assert activity_ide.recorder.reports() == [], activity_ide.extension_log()
    # Still alive and polling all along (one poll per NOTICE_INTERVAL_S).
    assert polls >= UNTOUCHED_S / NOTICE_INTERVAL_S / 2, polls

    since = time.monotonic()
    page.keyboard.press("Shift")
    report = _wait_report(page, activity_ide, "an 'input' report for a keystroke", since,
                          lambda r: "input" in r.causes)
    assert report.causes == ["input"], report.body


@pytest.mark.timeout(180)
def test_typing_in_an_editor_reports_editor_then_save(activity_ide: ActivityIde,
                                                      browser: Callable[..., Page]) -> None:
    page = browser()
    _connected_workbench(activity_ide, page)
    open_file(page, WORKSPACE_FILE)
    since = time.monotonic()
    page.locator(".editor-group-container.active .monaco-editor .view-lines").first.click()
    page.keyboard.press("Control+End")
    page.keyboard.type("typed by the user")
    typed = time.time()
    report = _wait_report(page, activity_ide, "an 'editor' report", since,
                          lambda r: "editor" in r.causes)
    assert report.body["at"] >= typed - 10, report.body
    assert report.body["v"] == 1 and report.body["busy"] == [], report.body

    since_save = time.monotonic()
    page.keyboard.press("Control+S")
    _wait_report(page, activity_ide, "a 'save' report", since_save, lambda r: "save" in r.causes)
    _assert_rate_limited(activity_ide.recorder.reports())


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_terminal_input_and_a_running_command_is_busy(activity_ide: ActivityIde,
                                                      browser: Callable[..., Page]) -> None:
    page = browser()
    _connected_workbench(activity_ide, page)
    open_terminal(page)
    since = time.monotonic()
    run_in_terminal(page, "echo waiide-$((6*7))", expect="waiide-42")
    _wait_report(page, activity_ide, "a 'terminal-input' report", since,
                 lambda r: "terminal-input" in r.causes)

    since_sleep = time.monotonic()
    run_in_terminal(page, "sleep 30")
    busy = _wait_report(page, activity_ide, "busy terminal 'sleep 30'", since_sleep,
                        lambda r: {"kind": "terminal", "name": "sleep 30"} in r.busy)
    # Re-sent while it runs, so the server can expire it when the reports stop.
    _wait_report(page, activity_ide, "busy re-sent", busy.received_mono + 0.1,
                 lambda r: bool(r.busy), timeout_s=BUSY_INTERVAL_S + REPORT_TIMEOUT_S)
    assert busy.body["busy_ttl_s"] == 3 * BUSY_INTERVAL_S, busy.body

    page.keyboard.press("Control+C")
    since_stop = time.monotonic()
    _wait_report(page, activity_ide, "busy cleared after Ctrl+C", since_stop,
                 lambda r: r.busy == [])
    _assert_rate_limited(activity_ide.recorder.reports())
    assert "sleep 30" in terminal_text(page)


@pytest.mark.timeout(180)
def test_notice_shows_and_keep_working_reports(activity_ide: ActivityIde,
                                               browser: Callable[..., Page]) -> None:
    page = browser()
    _connected_workbench(activity_ide, page)
    activity_ide.recorder.set_notice({"id": "idle-1", "stops_at": time.time() + 300})
    toast = page.locator(".notifications-toasts .notification-toast",
                         has_text="This server stops in 5 minutes because nobody used it.")
    toast.wait_for(state="visible", timeout=REPORT_TIMEOUT_S * 1000)
    shot = screenshot(page, "activity-notice")
    assert shot.stat().st_size > 0
    assert activity_ide.recorder.reports() == [], \
        f"the notice alone is not use\n{activity_ide.extension_log()}"

    polls = activity_ide.recorder.notice_polls
    since = time.monotonic()
    toast.get_by_role("button", name="Keep working").click()
    report = _wait_report(page, activity_ide, "a 'keep-working' report", since,
                          lambda r: "keep-working" in r.causes)
    # Ahead of the rate limit: well within one minimum interval of the click.
    assert report.received_mono - since < MIN_INTERVAL_S + 1.0, report.received_mono - since
    wait_until(page, lambda: activity_ide.recorder.notice_polls >= polls + 2, REPORT_TIMEOUT_S,
               "two more notice polls")
    assert page.locator(".notifications-toasts .notification-toast",
                        has_text="stops in").count() == 0, "the same notice was shown again"


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_typing_into_a_terminal_program_keeps_reporting_input(
        activity_ide: ActivityIde, browser: Callable[..., Page]) -> None:
    page = browser()
    _connected_workbench(activity_ide, page)
    open_terminal(page)
    run_in_terminal(page, "cat")
    first = _wait_report(page, activity_ide, "a 'terminal-input' report", 0.0,
                         lambda r: "terminal-input" in r.causes)
    deadline = time.monotonic() + TYPING_S
    later: list[Report] = []
    while time.monotonic() < deadline and not later:
        page.keyboard.type("x")
        page.wait_for_timeout(5000)
        later = [r for r in activity_ide.recorder.with_cause("input")
                 if r.body["at"] > first.body["at"] + 5]
    assert later, (f"no 'input' report after {TYPING_S}s of typing: "
                   f"{[r.body for r in activity_ide.recorder.reports()]}\n"
                   f"{activity_ide.extension_log()}")
    # A lower bound: never later than the last keystroke.
    assert later[0].body["at"] <= later[0].received_wall
    page.keyboard.press("Control+C")
