"""Ignores SIGTERM (and SIGINT) so it must be SIGKILLed; --grandchild leaves a sleeper in its
group and --escapee one in a new session (outside the group), both recorded in --record.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time

from childlib import MAX_LIFETIME_S, cap_lifetime, record_start

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
