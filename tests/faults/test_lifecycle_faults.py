"""Faults around the supervisor itself and the status record: kill -9 of the supervisor, a second
instance, leftovers of a dead one, a deleted record, SIGHUP."""

from __future__ import annotations

import contextlib
import re
import signal
import socket
import time
from pathlib import Path

import psutil
import pytest

from tests.faults.stack import (
    BANNER,
    RECOVERY,
    base_env,
    cmd,
    get,
    new_ports,
    running,
    start,
    stop,
    wait_for,
)
from tests.procs import PYTHON, RESOURCES

STUBBORN_IDE = RESOURCES / "children" / "stubborn_ide.py"


def _alive(pids: list[int]) -> list[int]:
    out = []
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                out.append(pid)
    return out


def _ports_free(ports: dict[str, int]) -> bool:
    for port in ports.values():
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                return False
    return True


@pytest.mark.slow
def test_kill_9_of_the_supervisor_leaves_nothing_and_a_new_start_works(tmp_path: Path) -> None:
    """Issue 12: all 7 children survived holding every port; a new supervisor's probes were
    answered by the orphans and /api/status 200 came from the old stack."""
    ports = new_ports()
    env = base_env(tmp_path, ports)
    with running(tmp_path, env, ports, name="first") as first:
        children = [p.pid for p in first.remember_tree() if p.pid != first.proc.pid]
        assert len(children) >= 5  # IDE, gateway main + manager + 2 workers, monitor
        began = time.monotonic()
        first.proc.kill()
        first.proc.wait(5)
        wait_for(lambda: not _alive(children), 20, f"the children to die: {_alive(children)}")
        RECOVERY["supervisor kill -9: every child gone after"] = time.monotonic() - began
        wait_for(lambda: _ports_free(ports), 10, "the ports to be free")
    with running(tmp_path, env, ports, name="second") as second:
        assert get(f"{second.api}/api/status")[0] == 200
        gateway = second.child_pid("gateway")
        healthz = get(f"{second.api}/api/healthz")[1]
        assert psutil.Process(healthz["pid"]).ppid() == gateway  # served by the new stack
        RECOVERY["supervisor kill -9: new start ready after"] = time.monotonic() - began


@pytest.mark.slow
def test_leftovers_of_a_dead_supervisor_are_killed_by_the_next(tmp_path: Path) -> None:
    """A child that ignores SIGTERM outlives the parent-death signal; the next supervisor
    finds it in the dead one's record (pid + start time) and kills its process group."""
    ports = new_ports()
    env = base_env(tmp_path, ports)
    env["WAIIDE_COMMAND"] = cmd(PYTHON, STUBBORN_IDE, "--port", "{port}")
    first = start(tmp_path, env, ports, "first")
    try:
        first.wait_log(BANNER, 90)
        ide = first.child_pid("waiide")
        stubborn = [ide, *(p.pid for p in psutil.Process(ide).children(recursive=True))]
        first.remember_tree()
        first.proc.kill()
        first.proc.wait(5)
        time.sleep(1.0)  # the parent-death SIGTERM has been delivered (and ignored)
        assert _alive(stubborn), "the stand-in should survive SIGTERM"
        began = time.monotonic()
        with running(tmp_path, env, ports, name="second") as second:
            assert not _alive(stubborn)
            assert re.search(r"killed what was left of them: [\d, ]+", second.text())
            assert get(f"{second.api}/api/status")[0] == 200
            RECOVERY["dead supervisor's stubborn leftovers: killed, new start ready"] = \
                time.monotonic() - began
    finally:
        stop(first)


@pytest.mark.slow
def test_a_second_supervisor_of_the_same_instance_is_refused(tmp_path: Path) -> None:
    ports = new_ports()
    env = base_env(tmp_path, ports)
    with running(tmp_path, env, ports, name="first") as first:
        second = start(tmp_path, env, ports, "second")
        try:
            assert second.exit_code(30) == 3
        finally:
            stop(second)
        text = second.text()
        assert "another WAIIDE Hub supervisor is already running" in text
        assert f"pid {first.proc.pid}" in text
        assert get(f"{first.api}/api/status")[0] == 200  # the first one is untouched


@pytest.mark.slow
def test_a_deleted_status_record_is_recreated(tmp_path: Path) -> None:
    """Issue 12: after RemoveIPC deleted the record, /api/status stayed 503 forever."""
    with running(tmp_path) as stack:
        record = Path(stack.env["WAIIDE_HUB_STATUS_PATH"])
        assert record.exists()
        began = time.monotonic()
        record.unlink()

        def served() -> bool:
            return record.exists() and all(get(f"{stack.api}/api/status")[0] == 200
                                           for _ in range(10))

        wait_for(served, 10, "the record re-created and read by every worker")
        RECOVERY["deleted status record: re-created and served"] = time.monotonic() - began
        assert "was deleted or replaced; re-created it" in stack.text()


@pytest.mark.slow
def test_sighup_restarts_in_dependency_order_with_readiness(tmp_path: Path) -> None:
    """Issue 12: SIGHUP restarted all children in one tick, dropping the readiness order."""
    with running(tmp_path) as stack:
        mark = len(stack.text())
        began = time.monotonic()
        stack.proc.send_signal(signal.SIGHUP)
        stack.wait_log(r"child monitor \[\d+\] is ready after", 60, after=mark)
        RECOVERY["SIGHUP: every child restarted and ready"] = time.monotonic() - began
        text = stack.text()[mark:]
        starts = re.findall(r"child (\w+) \[\d+\] (started|is ready)", text)
        assert starts == [("waiide", "started"), ("waiide", "is ready"),
                                       ("gateway", "started"), ("gateway", "is ready"),
                                       ("monitor", "started"), ("monitor", "is ready")], starts
        stops = re.findall(r"stopping child (\w+)", text)
        assert stops == ["monitor", "gateway", "waiide"], stops
        assert text.index("stopping child waiide") < text.index("child waiide [")
        assert get(f"{stack.api}/api/status")[0] == 200
        assert BANNER in stack.text()
