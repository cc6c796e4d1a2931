"""One supervisor per instance, and nothing left over from a previous one that was killed.

The instance key is the uid plus API_SERVER_PORT (the same key the status record and the metrics
directory use). A starting supervisor takes an exclusive `flock` on
`$XDG_RUNTIME_DIR/waiide-hub-{uid}-{port}.lock` (the temp directory without XDG_RUNTIME_DIR):

- held by a live supervisor: the start stops with `InstanceBusy` naming that supervisor's pid;
  the kernel drops a flock when its holder dies, however it dies, so a held lock always means a
  live holder (the file descriptor is close-on-exec: children never inherit it);
- free: the file may still name the children of a supervisor that was killed (-9, OOM) before
  they died too. Each is killed only when it is provably that child: its pid is alive with the
  process start time recorded when it started, or its process group (the child's pid, since
  every child leads its own session) still has members started after it. Linux does not reuse a
  pid while a process group of that id has members, so a group found under a dead leader's pid
  is that leader's group. Nothing is ever looked up or killed by name.

The supervisor rewrites the file (atomically) on every change of its children.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import signal
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import psutil

from common.components_file import ChildEntry
from supervisor.errors import SupervisorError

logger = logging.getLogger(__name__)

# Start times are rounded by the kernel's clock ticks and psutil's boot-time arithmetic.
CREATE_TIME_SLACK_S = 1.0


class InstanceBusy(SupervisorError):
    """Another supervisor holds this instance's lock."""


def lock_path(environ: Mapping[str, str], api_port: int) -> Path:
    """The lock file of the instance `uid + api_port`."""
    runtime = (environ.get("XDG_RUNTIME_DIR") or "").strip()
    base = Path(runtime) if runtime and os.path.isdir(runtime) and os.access(runtime, os.W_OK) \
        else Path(tempfile.gettempdir())
    return base / f"waiide-hub-{os.getuid()}-{api_port}.lock"


class InstanceLock:
    """The lock and the record of this supervisor's children; `acquire()`, `record()`, `release()`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None
        self._created: dict[int, float] = {}

    def acquire(self) -> list[int]:
        """Take the lock and kill a dead predecessor's leftover children; the pids killed.

        Raises:
            InstanceBusy: another supervisor holds it.
            OSError: the file cannot be created.
        """
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            previous = _read(self.path)
            os.close(fd)
            raise InstanceBusy(_busy_message(self.path, previous)) from None
        self._fd = fd
        killed = kill_leftovers(_read(self.path))
        self._write({"supervisor": os.getpid(), "started_at": time.time(), "children": {}})
        return killed

    def record(self, entries: Sequence[ChildEntry]) -> None:
        """Remember the live children's pids and start times (after every lifecycle change)."""
        if self._fd is None:
            return
        children: dict[str, Any] = {}
        for entry in entries:
            if entry.pid is None:
                continue
            created = self._create_time(entry.pid)
            if created is not None:
                children[entry.name] = {"pid": entry.pid, "create_time": created}
        self._write({"supervisor": os.getpid(), "started_at": time.time(), "children": children})

    def release(self) -> None:
        """Empty the record and drop the lock (after every child stopped).

        The file stays: unlinking it would let a starting supervisor lock a fresh inode while
        another still waits on the old one.
        """
        if self._fd is None:
            return
        with contextlib.suppress(OSError):
            os.ftruncate(self._fd, 0)
        os.close(self._fd)
        self._fd = None

    def _create_time(self, pid: int) -> float | None:
        if pid not in self._created:
            try:
                self._created = {p: t for p, t in self._created.items() if psutil.pid_exists(p)}
                self._created[pid] = psutil.Process(pid).create_time()
            except psutil.Error:
                return None
        return self._created[pid]

    def _write(self, document: dict[str, Any]) -> None:
        # In place, not by rename: the lock belongs to the inode the path names, and a new
        # supervisor must find that same inode locked.
        assert self._fd is not None
        data = json.dumps(document).encode()
        try:
            os.ftruncate(self._fd, 0)
            os.pwrite(self._fd, data, 0)
        except OSError as exc:
            logger.warning("cannot record the children in %s: %s", self.path, exc)


def _read(path: Path) -> dict[str, Any]:
    try:
        document = json.loads(path.read_bytes() or b"{}")
    except (OSError, ValueError):
        return {}
    return document if isinstance(document, dict) else {}


def _busy_message(path: Path, previous: Mapping[str, Any]) -> str:
    pid = previous.get("supervisor")
    who = f"pid {pid}" if isinstance(pid, int) else "a process"
    with contextlib.suppress(psutil.Error, TypeError, ValueError):
        who += f" ({' '.join(psutil.Process(int(pid)).cmdline())[:120]})"  # type: ignore[arg-type]
    return (f"another WAIIDE Hub supervisor is already running for this user and "
            f"API_SERVER_PORT: {who}, holding {path}. Stop it first, or choose another "
            f"API_SERVER_PORT.")


def kill_leftovers(previous: Mapping[str, Any]) -> list[int]:
    """SIGKILL what provably remains of the children in a dead supervisor's record."""
    children = previous.get("children")
    if not isinstance(children, dict):
        return []
    killed: list[int] = []
    for name, item in children.items():
        if not isinstance(item, dict):
            continue
        pid, created = item.get("pid"), item.get("create_time")
        if not isinstance(pid, int) or not isinstance(created, (int, float)) or pid <= 1:
            continue
        pids = _leftover_group(pid, float(created))
        for proc in pids:
            with contextlib.suppress(psutil.Error):
                proc.send_signal(signal.SIGKILL)
                killed.append(proc.pid)
        if pids:
            logger.warning("killed %d leftover process(es) of the previous supervisor's %s "
                           "(process group %d): %s", len(pids), name, pid,
                           ", ".join(str(p.pid) for p in pids))
            psutil.wait_procs(pids, timeout=5)
    return killed


def _leftover_group(pgid: int, created: float) -> list[psutil.Process]:
    """The processes that are provably the recorded child `pgid` or its group's members."""
    with contextlib.suppress(psutil.Error):
        leader = psutil.Process(pgid)
        if abs(leader.create_time() - created) > CREATE_TIME_SLACK_S:
            return []  # the pid now belongs to a stranger (its group is the stranger's too)
    members = []
    for proc in psutil.process_iter(["pid"]):
        with contextlib.suppress(psutil.Error, OSError):
            if os.getpgid(proc.pid) == pgid and proc.create_time() >= created - CREATE_TIME_SLACK_S:
                members.append(proc)
    return members
