"""Per-component process facts: the supervisor's components file plus psutil samples.

The supervisor rewrites MONITOR_COMPONENTS_FILE atomically (write + rename) whenever a child
starts, restarts or stops::

    {"components": {"waiide": {"pid": 123, "started_at": 1700000000.0, "restarts": 0,
                               "state": "running"}, ...}}

Every field is optional. Without the file (or with a broken one) the monitor runs without pids and
says so once in the log. RSS, CPU and CPU time cover the component's whole process tree (code-server
and the Sanic gateway both fork workers), sampled with psutil each tick; `cpu_percent` is the
average since the previous tick (None on the first sample of a process tree) and `cpu_seconds`
sums user+system time of the live tree, so it can drop when a child exits (a counter reset).
"""

from __future__ import annotations

import contextlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SupervisedProcess:
    """One entry of the supervisor's components file."""

    pid: int | None = None
    started_at: float | None = None
    restarts: int | None = None
    state: str | None = None


@dataclass(frozen=True, slots=True)
class ProcessSample:
    """What psutil saw of one component's process tree this tick."""

    pid: int
    alive: bool
    uptime_s: float | None = None
    rss_bytes: int | None = None
    cpu_percent: float | None = None
    cpu_seconds: float | None = None


def _number(value: Any) -> float | None:
    is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
    return float(value) if is_number else None


def parse_components(doc: Any) -> dict[str, SupervisedProcess]:
    """The entries of a components document; malformed entries or fields are dropped.

    Raises:
        ValueError: the document is not ``{"components": {...}}``.
    """
    if not isinstance(doc, dict) or not isinstance(doc.get("components"), dict):
        raise ValueError('expected {"components": {...}}')  # noqa: TRY004 - a bad file, not a bug
    entries: dict[str, SupervisedProcess] = {}
    for name, item in doc["components"].items():
        if not isinstance(item, dict):
            continue
        pid, restarts = _number(item.get("pid")), _number(item.get("restarts"))
        state = item.get("state")
        entries[str(name)] = SupervisedProcess(
            pid=int(pid) if pid is not None and pid > 0 else None,
            started_at=_number(item.get("started_at")),
            restarts=int(restarts) if restarts is not None and restarts >= 0 else None,
            state=state if isinstance(state, str) else None)
    return entries


class ProcessSampler:
    """Reads the components file and samples process trees; keeps psutil handles between ticks."""

    def __init__(self, components_file: Path | None) -> None:
        self.components_file = components_file
        self._procs: dict[int, psutil.Process] = {}
        self._last_problem: str | None = None

    def read_components(self) -> dict[str, SupervisedProcess]:
        """The supervisor's current view; empty when there is no (valid) file."""
        if self.components_file is None:
            return {}
        try:
            entries = parse_components(json.loads(self.components_file.read_bytes()))
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

