"""Per-component process facts: the supervisor's components file plus psutil samples.

The supervisor rewrites MONITOR_COMPONENTS_FILE (format and reader: `common.components_file`)
whenever a child starts, restarts or stops. Without the file (or with a broken one) the monitor runs without pids and
says so once in the log. RSS, CPU and CPU time cover the component's whole process tree (code-server
and the Sanic gateway both fork workers), sampled with psutil each tick; `cpu_percent` is the
average since the previous tick (None on the first sample of a process tree) and `cpu_seconds`
sums user+system time of the live tree, so it can drop when a child exits (a counter reset).
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from pathlib import Path

import psutil

from common.components_file import ChildEntry, read_components

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ProcessSample:
    """What psutil saw of one component's process tree this tick."""

    pid: int
    alive: bool
    uptime_s: float | None = None
    rss_bytes: int | None = None
    cpu_percent: float | None = None
    cpu_seconds: float | None = None


class ProcessSampler:
    """Reads the components file and samples process trees; keeps psutil handles between ticks."""

    def __init__(self, components_file: Path | None) -> None:
        self.components_file = components_file
        self._procs: dict[int, psutil.Process] = {}
        self._last_problem: str | None = None

    def read_components(self) -> dict[str, ChildEntry]:
        """The supervisor's current view; empty when there is no (valid) file."""
        if self.components_file is None:
            return {}
        try:
            entries = read_components(self.components_file)
        except (OSError, ValueError) as exc:
            self._report(f"components file {self.components_file} unusable: {exc}")
            return {}
        self._report(None)
        return entries

    def _report(self, problem: str | None) -> None:
        # Log a problem when it appears or changes, not on every tick.
        if problem != self._last_problem:
            if problem is None:
                logger.info("components file %s readable again", self.components_file)
            else:
                logger.warning("%s; running without pids", problem)
            self._last_problem = problem

    def sample(self, pid: int, started_at: float | None, now: float) -> ProcessSample:
        """Sample the tree rooted at `pid`. `now` is unix time (for the uptime)."""
        root = self._process(pid)
        if root is None:
            return ProcessSample(pid=pid, alive=False)
        # A new handle's first cpu_percent() is 0.0 (no baseline): report None for a new root;
        # a new child simply contributes nothing this tick.
        first = root.pid not in self._procs
        rss, cpu_s, percent = 0, 0.0, 0.0
        for proc in [root, *self._children(root)]:
            with contextlib.suppress(psutil.Error):  # a child may exit while we look at it
                with proc.oneshot():
                    rss += proc.memory_info().rss
                    times = proc.cpu_times()
                    # children_* holds the time of descendants this process has reaped, so an
                    # exiting worker's CPU moves to its parent instead of vanishing: the total
                    # only grows, as a counter must (unless an orphan is reaped by init).
                    cpu_s += (times.user + times.system + times.children_user
                              + times.children_system)
                    percent += proc.cpu_percent(None)
                self._procs[proc.pid] = proc
        with contextlib.suppress(psutil.Error):
            started_at = started_at if started_at is not None else root.create_time()
        return ProcessSample(
            pid=pid, alive=True, rss_bytes=rss, cpu_seconds=round(cpu_s, 3),
            uptime_s=None if started_at is None else max(0.0, round(now - started_at, 3)),
            cpu_percent=None if first else round(percent, 2))

    def forget_dead(self) -> None:
        """Drop handles of processes that are gone (call once per tick)."""
        for pid, proc in list(self._procs.items()):
            if not proc.is_running():
                del self._procs[pid]

    def _process(self, pid: int) -> psutil.Process | None:
        proc = self._procs.get(pid)
        try:
            if proc is None or not proc.is_running():  # is_running() also catches pid reuse
                proc = psutil.Process(pid)
                self._procs.pop(pid, None)
            if proc.status() == psutil.STATUS_ZOMBIE:
                return None
        except psutil.Error:
            return None
        return proc

    def _children(self, root: psutil.Process) -> list[psutil.Process]:
        try:
            children = root.children(recursive=True)
        except psutil.Error:
            return []
        # Reuse the handles we already have, so cpu_percent compares with the previous tick.
        return [self._procs.get(c.pid, c) if self._same(c) else c for c in children]

    def _same(self, proc: psutil.Process) -> bool:
        known = self._procs.get(proc.pid)
        return known is not None and known.is_running()

