"""Keeping the gateway at its worker count: a worker that died is restarted, with backoff.

Sanic's manager does not respawn a server worker that exits unexpectedly (sanic#3062): it marks
it FAILED and the gateway would quietly serve with fewer workers, or with none (every worker
killed left nothing to notice it but the supervisor's probe, 20 s later). So the gateway's
*main* process runs `WorkerKeeper`, a thread that looks at the manager's shared worker states
every CHECK_EVERY_S and asks the manager to restart each dead server worker through the same
message pipe Sanic's own reload uses. A worker whose restart fails (its replacement crashes at
start, or the manager refuses) stays dead and is asked for again with capped exponential
backoff (0.5 s doubling to 30 s), each attempt logged; its dead pid's live gauges are dropped.

Every worker reports the capacity (`Capacity`: workers up of expected) in /api/status (degraded
with the reason while short), /api/services and /metrics (waiide_hub_gateway_workers_up/_expected).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from sanic import Sanic

from gateway.sanic_compat import (
    SERVER_WORKER_PREFIX,
    manager_is_stopping,
    manager_restart,
    manager_worker_states,
    worker_states,
)

logger = logging.getLogger(__name__)

CHECK_EVERY_S = 0.25
BACKOFF_INITIAL_S = 0.5
BACKOFF_MAX_S = 30.0
CAPACITY_CACHE_S = 0.5
# A crash is FAILED; a worker whose start-up raised (a listener failed) logs the error and exits
# 0, which Sanic records as COMPLETED. Outside a shutdown a server worker never ends on purpose.
_DEAD = frozenset({"FAILED", "COMPLETED"})
_UP = "ACKED"  # a worker acknowledges once its server is started


def _server_states(states: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {name: state for name, state in states.items()
            if name.startswith(SERVER_WORKER_PREFIX)}


class WorkerKeeper:
    """The main process's thread that restarts dead server workers (see the module docstring).

    Args:
        on_dead_pid: called once per dead worker pid (drops its live metric gauges).
    """

    def __init__(self, on_dead_pid: Callable[[int], None],
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._on_dead_pid = on_dead_pid
        self._clock = clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._attempts: dict[str, int] = {}
        self._next_try: dict[str, float] = {}
        self._dead_pids: set[int] = set()

    def start(self, app: Sanic[Any, Any]) -> None:
        """Start watching `app`'s manager (Sanic's main_process_ready listener)."""
        self._thread = threading.Thread(target=self._run, args=(app,), name="worker-keeper",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)

    def _run(self, app: Sanic[Any, Any]) -> None:
        while not self._stop.wait(CHECK_EVERY_S):
            try:
                if manager_is_stopping(app):
                    return
                self.check(manager_worker_states(app), lambda name: manager_restart(app, name))
            except Exception:  # the keeper must outlive a transient manager hiccup
                logger.exception("worker keeper check failed")

    def check(self, states: dict[str, dict[str, Any]], restart: Callable[[str], None]) -> None:
        """Ask for a restart of every dead server worker that is due."""
        now = self._clock()
        for name, state in _server_states(states).items():
            if state.get("state") == _UP:
                self._attempts.pop(name, None)
                self._next_try.pop(name, None)
                continue
            if state.get("state") not in _DEAD or now < self._next_try.get(name, 0.0):
                continue
            pid = int(state.get("pid") or 0)
            if pid and pid not in self._dead_pids:
                self._dead_pids.add(pid)
                self._on_dead_pid(pid)
            attempt = self._attempts.get(name, 0) + 1
            self._attempts[name] = attempt
            delay = min(BACKOFF_INITIAL_S * 2.0 ** min(attempt - 1, 16), BACKOFF_MAX_S)
            self._next_try[name] = now + delay
            if attempt == 1:
                logger.warning("gateway worker %s [%d] died; restarting it", name, pid)
            else:
                logger.error("gateway worker %s is still down after %d restart attempt(s); "
                             "trying again, next in %.1fs", name, attempt - 1, delay)
            restart(name)


class Capacity:
    """A worker's view of its siblings, read from the manager's shared states at most every
    CAPACITY_CACHE_S (each read is a round trip to Sanic's sync manager)."""

    def __init__(self, app: Sanic[Any, Any], expected: int,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._app = app
        self._expected = expected
        self._clock = clock
        self._cached: tuple[int, int] | None = None
        self._until = 0.0

    def counts(self) -> tuple[int, int] | None:
        """(workers up, expected); None outside Sanic's manager (single-process servers)."""
        now = self._clock()
        if self._cached is None or now >= self._until:
            try:
                states = _server_states(worker_states(self._app))
            except (AttributeError, OSError, EOFError):
                return None
            up = sum(1 for state in states.values() if state.get("state") == _UP)
            self._cached, self._until = (up, self._expected), now + CAPACITY_CACHE_S
        return self._cached
