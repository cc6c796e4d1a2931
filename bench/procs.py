"""Processes the benchmark starts: free ports, readiness waits, and stopping by process group.

Every server goes through `Service`: it starts in its own session (so its pid is its process
group id), writes its output to a log file in the run's temp dir, and `stop()` signals the whole
group by id: SIGTERM, a deadline, then SIGKILL. Nothing is ever stopped by name.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path

logger = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"
STOP_TIMEOUT_S = 10.0
LOG_TAIL_CHARS = 1500


class ServiceError(Exception):
    """A service did not start or did not become ready; the message says why."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (retried on EADDRINUSE)."""
    for _ in range(50):
        with socket.socket() as sock:
            try:
                sock.bind((LOOPBACK, 0))
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    continue
                raise
            return int(sock.getsockname()[1])
    raise ServiceError("no free TCP port on 127.0.0.1")


def http_status(url: str, timeout_s: float = 2.0) -> int | None:
    """The status of one GET to `url`, or None when nothing answered."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except (OSError, urllib.error.URLError):
        return None


class Service:
    """One server process (and its children) in its own process group."""

    def __init__(self, name: str, argv: Sequence[str], log_path: Path, *,
                 env: Mapping[str, str], cwd: Path | None = None) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self.env = dict(env)
        self.cwd = cwd
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        if self.proc is None:
            raise ServiceError(f"{self.name} was not started")
        return self.proc.pid

    def start(self) -> None:
        with open(self.log_path, "ab") as log:
            try:
                self.proc = subprocess.Popen(self.argv, env=self.env, cwd=self.cwd, stdout=log,
                                             stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                             start_new_session=True)
            except OSError as exc:
                raise ServiceError(f"{self.name}: cannot run {self.argv[0]}: {exc}") from exc
        logger.info("started %s [%d]", self.name, self.proc.pid)

    def is_alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def ready(self, urls: Sequence[str], timeout_s: float) -> str:
        """Poll `urls` in turn until one answers with any HTTP status; return that URL.

        Waits double from 20 ms up to 0.5 s (capped), on `time.monotonic()`.
        """
        deadline = time.monotonic() + timeout_s
        delay_s = 0.02
        while time.monotonic() < deadline:
            if not self.is_alive():
                code = self.proc.returncode if self.proc else None
                raise ServiceError(f"{self.name} exited with {code}: {self.log_tail()}")
            for url in urls:
                if http_status(url) is not None:
                    return url
            time.sleep(delay_s)
            delay_s = min(delay_s * 2, 0.5)
        raise ServiceError(f"{self.name} not ready within {timeout_s:.0f}s: {self.log_tail()}")

    def log_tail(self) -> str:
        """The end of the service's log, on one line, for error messages."""
        try:
            text = self.log_path.read_text(errors="replace")[-LOG_TAIL_CHARS:]
        except OSError:
            return "(no log)"
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        return " | ".join(lines[-6:]) or "(empty log)"

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> None:
        """SIGTERM the group, wait up to `timeout_s`, then SIGKILL whatever is left of it."""
        proc = self.proc
        if proc is None:
            return
        if proc.poll() is None:
            # The group may already be gone if the leader died with its children.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=timeout_s)
        # Children can outlive the leader; the group id is the leader's pid.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)
        logger.info("stopped %s [%d] (exit %s)", self.name, proc.pid, proc.returncode)
