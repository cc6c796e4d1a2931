"""The per-run scratch space: a temp directory, the Prometheus multiprocess directory, cleanup.

Layout of the run directory (removed when the supervisor exits):

    waiide-hub-XXXXXXXX/
        components.json        pids and states for the monitor (MONITOR_COMPONENTS_FILE)
        jupyter/               jupyter_server_config.json with the ServerProxy section
        prometheus/            PROMETHEUS_MULTIPROC_DIR unless the variable names another one
        activity/              what counts as use (common.activity_files), mode 0700

prometheus_client requires the multiprocess directory to be emptied between runs (its docs:
"This directory must be wiped between process/Gunicorn runs"); a directory the user names is
only stripped of the `*.db` files prometheus_client writes, never removed.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from supervisor.config import SupervisorConfig

logger = logging.getLogger(__name__)

RUN_DIR_PREFIX = "waiide-hub-"
COMPONENTS_FILE_NAME = "components.json"
METRICS_GLOB = "*.db"


@dataclass(frozen=True, slots=True)
class RunPaths:
    """Where this run keeps its files."""

    root: Path
    metrics_dir: Path
    components_file: Path
    jupyter_config_dir: Path
    activity_dir: Path


class RunDir:
    """Creates the run's directories before any child starts and removes them at exit."""

    def __init__(self, paths: RunPaths, own_metrics_dir: bool, status_path: Path | None) -> None:
        self.paths = paths
        self._own_metrics_dir = own_metrics_dir
        self._status_path = status_path

    @classmethod
    def create(cls, config: SupervisorConfig) -> RunDir:
        """Make the temp directory and an empty metrics directory."""
        root = Path(tempfile.mkdtemp(prefix=RUN_DIR_PREFIX))
        own = config.metrics_dir is None
        metrics = root / "prometheus" if own else Path(str(config.metrics_dir))
        paths = RunPaths(root=root, metrics_dir=metrics,
                         components_file=root / COMPONENTS_FILE_NAME,
                         jupyter_config_dir=root / "jupyter", activity_dir=root / "activity")
        run_dir = cls(paths, own, Path(config.status_path) if config.status_path else None)
        try:
            metrics.mkdir(parents=True, exist_ok=True)
            paths.activity_dir.mkdir(mode=0o700)
            run_dir._wipe_metrics()
        except OSError:
            run_dir.cleanup()
            raise
        logger.debug("run directory %s, metrics directory %s", root, metrics)
        return run_dir

    def cleanup(self) -> None:
        """Remove the run directory and this run's metric files (after every child stopped)."""
        if not self._own_metrics_dir:
            self._wipe_metrics()
        shutil.rmtree(self.paths.root, ignore_errors=True)
        if self._status_path is not None:
            # The monitor owns the record and removes it on a clean stop; this is the backstop
            # for a monitor that was killed. Nobody reads it any more: the gateway is stopped.
            with contextlib.suppress(FileNotFoundError):
                self._status_path.unlink()
                logger.info("removed the status record %s", self._status_path)

    def _wipe_metrics(self) -> None:
        for path in self.paths.metrics_dir.glob(METRICS_GLOB):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
