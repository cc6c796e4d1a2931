"""A multiprocess metrics directory for `python -m gateway` run without the supervisor.

With more than one worker and no PROMETHEUS_MULTIPROC_DIR, every worker would keep its own
registry and /metrics would show whichever worker answered the scrape. The main process then
makes the directory `common.metrics_dir` derives (uid + API_SERVER_PORT; a monitor started
beside it finds the same one), empties it of earlier runs' files, and puts it in the environment
*before* anything imports prometheus_client: it picks its mode from that variable at import,
and forked workers inherit the main process's import. The directory is removed at exit. Called
only from `gateway.__main__.main()`, before it imports the serving code.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from pathlib import Path

from common.metrics_dir import derived_metrics_dir
from gateway.config import GatewayConfig, export_multiproc_dir


@contextlib.contextmanager
def own_metrics_dir(config: GatewayConfig) -> Iterator[Path | None]:
    """Yield the directory made for this run (None when one was given or one worker runs)."""
    if config.multiproc_dir is not None or config.workers < 2:
        yield None
        return
    path = derived_metrics_dir(config.port)
    path.mkdir(mode=0o700, exist_ok=True)
    for stale in path.glob("*.db"):  # a killed run's files would be summed with ours
        stale.unlink(missing_ok=True)
    export_multiproc_dir(str(path))
    try:
        yield path
    finally:
        export_multiproc_dir(None)
        shutil.rmtree(path, ignore_errors=True)

