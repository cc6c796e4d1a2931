"""Self-shutdown after WAIIDE_IDLE_TIMEOUT without real use (supervisor.idle).

Unit scenarios (IdleWatch on a fake clock, real files):
 1. With no use the server stops `timeout` after it was ready; the plan warns `warning` before.
 2. Use published by a worker moves both times; busy work holds the timer while it runs and
    restarts it when it ends; with busy work not counting, it stops anyway.

Real processes (supervisor_main.py, the real gateway, a stand-in IDE):
 3. Nobody uses it: the supervisor stops every child and exits 0 shortly after the timeout.
 4. The IDE extension reports use every 2 s: the server stays up; after the last report it
    stops one timeout later. A busy report holds it while busy counts.
"""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path

import psutil
import pytest

from common.activity_files import PLAN_FILE, BusyWork, IdlePlan, SessionBusy, WorkerActivity
from supervisor.idle import IdlePolicy, IdleWatch
from tests.supervisor.test_main import BANNER, Run, supervisor


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def publish(directory: Path, *, last: float | None = None, busy: tuple[BusyWork, ...] = (),
            busy_until: float | None = None) -> None:
    sessions = (SessionBusy("tab", (busy_until or 0.0) - 90, busy_until, busy),) \
        if busy_until is not None else ()
    doc = WorkerActivity(pid=4242, updated_at=last or 0.0, last_activity=last,
                         cause="editor" if last else None, sessions=sessions)
    (directory / "worker-4242.json").write_bytes(doc.to_json())


def plan(directory: Path) -> IdlePlan:
    return IdlePlan.from_json((directory / PLAN_FILE).read_bytes())


def test_no_use_stops_after_the_timeout_with_a_warning_before(tmp_path: Path) -> None:
    """1."""
    clock = Clock()
    start = clock.now
    watch = IdleWatch(tmp_path, IdlePolicy(timeout_s=600, warning_s=300), wall_clock=clock)
    assert watch.tick() is False
    assert (plan(tmp_path).warn_at, plan(tmp_path).stops_at) == (start + 300, start + 600)
    clock.now = start + 599
    assert watch.tick() is False
    clock.now = start + 601  # checked every CHECK_EVERY_S (2 s)
    assert watch.tick() is True


def test_use_and_busy_work_move_the_deadline(tmp_path: Path) -> None:
    """2."""
    clock = Clock()
    start = clock.now
    watch = IdleWatch(tmp_path, IdlePolicy(timeout_s=600, warning_s=300), wall_clock=clock)
    assert watch.tick() is False  # the first tick: every child is ready
    publish(tmp_path, last=start + 500)
    clock.now = start + 700
    assert watch.tick() is False
    assert plan(tmp_path).stops_at == start + 1100

    sleeping = (BusyWork("terminal", "sleep 300"),)
    publish(tmp_path, last=start + 500, busy=sleeping, busy_until=start + 2000)
    clock.now = start + 1500
    assert watch.tick() is False
    assert plan(tmp_path).stops_at is None  # held while busy
    clock.now = start + 2050  # the busy report expired at 2000; it was last seen at 1500
    assert watch.tick() is False
    assert plan(tmp_path).stops_at == start + 1500 + 600
    clock.now = start + 2101
    assert watch.tick() is True

    not_counted = IdleWatch(tmp_path, IdlePolicy(timeout_s=600, busy_counts=False),
                            wall_clock=clock)
    assert not_counted.tick() is False
    publish(tmp_path, last=clock.now - 100, busy=sleeping, busy_until=clock.now + 10_000)
    clock.now += 700
    assert not_counted.tick() is True


# ---- real processes ----------------------------------------------------------------------------

def _real_gateway(**env: str) -> dict[str, str]:
    # The real gateway (1 worker, open) publishes activity; the IDE and monitor stay stand-ins.
    return {"SUPERVISOR_GATEWAY_COMMAND": "", "GATEWAY_WORKERS": "1", "GATEWAY_AUTH": "none",
            "WAIIDE_IDLE_WARNING": "3", **env}


def _report(run: Run, doc: dict[str, object]) -> None:
    ide_env = run.started("waiide")[0]["env"]
    req = urllib.request.Request(ide_env["WAIIDE_ACTIVITY_URL"], data=json.dumps(doc).encode(),
                                 method="POST", headers={
                                     "X-Waiide-Activity-Secret": ide_env["WAIIDE_ACTIVITY_SECRET"],
                                     "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.status == 204


@pytest.mark.slow
def test_nobody_uses_it_so_it_stops_itself(tmp_path: Path) -> None:
    """3."""
    with supervisor(tmp_path, **_real_gateway(WAIIDE_IDLE_TIMEOUT="6")) as run:
        run.wait_log(BANNER, 60)
        ready_at = time.monotonic()
        assert run.exit_code(timeout_s=40) == 0
        took = time.monotonic() - ready_at
        assert 6 - 1 <= took <= 6 + 5, f"stopped {took:.1f}s after ready with a 6 s timeout"
        log = run.text()
        assert "the server stops in" in log and "no use for" in log
        assert "WAIIDE_IDLE_TIMEOUT=6" in log
        assert not [p for p in run.child_pids() if psutil.pid_exists(p)]


@pytest.mark.slow
def test_reports_keep_it_up_and_busy_work_holds_it(tmp_path: Path) -> None:
    """4."""
    with supervisor(tmp_path, **_real_gateway(WAIIDE_IDLE_TIMEOUT="6")) as run:
        run.wait_log(BANNER, 60)
        until = time.monotonic() + 12
        while time.monotonic() < until:
            _report(run, {"cause": "editor"})
            time.sleep(2)
        assert run.proc.poll() is None, "stopped while someone was typing"
        _report(run, {"cause": None, "busy": [{"kind": "terminal", "name": "sleep 300"}]})
        time.sleep(10)
        assert run.proc.poll() is None, "stopped while a terminal command ran"
        assert "busy (terminal sleep 300)" in run.text()
        last = time.monotonic()
        _report(run, {"cause": None, "busy": []})  # the command finished
        assert run.exit_code(timeout_s=40) == 0
        took = time.monotonic() - last
        assert 4 <= took <= 6 + 5, f"stopped {took:.1f}s after the busy work ended"
