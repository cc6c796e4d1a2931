"""The instance lock: one supervisor per uid + API_SERVER_PORT, and a dead one's leftovers killed
only when they are provably its children (real processes, never by name)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import psutil
import pytest

from common.components_file import ChildEntry
from supervisor.instance_lock import InstanceBusy, InstanceLock, kill_leftovers, lock_path
from tests.procs import PYTHON, stop_group

# A leader that starts a grandchild in its own process group, then waits.
FAMILY = ("import subprocess, sys, time; "
          "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)']); "
          "time.sleep(120)")


def _family() -> subprocess.Popen[bytes]:
    return subprocess.Popen([PYTHON, "-c", FAMILY], start_new_session=True)


def _wait_children(pid: int, count: int) -> list[psutil.Process]:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        children = psutil.Process(pid).children()
        if len(children) >= count:
            return children
        time.sleep(0.05)
    raise AssertionError(f"{pid} did not start {count} child(ren)")


def test_a_second_holder_is_refused_naming_the_first(tmp_path: Path) -> None:
    path = lock_path({"XDG_RUNTIME_DIR": str(tmp_path)}, 9191)
    assert path.parent == tmp_path and str(os.getuid()) in path.name
    first = InstanceLock(path)
    assert first.acquire() == []
    try:
        with pytest.raises(InstanceBusy, match=f"pid {os.getpid()}"):
            InstanceLock(path).acquire()
    finally:
        first.release()
    second = InstanceLock(path)  # released: free again
    assert second.acquire() == []
    second.release()


def test_leftovers_of_a_dead_holder_are_killed_by_group(tmp_path: Path) -> None:
    family = _family()
    stranger = subprocess.Popen([PYTHON, "-c", "import time; time.sleep(120)"],
                                start_new_session=True)
    try:
        grandchild = _wait_children(family.pid, 1)[0]
        path = tmp_path / "instance.lock"
        dead = InstanceLock(path)
        dead.acquire()
        dead.record([ChildEntry("waiide", pid=family.pid)])
        recorded = path.read_bytes()
        dead.release()
        path.write_bytes(recorded)  # what a SIGKILLed supervisor leaves behind
        os.kill(family.pid, signal.SIGKILL)  # the leader is gone; its group lives on
        family.wait(5)
        killed = InstanceLock(path).acquire()
        assert killed == [grandchild.pid]
        assert not grandchild.is_running() or grandchild.status() == psutil.STATUS_ZOMBIE
        assert stranger.poll() is None  # not in the record: untouched
    finally:
        stop_group(family)
        stop_group(stranger)


def test_a_reused_pid_is_left_alone() -> None:
    stranger = subprocess.Popen([PYTHON, "-c", "import time; time.sleep(120)"],
                                start_new_session=True)
    try:
        created = psutil.Process(stranger.pid).create_time()
        record = {"children": {"waiide": {"pid": stranger.pid, "create_time": created - 3600}}}
        assert kill_leftovers(record) == []  # same pid, another start time: not ours
        assert stranger.poll() is None
    finally:
        stop_group(stranger)
