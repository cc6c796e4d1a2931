"""A quiet child that runs until SIGTERM (default action) — the monitor stand-in. --record."""

from __future__ import annotations

import os
import sys
import time

from childlib import cap_lifetime, record_start

if __name__ == "__main__":
    cap_lifetime()
    record_start(sys.argv[1] if len(sys.argv) > 1 else None)
    print(f"sleeper.py [{os.getpid()}] running", flush=True)
    while True:
        time.sleep(1)
