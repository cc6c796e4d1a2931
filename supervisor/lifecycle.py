"""Lifecycle states of a child and the record the supervision loop keeps for each one.

Transitions (each one logged by the loop, as Sanic does with `ProcessState`):

    PENDING  -> STARTING (spawned, has a ready URL) or RUNNING (nothing to probe)
    STARTING -> RUNNING (probe answered) | BACKOFF/FLAPPING (exited, or not ready in time)
    RUNNING  -> BACKOFF/FLAPPING (exited, or hung and restarted)
    BACKOFF/FLAPPING -> STARTING/RUNNING (restart due)
    any      -> STOPPING (SIGTERM sent) -> STOPPED (shutdown)
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from common.components_file import ChildEntry
from supervisor.process import Process
from supervisor.restart import RestartTracker
from supervisor.spec import ChildSpec


class ChildState(enum.Enum):
    """Lifecycle of one child; the values appear in the components file."""

    PENDING = "pending"  # not started yet
    STARTING = "starting"  # spawned; its readiness probe has not answered yet
    RUNNING = "running"  # ready (or has nothing to probe)
    BACKOFF = "backoff"  # exited; a restart is scheduled
    FLAPPING = "flapping"  # exited too often; restarted only at the capped backoff
    STOPPING = "stopping"  # SIGTERM sent; SIGKILL follows at the deadline
    STOPPED = "stopped"  # stopped for good by the supervisor


ALIVE_STATES = frozenset({ChildState.STARTING, ChildState.RUNNING, ChildState.STOPPING})
WAITING_STATES = frozenset({ChildState.BACKOFF, ChildState.FLAPPING})


@dataclass(slots=True, eq=False)
class ChildRecord:
    """The loop's running record of one child: its current process and its history.

    Times ending in `_s` are monotonic seconds; `started_wall` is unix time for the monitor.
    """

    spec: ChildSpec
    tracker: RestartTracker
    state: ChildState = ChildState.PENDING
    process: Process | None = None
    closed: bool = True
    starts: int = 0
    started_at_s: float = 0.0
    started_wall: float = 0.0
    restart_at_s: float = 0.0
    next_probe_at_s: float = 0.0
    failed_probes: int = 0
    flapping: bool = False

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def pid(self) -> int:
        """The current (or last) process's pid; -1 before the first start."""
        return self.process.pid if self.process is not None else -1

    def status(self) -> ChildEntry:
        """This child as the components file shows it."""
        alive = self.process is not None and self.state in ALIVE_STATES
        return ChildEntry(
            name=self.name,
            pid=self.pid if alive else None,
            started_at=self.started_wall if alive else None,
            restarts=max(self.starts - 1, 0),
            state=self.state.value,
            flapping=self.flapping,
        )
