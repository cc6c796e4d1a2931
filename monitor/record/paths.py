"""Where the record lives: one path that the monitor and every gateway worker derive alike."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

PATH_ENV = "WAIIDE_HUB_STATUS_PATH"
"""The one variable that overrides where the record lives (the monitor and gateway read it)."""

API_SERVER_PORT_ENV = "API_SERVER_PORT"
DEFAULT_API_SERVER_PORT = "8091"
SHM_DIR = Path("/dev/shm")


def default_record_path(environ: Mapping[str, str]) -> Path:
    """Where the monitor writes and the gateway reads the record, from the configuration.

    `WAIIDE_HUB_STATUS_PATH` wins when set. Otherwise the path is derived from the uid and the
    gateway port, so two stacks of one user (or of two users) on one host never share a record,
    while `python -m monitor` and `python -m gateway` started with the same environment agree.

    Raises:
        ValueError: API_SERVER_PORT is not a port number (named in the message).
    """
    override = environ.get(PATH_ENV, "").strip()
    if override:
        return Path(override)
    port = environ.get(API_SERVER_PORT_ENV, DEFAULT_API_SERVER_PORT).strip()
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"Config '{API_SERVER_PORT_ENV}' has value '{port}'. Not a valid port.")
    base = SHM_DIR if SHM_DIR.is_dir() else Path(tempfile.gettempdir())
    return base / f"waiide-hub-{os.getuid()}-{int(port)}.status"
