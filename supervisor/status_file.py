"""Publishing the children's state to the components file (format: `common.components_file`).

A write failure is logged, never fatal to supervision: the monitor then runs without pids.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from common.components_file import ChildEntry, write_components

logger = logging.getLogger(__name__)


class ComponentsFile:
    """Rewrites the components document for the monitor on every change."""

    def __init__(self, path: Path, wall_clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self._wall_clock = wall_clock

    def write(self, components: Sequence[ChildEntry]) -> None:
        try:
            write_components(self.path, components, self._wall_clock())
        except OSError as exc:
            logger.error("cannot write the components file %s: %s", self.path, exc)
