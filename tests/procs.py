"""Real processes on real sockets for the tests: free ports, readiness waits, group cleanup.

Every process a test starts goes through `running()`, which starts it in its own session and,
whatever happens in the test, stops its whole process group by pid: SIGTERM, a deadline, SIGKILL.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESOURCES = Path(__file__).resolve().parent / "resources"
PYTHON = sys.executable


_HANDED_OUT: set[int] = set()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago and was never handed out before in
    this test process: the kernel may offer a just-closed port again, and a test asking for
    PORT, API_SERVER_PORT and WAIIDE_PORT in a row once got the same one twice (the supervisor
    then refused to start, rightly)."""
    for _ in range(200):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", 0))
            except OSError as exc:  # pragma: no cover - only under port exhaustion
                if exc.errno == errno.EADDRINUSE:
                    continue
                raise
            port = int(sock.getsockname()[1])
        if port not in _HANDED_OUT:
            _HANDED_OUT.add(port)
            return port
    raise RuntimeError("no free TCP port on 127.0.0.1")


def wait_http(url: str, timeout_s: float = 30.0, proc: subprocess.Popen[bytes] | None = None,
              accept_status: Sequence[int] | None = None) -> int:
    """Poll `url` until it answers with any HTTP status (or one of `accept_status`)."""
    deadline = time.monotonic() + timeout_s
    delay = 0.02
    last: object = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before {url} answered")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                status = int(resp.status)
        except urllib.error.HTTPError as exc:
            status = exc.code
        except (OSError, urllib.error.URLError) as exc:
            last = exc
            time.sleep(delay)
            delay = min(delay * 2, 0.5)
            continue
        if accept_status is None or status in accept_status:
            return status
        last = f"status {status}"
        time.sleep(delay)
    raise TimeoutError(f"{url} did not answer within {timeout_s}s (last: {last})")


def wait_port(host: str, port: int, timeout_s: float = 30.0) -> None:
    """Poll until a TCP connect to host:port succeeds."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=1):
            return
        time.sleep(0.05)
    raise TimeoutError(f"{host}:{port} did not accept connections within {timeout_s}s")


def stop_group(proc: subprocess.Popen[bytes], timeout_s: float = 10.0, *,
               leader_only: bool = False) -> None:
    """SIGTERM the process group of `proc` (or only its leader), wait, then SIGKILL the group.

    Never by name. `leader_only` suits a leader that stops its own children in order (Sanic).
    """
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            if leader_only:
                os.kill(proc.pid, signal.SIGTERM)
            else:
                os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            pass
    # Children of the group may outlive the leader; the group id is the leader's pid.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=5)


@contextlib.contextmanager
def running(argv: Sequence[str], env: Mapping[str, str] | None = None, *,
            ready_url: str | None = None, ready_timeout_s: float = 30.0,
            log_path: Path | None = None, cwd: Path | None = None,
            stop_timeout_s: float = 10.0,
            term_leader_only: bool = False) -> Iterator[subprocess.Popen[bytes]]:
    """Start `argv` in a new session, wait for `ready_url` to answer, always stop the group."""
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    out = open(log_path, "ab") if log_path else subprocess.DEVNULL  # noqa: SIM115
    proc = subprocess.Popen(list(argv), env=full_env, cwd=cwd, stdout=out,
                            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        if ready_url:
            try:
                wait_http(ready_url, ready_timeout_s, proc)
            except (RuntimeError, TimeoutError) as exc:
                tail = log_path.read_text(errors="replace")[-3000:] if log_path else ""
                raise RuntimeError(f"{argv!r} not ready: {exc}\n--- log tail ---\n{tail}") from exc
        yield proc
    finally:
        stop_group(proc, stop_timeout_s, leader_only=term_leader_only)
        if log_path:
            out.close()  # type: ignore[union-attr]


def group_pids(pgid: int) -> list[int]:
    """Pids still alive in process group `pgid` (for leftover-process assertions)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            stat = (entry / "stat").read_text()
            fields = stat[stat.rindex(")") + 2:].split()
            if int(fields[2]) == pgid and fields[0] != "Z":
                pids.append(int(entry.name))
    return pids


def wait_unix_socket(path: str, timeout_s: float = 30.0) -> None:
    """Poll until a unix-socket connect to `path` succeeds."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(1)
            sock.connect(path)
            return
        time.sleep(0.05)
    raise TimeoutError(f"unix socket {path} did not accept connections within {timeout_s}s")
