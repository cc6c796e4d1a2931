"""What every child script shares: a capped lifetime and a record of each start.

The scripts run as files (`python crash.py`), so their own folder is on sys.path and they import
this module as `childlib`.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time

MAX_LIFETIME_S = 180  # seconds


def cap_lifetime(seconds: int = MAX_LIFETIME_S) -> None:
    """Die by SIGALRM after `seconds`: no test child outlives a broken test run by much."""
    signal.signal(signal.SIGALRM, signal.SIG_DFL)
    signal.alarm(seconds)


def record_start(path: str | None, **extra: object) -> None:
    """Append one JSON line {pid, pgid, argv, env, time, ...} to `path` (one line per start)."""
    if path:
        entry = {"pid": os.getpid(), "pgid": os.getpgid(0), "argv": sys.argv,
                 "env": dict(os.environ), "time": time.time(), **extra}
        with open(path, "a", encoding="utf-8") as out:
            out.write(json.dumps(entry) + "\n")
