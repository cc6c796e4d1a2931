"""Where prometheus-client's multiprocess files go when nobody names a directory.

`python -m gateway` with several workers and `python -m monitor` beside it must write into one
directory, or /metrics misses workers and the monitor's series. The supervisor names one
explicitly (PROMETHEUS_MULTIPROC_DIR); started by hand, both derive the same path the way they
derive the status record's (`monitor.record.paths`): from the uid and API_SERVER_PORT, so two
stacks on one host never share it. The gateway creates (and at exit removes) it; the monitor
only uses it when it exists.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

ENV_VAR = "PROMETHEUS_MULTIPROC_DIR"
SHM_DIR = Path("/dev/shm")


def derived_metrics_dir(api_port: int) -> Path:
    """`/dev/shm/waiide-hub-{uid}-{api_port}.metrics` (the temp dir without /dev/shm)."""
    base = SHM_DIR if SHM_DIR.is_dir() else Path(tempfile.gettempdir())
    return base / f"waiide-hub-{os.getuid()}-{api_port}.metrics"
