"""Resident memory and CPU of a proxy's whole process tree (psutil), sampled during a scenario.

`RssSampler` records the tree's RSS just before a scenario (idle) and every 50 ms during it, and
reports the peak growth over idle. The tree's members are listed again every half second, not at
every sample: listing children reads every process's stat file, which on a shared 2-core machine
with many processes would cost the load a noticeable share of a core at 20 Hz.

`settle()` waits (bounded) until the servers are nearly idle, so a row still busy after a failed
or timed-out scenario (a buffering proxy finishing a body nobody reads) does not slow the next row.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Sequence

import psutil  # type: ignore[import-untyped]  # no stubs in the venv (types-psutil)

SAMPLE_INTERVAL_S = 0.05
RELIST_INTERVAL_S = 0.5
SETTLE_WINDOW_S = 0.2
SETTLE_IDLE_CPU = 0.05  # fraction of one core


def _tree(pid: int) -> list[psutil.Process]:
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.Error:
        return []


def _rss(procs: list[psutil.Process]) -> int:
    total = 0
    for proc in procs:
        # A worker may exit between listing and reading; it holds no memory then.
        with contextlib.suppress(psutil.Error):
            total += proc.memory_info().rss
    return total


def _cpu_s(procs: list[psutil.Process]) -> float:
    total = 0.0
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            times = proc.cpu_times()
            total += times.user + times.system
    return total


def tree_rss(pid: int) -> int:
    """RSS in bytes of `pid` and all its descendants now."""
    return _rss(_tree(pid))


class RssSampler:
    """Peak RSS growth of a process tree over its idle RSS, sampled in a background thread."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.idle = 0
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"rss-{pid}", daemon=True)

    def start(self) -> None:
        self.idle = self.peak = tree_rss(self.pid)
        self._thread.start()

    def stop(self) -> int:
        """Stop sampling; return the peak growth in bytes (never negative)."""
        self._stop.set()
        self._thread.join(timeout=5)
        self.peak = max(self.peak, tree_rss(self.pid))
        return max(0, self.peak - self.idle)

    def _run(self) -> None:
        procs = _tree(self.pid)
        listed = time.monotonic()
        while not self._stop.wait(SAMPLE_INTERVAL_S):
            if time.monotonic() - listed > RELIST_INTERVAL_S:
                procs, listed = _tree(self.pid), time.monotonic()
            self.peak = max(self.peak, _rss(procs))


def settle(pids: Sequence[int], timeout_s: float) -> bool:
    """Wait until the trees of `pids` together use under 5 % of a core over a short window (or
    time out). Returns whether they settled."""
    deadline = time.monotonic() + timeout_s
    procs = [proc for pid in pids for proc in _tree(pid)]
    before = _cpu_s(procs)
    while time.monotonic() < deadline:
        time.sleep(SETTLE_WINDOW_S)
        now = _cpu_s(procs)
        if now - before < SETTLE_IDLE_CPU * SETTLE_WINDOW_S:
            return True
        before = now
    return False
