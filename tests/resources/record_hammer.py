"""Writes status records as fast as it can for a bounded time (the torn-read stress test's writer).

    python record_hammer.py PATH DURATION_S

Record n is internally consistent in a way a torn read would break: every component has pid n,
restarts n and a reason of n-dependent length ending in str(n), and written_at is n. The payload
length changes with n, so a reader mixing two writes sees a wrong length, CRC or JSON.
On exit it prints the number of records written.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from monitor.record import COMPONENT_NAMES, ComponentStatus, RecordWriter, StatusRecord


def record_for(n: int) -> StatusRecord:
    reason = "x" * (n % 700) + str(n)
    comps = tuple(ComponentStatus(name=name, state="up" if n % 2 else "down", reason=reason,
                                  pid=n, restarts=n, latency_s=n / 1000.0)
                  for name in COMPONENT_NAMES)
    return StatusRecord(overall="healthy" if n % 2 else "unhealthy", components=comps)


def main() -> None:
    path, duration_s = Path(sys.argv[1]), float(sys.argv[2])
    writer = RecordWriter(path, interval_s=60.0)
    writer.open()
    deadline = time.monotonic() + duration_s
    n = 0
    while time.monotonic() < deadline:
        n += 1
        writer.write(record_for(n), written_at=float(n))
    writer.abandon()  # leave the file for the reader's final checks; the test removes it
    print(n, flush=True)


if __name__ == "__main__":
    main()
