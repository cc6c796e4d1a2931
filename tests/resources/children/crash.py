"""Exits with --code (default 3) after --after seconds, saying so; --record counts its starts."""

from __future__ import annotations

import argparse
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


if __name__ == "__main__":
    cap_lifetime()
    parser = argparse.ArgumentParser()
    parser.add_argument("--code", type=int, default=3)
    parser.add_argument("--after", type=float, default=0.0)
    parser.add_argument("--record")
    options = parser.parse_args()
    record_start(options.record)
    print(f"crash.py [{os.getpid()}] exiting with {options.code} in {options.after}s", flush=True)
    print("crash.py on stderr", file=sys.stderr, flush=True)
    time.sleep(options.after)
    sys.exit(options.code)
