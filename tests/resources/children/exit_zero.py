"""Does its work and exits 0 at once: a clean exit the supervisor must still restart."""

from __future__ import annotations

import json
import os
import sys
import time


def record_start(path: str | None, **extra: object) -> None:
    """Append one JSON line {pid, pgid, argv, env, time, ...} to `path` (one line per start)."""
    if path:
        entry = {"pid": os.getpid(), "pgid": os.getpgid(0), "argv": sys.argv,
                 "env": dict(os.environ), "time": time.time(), **extra}
        with open(path, "a", encoding="utf-8") as out:
            out.write(json.dumps(entry) + "\n")


if __name__ == "__main__":
    record_start(sys.argv[1] if len(sys.argv) > 1 else None)
    print(f"exit_zero.py [{os.getpid()}] done", flush=True)
