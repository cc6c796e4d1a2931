"""Replacing a gateway worker that died: Sanic marks a crashed worker FAILED and leaves it so.

Sanic's manager does not respawn a server worker that exits unexpectedly (sanic#3062): the
gateway would quietly serve with fewer workers, and a killed worker's live gauges (in-flight
requests, open WebSockets) would linger in the metrics. Every worker runs this watchdog; whoever
sees a FAILED sibling first asks the manager to restart it by name, through the same message pipe
Sanic's own reload uses, and marks the dead pid's metrics files dead. Restarting twice is
harmless: the manager restarts the process it finds under that name.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from sanic import Sanic

from gateway.sanic_compat import (
    SERVER_WORKER_PREFIX,
    restart_worker,
    worker_name,
    worker_states,
)

logger = logging.getLogger(__name__)

_CHECK_EVERY_S = 1.0
_FAILED = "FAILED"


class WorkerWatchdog:
    """Watches the sibling workers' states in this worker's event loop."""

    def __init__(self, app: Sanic[Any, Any], on_dead_pid: Callable[[int], None]) -> None:
        self._app = app
        self._on_dead_pid = on_dead_pid
        self._task: asyncio.Task[None] | None = None
        self._restarted: set[tuple[str, int]] = set()

    def start(self) -> None:
        if worker_name(self._app) is not None:  # no manager: single-process test servers
            self._task = asyncio.get_running_loop().create_task(self._run())

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(_CHECK_EVERY_S)
            try:
                self.check()
            except Exception:  # the watchdog must outlive a transient manager hiccup
                logger.exception("worker watchdog check failed")

    def check(self) -> None:
        """Restart every FAILED server worker (once per dead pid)."""
        for name, state in worker_states(self._app).items():
            if not name.startswith(SERVER_WORKER_PREFIX) or state.get("state") != _FAILED:
                continue
            pid = int(state.get("pid") or 0)
            if (name, pid) in self._restarted:
                continue
            self._restarted.add((name, pid))
            logger.warning("gateway worker %s [%d] died; restarting it", name, pid)
            if pid:
                self._on_dead_pid(pid)
            restart_worker(self._app, name)
