"""Ignores SIGTERM (and SIGINT) so it must be SIGKILLed; --grandchild leaves a sleeper in its
group and --escapee one in a new session (outside the group), both recorded in --record.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
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


SLEEPER = [sys.executable, "-c",
           ("import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
            f"time.sleep({MAX_LIFETIME_S})")]

if __name__ == "__main__":
    cap_lifetime()
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    parser = argparse.ArgumentParser()
    parser.add_argument("--record")
    parser.add_argument("--grandchild", action="store_true")
    parser.add_argument("--escapee", action="store_true")
    options = parser.parse_args()
    extra = {}
    if options.grandchild:
        extra["grandchild"] = subprocess.Popen(SLEEPER).pid
    if options.escapee:
        extra["escapee"] = subprocess.Popen(SLEEPER, start_new_session=True).pid
    record_start(options.record, **extra)
    print(f"ignore_sigterm.py [{os.getpid()}] ignoring SIGTERM", flush=True)
    while True:
        time.sleep(1)
