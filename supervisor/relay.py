"""Relays a child's stdout/stderr to the supervisor's own, line by line, prefixed `[name] `.

One daemon thread per pipe, so a chatty or silent child never blocks the supervision loop. Lines
are written whole under one lock shared by all relays, so output of two children never
interleaves inside a line. A line longer than MAX_LINE_BYTES is split.
"""

from __future__ import annotations

import logging
import threading
from typing import IO, TextIO

logger = logging.getLogger(__name__)

MAX_LINE_BYTES = 64 * 1024
OUTPUT_LOCK = threading.Lock()


class Relay:
    """Copies one pipe of one child to a text sink until EOF."""

    def __init__(self, name: str, pipe: IO[bytes], sink: TextIO,
                 lock: threading.Lock = OUTPUT_LOCK) -> None:
        self._name = name
        self._pipe = pipe
        self._sink = sink
        self._lock = lock
        self._sink_broken = False
        self._thread = threading.Thread(target=self._run, name=f"relay-{name}", daemon=True)

    def start(self) -> None:
        """Begin copying on the relay's own thread."""
        self._thread.start()

    def join(self, timeout_s: float) -> bool:
        """Wait for EOF; False if the pipe is still open (a process outside the group holds it)."""
        self._thread.join(timeout_s)
        if self._thread.is_alive():
            return False
        self._pipe.close()
        return True

    def _run(self) -> None:
        prefix = f"[{self._name}] "
        for raw in iter(lambda: self._pipe.readline(MAX_LINE_BYTES), b""):
            self._write(prefix + raw.decode("utf-8", "replace").rstrip("\r\n") + "\n")

    def _write(self, line: str) -> None:
        if self._sink_broken:
            return  # keep draining the pipe so the child never blocks on a full pipe
        with self._lock:
            try:
                self._sink.write(line)
                self._sink.flush()
            except (OSError, ValueError) as exc:  # closed or broken sink (e.g. EPIPE)
                self._sink_broken = True
                logger.debug("relay %s: output lost: %s", self._name, exc)
