"""Does its work and exits 0 at once: a clean exit the supervisor must still restart."""

from __future__ import annotations

import os
import sys

from childlib import record_start

if __name__ == "__main__":
    record_start(sys.argv[1] if len(sys.argv) > 1 else None)
    print(f"exit_zero.py [{os.getpid()}] done", flush=True)
