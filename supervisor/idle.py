"""Self-shutdown: the server stops itself after WAIIDE_IDLE_TIMEOUT seconds without real use.

The proxies in front of a server (configurable-http-proxy, jupyter-server-proxy) record activity
for every WebSocket frame they relay, so a hub-side culler sees an open, untouched IDE tab as
busy forever. Only the server knows what was use (`gateway.activity`): the gateway workers
publish it to the activity directory, and this watch reads it every few seconds.

Idle time runs from the newest of: the moment every child was ready, the last real use, the last
moment busy work (a terminal command, a task, a debug session) was seen running — when busy
work counts (WAIIDE_IDLE_BUSY_COUNTS, the default). The watch publishes its plan (`plan.json`:
when the warning starts, when the server stops) for `/api/activity`, the metrics and the IDE
extension, which shows the warning with a "Keep working" button that counts as use.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from common.activity_files import PLAN_FILE, IdlePlan, merge, read_workers, write_atomically

logger = logging.getLogger(__name__)

CHECK_EVERY_S = 2.0


@dataclass(frozen=True, slots=True)
class IdlePolicy:
    """WAIIDE_IDLE_TIMEOUT (0: off), WAIIDE_IDLE_WARNING, WAIIDE_IDLE_BUSY_COUNTS."""

    timeout_s: float = 0.0
    warning_s: float = 300.0
    busy_counts: bool = True

    @property
    def enabled(self) -> bool:
        return self.timeout_s > 0


class IdleWatch:
    """Decides, every CHECK_EVERY_S, whether the server has been idle long enough to stop."""

    def __init__(self, directory: Path, policy: IdlePolicy, *,
                 wall_clock: Callable[[], float] = time.time) -> None:
        self._directory = directory
        self._policy = policy
        self._clock = wall_clock
        # Set at the first tick, which comes once every child is ready: a slow start is not idle.
        self._idle_since: float | None = None
        self._next_check = 0.0
        self._warned = False
        self._busy_names: tuple[str, ...] = ()

    def tick(self) -> bool:
        """True when the server should stop now (called from the supervisor's loop)."""
        now = self._clock()
        if now < self._next_check:
            return False
        self._next_check = now + CHECK_EVERY_S
        if self._idle_since is None:
            self._idle_since = now
        policy = self._policy
        summary = merge(read_workers(self._directory), now)
        if summary.last_activity is not None:
            self._idle_since = max(self._idle_since, summary.last_activity)
        busy = summary.busy if policy.busy_counts else ()
        self._log_busy(tuple(f"{b.kind} {b.name}".strip() for b in busy))
        if busy:
            self._idle_since = max(self._idle_since, now)
            self._publish(None, None, now)
            self._warned = False
            return False
        stops_at = self._idle_since + policy.timeout_s
        warn_at = max(self._idle_since, stops_at - policy.warning_s)
        self._publish(warn_at, stops_at, now)
        if now >= stops_at:
            logger.info("no use for %.0fs (WAIIDE_IDLE_TIMEOUT=%g): stopping the server",
                        now - self._idle_since, policy.timeout_s, extra={"action": "idle-stop"})
            return True
        if now >= warn_at and not self._warned:
            logger.info("no use for %.0fs: the server stops in %.0fs unless someone uses it",
                        now - self._idle_since, stops_at - now, extra={"action": "idle-warn"})
        self._warned = now >= warn_at
        return False

    def _log_busy(self, names: tuple[str, ...]) -> None:
        if names != self._busy_names:
            if names:
                logger.info("busy (%s): the idle timer waits", ", ".join(names))
            elif self._busy_names:
                logger.info("no busy work any more: the idle timer runs again")
            self._busy_names = names

    def _publish(self, warn_at: float | None, stops_at: float | None, now: float) -> None:
        plan = IdlePlan(idle_timeout_s=self._policy.timeout_s, warning_s=self._policy.warning_s,
                        busy_counts=self._policy.busy_counts, warn_at=warn_at,
                        stops_at=stops_at, updated_at=now)
        try:
            write_atomically(self._directory / PLAN_FILE, plan.to_json())
        except OSError as exc:
            logger.warning("cannot write the idle plan in %s: %s", self._directory, exc)
