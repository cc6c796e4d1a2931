"""The components file: how the supervisor tells the monitor (and the gateway) the children's pids.

Format (one JSON document, replaced atomically by write-to-temp + rename on every start, exit,
restart and stop, so a reader sees the old or the new document, never half of one):

    {"components": {
        "waiide":     {"pid": 123, "started_at": 1764100000.5, "restarts": 0,
                       "state": "running", "flapping": false},
        "singleuser": {...}, "gateway": {...}, "monitor": {...}},
     "updated_at": 1764100001.2}

`pid` and `started_at` (unix time, float) are null while a child is not running; `state` is a
`ChildState` value (pending, starting, running, backoff, flapping, stopping, stopped). The path
reaches the children as MONITOR_COMPONENTS_FILE.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

ENV_VAR = "MONITOR_COMPONENTS_FILE"


@dataclass(frozen=True, slots=True)
class ComponentStatus:
    """One child as the monitor sees it."""

    name: str
    pid: int | None
    started_at: float | None
    restarts: int
    state: str
    flapping: bool


class ComponentsFile:
    """Writes the components document for the monitor."""

    def __init__(self, path: Path, wall_clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self._wall_clock = wall_clock

    def write(self, components: Sequence[ComponentStatus]) -> None:
        """Replace the document; a write failure is logged, never fatal to supervision."""
        document = {
            "components": {c.name: {"pid": c.pid, "started_at": c.started_at,
                                    "restarts": c.restarts, "state": c.state,
                                    "flapping": c.flapping} for c in components},
            "updated_at": self._wall_clock(),
        }
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        try:
            tmp.write_text(json.dumps(document), encoding="utf-8")
            os.replace(tmp, self.path)  # atomic on POSIX within one directory
        except OSError as exc:
            logger.error("cannot write the components file %s: %s", self.path, exc)
            tmp.unlink(missing_ok=True)
