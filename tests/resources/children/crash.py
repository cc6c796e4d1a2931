"""Exits with --code (default 3) after --after seconds, saying so; --record counts its starts."""

from __future__ import annotations

import argparse
import os
import sys
import time

from childlib import cap_lifetime, record_start

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
