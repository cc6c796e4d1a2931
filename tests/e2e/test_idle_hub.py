"""Idle that means idle, end to end: a real JupyterHub with configurable-http-proxy, the real
code-server with the built-in activity extension, headless Chromium.

One hub per mode (examples/jupyterhub_config_local.py), started when the first test of that mode
runs and stopped before the next mode's: the servers post activity every ACTIVITY_INTERVAL_S
(JUPYTERHUB_ACTIVITY_INTERVAL), the hub never reads activity from CHP
(`last_activity_interval` 3600 s, so the hub's `last_activity` moves only by what the server
posts) and polls its servers every POLL_INTERVAL_S (a server that stops itself shows as stopped
soon). Each test spawns alice's `waiide` server with settings of its own (the spawn's
user_options `env`, JH_SPAWN_ENV_OPTION). "Posts" are the hub's access-log lines
`POST /hub/api/users/alice/activity`; the hub's view is the users API's `last_activity`.

Scenarios (figures of the run go to the test's output, `-s` or the report's captured stdout):
 1. full mode, an IDE tab through the hub (/user/alice/WAIIDE/, jupyter-server-proxy),
    open, visible and untouched for UNTOUCHED_S: no post and no move of `last_activity` in the
    last QUIET_S, while /api/activity counts the tab's traffic as ignored. Then typing in an
    editor and in a terminal: a post within two activity intervals each, and /api/activity
    says `editor`, then `terminal-input`.
 2. full mode, WAIIDE_IDLE_TIMEOUT=60, WAIIDE_IDLE_WARNING=30, WAIIDE_IDLE_BUSY_COUNTS=false, a
    tab open with `sleep 300` running in its terminal (busy, listed by /api/activity, not
    counted): the warning shows (screenshot test-artifacts/browser/idle-warning.png); "Keep
    working" is `keep-working` and postpones the stop past the first plan; left alone, the
    warning shows again and the server stops itself within the timeout plus STOP_SLACK_S:
    gone from the hub's API, exit status 0 in the hub's log, none of its processes (the
    terminal's `sleep` included) left.
 3. lightweight mode, two untouched tabs: one through the hub, one directly on the gateway's
    port (API_SERVER_PORT, ?token= of a hub token): as 1. Then editor typing in the direct tab,
    terminal typing in the hub's: a post within two intervals each, with their causes.
 4. lightweight mode, WAIIDE_IDLE_TIMEOUT=60: typing every 20 s for 150 s keeps it running (no
    warning shown); then `sleep 300` in a terminal with the tab idle: still running well past
    the timeout, /api/activity shows the busy terminal and no stop planned.
"""

from __future__ import annotations

import contextlib
import json
import re
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import pytest
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Locator, Page, sync_playwright

from tests.browser.workbench import (
    ACTION_TIMEOUT_S,
    BROWSER_ARGS,
    INSTALL_HINT,
    VIEWPORT,
    WorkbenchError,
    chromium_page,
    code_server_binary,
    open_file,
    open_terminal,
    open_workbench,
    require_chromium,
    run_in_terminal,
    screenshot,
    wait_connected,
    wait_until,
    write_user_settings,
)
from tests.e2e.hub import CHP, HubProcess, ProcInfo, kill_leftovers, start_hub, wait_gone
from tests.e2e.servers import USER, WaiideServer, spawn, stop

ACTIVITY_INTERVAL_S = 5  # the servers' JUPYTERHUB_ACTIVITY_INTERVAL (±10 % jitter)
POLL_INTERVAL_S = 2  # the hub's Spawner.poll_interval
UNTOUCHED_S = 90.0
QUIET_S = 60.0  # the last part of UNTOUCHED_S in which nothing may be posted
# A post is due within two activity intervals of a keystroke (the extension reports at once
# when it has not reported for its minimum interval; the gateway posts at its next interval).
POST_DEADLINE_S = 2 * ACTIVITY_INTERVAL_S * 1.1 + 1.0
IDLE_TIMEOUT_S = 60
IDLE_WARNING_S = 30
# From the planned stop to the hub's API without the server: the watch looks every 2 s, the
# supervisor stops its children one by one (each within SUPERVISOR_STOP_TIMEOUT), the hub polls
# every POLL_INTERVAL_S.
STOP_SLACK_S = 20.0
TYPING_EVERY_S = 20.0
TYPING_FOR_S = 150.0
BUSY_HOLD_S = IDLE_TIMEOUT_S + 15.0  # idle (but busy) this long after the last use
WORKSPACE_FILE = "idle.txt"
IDE_PATH = "WAIIDE/"
SHOT = "idle-"
LOGIN_TIMEOUT_S = 45.0
STOPS_IN = re.compile(r"This server stops in \d+ minutes? because nobody used it")
# The hub's access log line of an activity post (jupyterhub.log.log_request, INFO for 2xx).
ACTIVITY_POST = re.compile(r"\b(\d{3}) POST /hub/api/users/" + USER + r"/activity\b")
EXTENSION_DIR = Path("lib") / "vscode" / "extensions" / "waiide-activity"


def _require_tools() -> None:
    """Fail (never skip) with the install command if a real part is missing."""
    missing = []
    try:
        require_chromium()
        installed = code_server_binary().parent.parent / "node_modules" / "code-server"
        if not (installed / EXTENSION_DIR / "package.json").is_file():
            missing.append(f"the waiide-activity extension is not in {installed}: {INSTALL_HINT}")
    except WorkbenchError as exc:
        missing.append(str(exc))
    if not CHP.is_file():
        missing.append(f"configurable-http-proxy is missing at {CHP}: {INSTALL_HINT}")
    if missing:
        pytest.fail("\n".join(missing), pytrace=False)


def _say(message: str) -> None:
    print(f"[idle-e2e] {message}", flush=True)


# ---- hubs: one per mode, one at a time ------------------------------------------------------------
@dataclass
class Hubs:
    """Starts the hub of a mode on first use; stops the other one first."""

    base: Path
    current: HubProcess | None = None
    problems: list[str] = field(default_factory=list)

    def get(self, mode: str) -> HubProcess:
        if self.current is not None and self.current.mode == mode:
            return self.current
        self.close()
        run_dir = self.base / f"hub-{mode}"
        home = run_dir / "home" / USER  # the config's home_dir_template
        workspace = home / "workspace"
        workspace.mkdir(parents=True)
        (workspace / WORKSPACE_FILE).write_text("idle test\n")
        write_user_settings(home / ".local" / "share")  # where code-server reads them
        self.current = start_hub(run_dir, mode, activity_interval_s=ACTIVITY_INTERVAL_S,
                                 waiide_command=None, env={
                                     "JH_POLL_INTERVAL": str(POLL_INTERVAL_S),
                                     "JH_SPAWN_ENV_OPTION": "true",
                                     "WAIIDE_WORKSPACE": str(workspace),
                                     "WAIIDE_READY_TIMEOUT": "60",
                                 })
        self.current.wait_healthy()
        return self.current

    def close(self) -> None:
        hub, self.current = self.current, None
        if hub is None:
            return
        leftovers = hub.stop()
        if leftovers:
            self.problems.append(f"{hub.mode}: processes survived the hub's SIGTERM: {leftovers}")
        if hub.proc.returncode != 0:
            self.problems.append(f"{hub.mode}: jupyterhub exited with {hub.proc.returncode}")


@pytest.fixture(scope="module")
def hubs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hubs]:
    _require_tools()
    running = Hubs(tmp_path_factory.mktemp("idle-hubs"))
    try:
        yield running
    finally:
        running.close()
    assert not running.problems, running.problems


@contextlib.contextmanager
def alice_server(hub: HubProcess, env: Mapping[str, str] | None = None,
                 ) -> Iterator[WaiideServer]:
    """alice's `waiide` with `env` over the hub's settings; stopped (if still up) and checked."""
    server = spawn(hub, options={"env": dict(env or {})})
    body_ok = False
    try:
        yield server
        body_ok = True
    finally:
        alive: list[ProcInfo] = []
        if hub.api.server(USER) is not None:
            _, alive = stop(server)
        else:
            alive = wait_gone(server.snapshot(), 10.0)
        killed = kill_leftovers(alive)
    if body_ok:
        assert not killed, hub.fail(f"processes outlived the server's stop: {killed}")


# ---- what the hub saw -------------------------------------------------------------------------
class PostLog:
    """Activity posts in the hub's log, counted from a mark (a byte offset in the log)."""

    def __init__(self, hub: HubProcess) -> None:
        self._log = hub.log

    def mark(self) -> int:
        return self._log.stat().st_size

    def posts_since(self, mark: int) -> list[str]:
        with self._log.open("rb") as log:
            log.seek(mark)
            text = log.read().decode(errors="replace")
        return [line for line in text.splitlines() if ACTIVITY_POST.search(line)]


def _api_get(server: WaiideServer, token: str, path: str) -> dict[str, Any]:
    req = urllib.request.Request(f"{server.gateway_url}{path}",
                                 headers={"Authorization": f"token {token}"})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return dict(json.loads(resp.read()))
    except urllib.error.HTTPError as exc:
        raise server.hub.fail(f"GET {path} answered {exc.code}: {exc.read()[:500]!r}") from None


def activity(server: WaiideServer, token: str) -> dict[str, Any]:
    """The gateway's GET /api/activity with alice's hub token."""
    return _api_get(server, token, "/api/activity")


def _stamp(iso: str | None) -> float | None:
    return None if iso is None else datetime.fromisoformat(iso).timestamp()


# ---- the browser ------------------------------------------------------------------------------
def open_via_hub(page: Page, hub: HubProcess, server: WaiideServer) -> None:
    """Log in through the hub's form (any password: dummy authenticator) and land on the IDE."""
    ide_path = server.prefix + IDE_PATH
    page.goto(f"{hub.url}/hub/login?next={quote(ide_path)}", wait_until="domcontentloaded")
    page.fill("#username_input", USER)
    page.fill("#password_input", "any-password")
    page.click("#login_submit")
    page.wait_for_url(lambda url: urlsplit(url).path == ide_path, wait_until="domcontentloaded",
                      timeout=LOGIN_TIMEOUT_S * 1000)
    page.locator(".monaco-workbench").wait_for(state="visible", timeout=LOGIN_TIMEOUT_S * 1000)
    wait_connected(page, WORKSPACE_FILE)


def open_direct(page: Page, server: WaiideServer, token: str) -> None:
    """The IDE on the gateway's own port, with a hub token (the gateway sets its cookie)."""
    open_workbench(page, f"{server.gateway_url}/?token={token}", timeout_s=LOGIN_TIMEOUT_S)
    wait_connected(page, WORKSPACE_FILE)


@contextlib.contextmanager
def chromium_pages(count: int) -> Iterator[list[Page]]:
    """`count` pages, each in a context of its own, in one headless Chromium; always closed.

    (playwright's sync API allows one `sync_playwright()` per thread, so two `chromium_page`s
    cannot be open at once.)
    """
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=require_chromium(), headless=True,
                                             args=list(BROWSER_ARGS))
        try:
            pages = []
            for _ in range(count):
                context = browser.new_context(viewport=VIEWPORT)
                context.set_default_timeout(ACTION_TIMEOUT_S * 1000)
                pages.append(context.new_page())
            yield pages
        finally:
            browser.close()


def notice_toast(page: Page) -> Locator:
    return page.locator(".notifications-toasts .notification-toast", has_text=STOPS_IN)


def _type_in_editor(page: Page, text: str) -> None:
    page.locator(".editor-group-container.active .monaco-editor .view-lines").first.click()
    page.keyboard.press("Control+End")
    page.keyboard.type(text)


def wait_post(page: Page, posts: PostLog, what: str, act: Callable[[], object]) -> float:
    """Do `act`, then wait for an activity post; seconds from the act to the post."""
    page.wait_for_timeout(7000)  # past the extension's rate limit and a pending post
    mark = posts.mark()
    start = time.monotonic()
    act()
    wait_until(page, lambda: bool(posts.posts_since(mark)), POST_DEADLINE_S + 15,
               f"an activity post after {what}")
    latency = time.monotonic() - start
    _say(f"{what}: posted after {latency:.1f}s")
    assert latency <= POST_DEADLINE_S, f"{what}: posted after {latency:.1f}s"
    return latency


def wait_cause(page: Page, server: WaiideServer, token: str, cause: str) -> dict[str, Any]:
    found: dict[str, Any] = {}

    def has_it() -> bool:
        found.update(activity(server, token))
        return found.get("cause") == cause

    with contextlib.suppress(WorkbenchError):
        wait_until(page, has_it, 15.0, f"/api/activity cause {cause!r}", interval_s=1.0)
    assert found.get("cause") == cause, found
    return found


def untouched(page: Page, hub: HubProcess, server: WaiideServer, token: str,
              label: str) -> None:
    """Leave every tab alone for UNTOUCHED_S; nothing posted nor moved in the last QUIET_S."""
    posts = PostLog(hub)
    start_mark = posts.mark()
    page.wait_for_timeout((UNTOUCHED_S - QUIET_S) * 1000)
    mark = posts.mark()
    before = hub.api.last_activity()
    early = posts.posts_since(start_mark)
    page.wait_for_timeout(QUIET_S * 1000)
    quiet = posts.posts_since(mark)
    after = hub.api.last_activity()
    state = activity(server, token)
    _say(f"{label}: untouched {UNTOUCHED_S:.0f}s: {len(early)} posts in the first "
         f"{UNTOUCHED_S - QUIET_S:.0f}s, {len(quiet)} in the last {QUIET_S:.0f}s "
         f"({len(quiet) / QUIET_S * 60:.1f}/min); last use {state['last_activity']} "
         f"({state['cause']}); ignored {state['ignored_last_60s']}")
    assert quiet == [], (f"{label}: the hub got activity from an untouched tab: {quiet}; "
                         f"/api/activity: {state}")
    assert after == before, f"{label}: last_activity moved from {before} to {after}: {state}"
    assert state["idle_s"] is not None and state["idle_s"] >= QUIET_S, state
    # The tab was not silent: its traffic was seen and ignored.
    assert sum(state["ignored_last_60s"].values()) > 0, state


# ---- the scenarios -----------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.timeout(330)
def test_full_untouched_tab_posts_nothing_typing_posts(hubs: Hubs, tmp_path: Path) -> None:
    hub = hubs.get("full")
    with alice_server(hub) as server, chromium_page(tmp_path / "chromium") as page:
        token = hub.api.new_token(USER)
        open_via_hub(page, hub, server)
        untouched(page, hub, server, token, "full, through the hub")
        screenshot(page, f"{SHOT}full-untouched")

        posts = PostLog(hub)
        open_file(page, WORKSPACE_FILE)
        wait_post(page, posts, "full: typing in an editor",
                  lambda: _type_in_editor(page, "typed"))
        wait_cause(page, server, token, "editor")
        open_terminal(page)
        wait_post(page, posts, "full: typing in a terminal",
                  lambda: run_in_terminal(page, "echo waiide-$((6*7))", expect="waiide-42"))
        wait_cause(page, server, token, "terminal-input")


@pytest.mark.slow
@pytest.mark.timeout(330)
def test_full_warning_keep_working_then_self_stop(hubs: Hubs, tmp_path: Path) -> None:
    hub = hubs.get("full")
    env = {"WAIIDE_IDLE_TIMEOUT": str(IDLE_TIMEOUT_S), "WAIIDE_IDLE_WARNING": str(IDLE_WARNING_S),
           "WAIIDE_IDLE_BUSY_COUNTS": "false"}
    with alice_server(hub, env) as server, chromium_page(tmp_path / "chromium") as page:
        token = hub.api.new_token(USER)
        open_via_hub(page, hub, server)
        open_terminal(page)
        run_in_terminal(page, "sleep 300")

        # Busy, listed, but not holding the timer (WAIIDE_IDLE_BUSY_COUNTS=false).
        def busy_listed() -> bool:
            state = activity(server, token)
            return {"kind": "terminal", "name": "sleep 300"} in state["busy_work"]

        wait_until(page, busy_listed, 30.0, "/api/activity listing the busy terminal")
        server.snapshot()  # the terminal's shell and sleep: the stop must leave none of them
        state = activity(server, token)
        plan = state["self_shutdown"]
        assert plan is not None and plan["busy_counts"] is False and plan["stops_at"], state
        first_stop = _stamp(plan["stops_at"])
        assert first_stop is not None

        # 1. The warning, before the stop.
        toast = notice_toast(page)
        toast.wait_for(state="visible", timeout=(IDLE_TIMEOUT_S + 10) * 1000)
        warned_at = time.time()
        screenshot(page, f"{SHOT}warning")
        _say(f"warning shown {first_stop - warned_at:.1f}s before the planned stop: "
             f"{toast.inner_text()!r}")
        assert warned_at < first_stop, (warned_at, first_stop)

        # 2. "Keep working" is use, and postpones the stop.
        toast.get_by_role("button", name="Keep working").click()
        clicked = time.time()
        wait_cause(page, server, token, "keep-working")
        # The supervisor's watch looks every 2 s and publishes its new plan.
        planned: list[float] = []

        def postponed() -> bool:
            stamp = _stamp(activity(server, token)["self_shutdown"]["stops_at"])
            planned[:] = [stamp] if stamp is not None else []
            return bool(planned) and planned[0] >= clicked + IDLE_TIMEOUT_S - 5

        wait_until(page, postponed, 10.0, f"the stop postponed past {clicked + IDLE_TIMEOUT_S}"
                   f" (planned: {planned})", interval_s=0.5)
        second_stop = planned[0]
        _say(f"Keep working: the stop moved by {second_stop - first_stop:.1f}s")
        wait_until(page, lambda: time.time() > first_stop + 5, first_stop + 10 - time.time(),
                   "past the first planned stop")
        assert hub.api.server(USER) is not None, "stopped despite Keep working"

        # 3. Left alone: warned again, then it stops itself.
        notice_toast(page).first.wait_for(state="visible", timeout=(IDLE_TIMEOUT_S + 10) * 1000)
        screenshot(page, f"{SHOT}warning-again")
        last_plan = second_stop

        def gone() -> bool:
            nonlocal last_plan
            if hub.api.server(USER) is None:
                return True
            with contextlib.suppress(AssertionError, OSError):
                stamp = _stamp(activity(server, token)["self_shutdown"]["stops_at"])
                last_plan = stamp if stamp is not None else last_plan
            return False

        wait_until(page, gone, second_stop + STOP_SLACK_S + 30 - time.time(),
                   "the server gone from the hub's API", interval_s=0.5)
        gone_after = time.time() - last_plan
        _say(f"full: timeout to gone from the hub's API: {gone_after:.1f}s")
        assert gone_after <= STOP_SLACK_S, gone_after
        screenshot(page, f"{SHOT}stopped")
    assert re.search(r"alice.*waiide.*(exit|status)\D*0\b|exit code: 0", hub.log_tail(40000)), \
        hub.fail("the hub did not log the server's exit with status 0")


@pytest.mark.slow
@pytest.mark.timeout(360)
def test_lightweight_untouched_tabs_hub_and_direct(hubs: Hubs, tmp_path: Path) -> None:
    hub = hubs.get("lightweight")
    with alice_server(hub) as server, chromium_pages(2) as (via_hub, direct):
        token = hub.api.new_token(USER)
        open_via_hub(via_hub, hub, server)
        open_direct(direct, server, hub.api.new_token(USER))
        untouched(direct, hub, server, token, "lightweight, through the hub and on :8091")
        screenshot(via_hub, f"{SHOT}light-untouched-hub")
        screenshot(direct, f"{SHOT}light-untouched-direct")

        posts = PostLog(hub)
        open_file(direct, WORKSPACE_FILE)
        wait_post(direct, posts, "lightweight, :8091: typing in an editor",
                  lambda: _type_in_editor(direct, "typed"))
        wait_cause(direct, server, token, "editor")
        open_terminal(via_hub)
        wait_post(via_hub, posts, "lightweight, hub: typing in a terminal",
                  lambda: run_in_terminal(via_hub, "echo waiide-$((6*7))", expect="waiide-42"))
        wait_cause(via_hub, server, token, "terminal-input")


@pytest.mark.slow
@pytest.mark.timeout(480)
def test_lightweight_typing_and_busy_work_keep_it_running(hubs: Hubs, tmp_path: Path) -> None:
    hub = hubs.get("lightweight")
    env = {"WAIIDE_IDLE_TIMEOUT": str(IDLE_TIMEOUT_S), "WAIIDE_IDLE_WARNING": str(IDLE_WARNING_S)}
    with alice_server(hub, env) as server, chromium_page(tmp_path / "chromium") as page:
        token = hub.api.new_token(USER)
        open_via_hub(page, hub, server)
        open_file(page, WORKSPACE_FILE)
        posts = PostLog(hub)
        mark = posts.mark()
        started = time.monotonic()
        words = 0
        while time.monotonic() - started < TYPING_FOR_S:
            _type_in_editor(page, f" word{words}")
            words += 1
            page.wait_for_timeout(TYPING_EVERY_S * 1000)
        typed_for = time.monotonic() - started
        typing_posts = posts.posts_since(mark)
        _say(f"lightweight: a word every {TYPING_EVERY_S:.0f}s for {typed_for:.0f}s: "
             f"{len(typing_posts)} posts ({len(typing_posts) / typed_for * 60:.1f}/min)")
        assert hub.api.server(USER) is not None, "stopped while someone typed"
        assert server.pid == int(hub.api.server(USER)["state"]["pid"])  # type: ignore[index]
        assert notice_toast(page).count() == 0, "warned while someone typed"
        assert len(typing_posts) >= typed_for / TYPING_EVERY_S - 1, typing_posts

        # A busy terminal with the tab idle holds it (WAIIDE_IDLE_BUSY_COUNTS defaults to true).
        open_terminal(page)
        run_in_terminal(page, "sleep 300")
        busy_from = time.monotonic()
        server.snapshot()
        page.wait_for_timeout(BUSY_HOLD_S * 1000)
        state = activity(server, token)
        _say(f"lightweight: busy {time.monotonic() - busy_from:.0f}s with the tab idle: "
             f"{state['busy_work']}, idle {state['idle_s']}s, plan {state['self_shutdown']}")
        assert hub.api.server(USER) is not None, f"stopped while busy: {state}"
        assert state["busy"] is True, state
        assert {"kind": "terminal", "name": "sleep 300"} in state["busy_work"], state
        assert state["idle_s"] >= IDLE_TIMEOUT_S, state
        assert state["self_shutdown"]["stops_at"] is None, state
        with contextlib.suppress(PlaywrightError):
            screenshot(page, f"{SHOT}busy")
