"""The whole product for fault injection: `supervisor_main.py` with the real gateway and monitor
in lightweight mode, and a fake IDE (tests/resources/fake_waiide.py) on a real TCP port or a
unix socket, so a test can stop, hang or replace it.

Every process is stopped whatever happens: the supervisor by SIGTERM (it stops its children),
then, by pid, anything of the tree seen during the test that is still alive (psutil checks the
start time, so a reused pid is never hit). `RECOVERY` collects each fault's recovery time for
the closing report (printed at the end of the session by conftest.py).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from tests.procs import PYTHON, RESOURCES, ROOT, free_port

BANNER = "WAIIDE Hub is ready"
RECOVERY: dict[str, float] = {}


def cmd(*argv: object) -> str:
    return shlex.join(str(a) for a in argv)


def get(url: str, timeout_s: float = 5.0) -> tuple[int, dict[str, Any]]:
    """GET `url` on a new connection: (status, JSON body or {})."""
    request = urllib.request.Request(url, headers={"Connection": "close"})
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as resp:
            status, body = resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        status, body = exc.code, exc.read()
    try:
        parsed = json.loads(body)
    except ValueError:
        parsed = {}
    return status, parsed if isinstance(parsed, dict) else {}


def wait_for(predicate: Any, timeout_s: float, what: str, interval_s: float = 0.05) -> float:
    """Poll `predicate` until true; the seconds it took. Fails with `what` at the deadline."""
    start = time.monotonic()
    last: object = None
    while time.monotonic() - start < timeout_s:
        try:
            if predicate():
                return time.monotonic() - start
        except (OSError, ValueError) as exc:
            last = exc
        time.sleep(interval_s)
    raise AssertionError(f"{what} not within {timeout_s}s (last error: {last})")


def base_env(tmp: Path, ports: dict[str, int], ide_socket: str | None = None) -> dict[str, str]:
    """Lightweight mode, short intervals, everything of this run under `tmp`."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("JUPYTERHUB_", "WAIIDE_", "SUPERVISOR_", "GATEWAY_", "JUPYTER",
                                "MONITOR_", "PROMETHEUS_"))}
    listen = ("--socket", "{socket}") if ide_socket else ("--port", "{port}")
    env.update({
        "HOME": str(tmp), "PYTHONPATH": str(ROOT), "XDG_RUNTIME_DIR": str(tmp),
        "USE_ALL_COMPONENTS": "false", "HOST": "127.0.0.1",
        "PORT": str(ports["main"]), "API_SERVER_PORT": str(ports["api"]),
        "WAIIDE_HOST": "127.0.0.1", "WAIIDE_PORT": str(ports["waiide"]),
        "WAIIDE_COMMAND": cmd(PYTHON, RESOURCES / "fake_waiide.py", *listen),
        "WAIIDE_HUB_STATUS_PATH": str(tmp / "status.record"),
        "GATEWAY_AUTH": "none", "GATEWAY_WORKERS": "2",
        "MONITOR_INTERVAL": "0.5",
        "SUPERVISOR_PROBE_INTERVAL": "0.5", "SUPERVISOR_PROBE_TIMEOUT": "0.5",
        "SUPERVISOR_HANG_PROBES": "3",
        "SUPERVISOR_BACKOFF_INITIAL": "0.2", "SUPERVISOR_BACKOFF_MAX": "1",
        "SUPERVISOR_STOP_TIMEOUT": "3", "SUPERVISOR_READY_TIMEOUT": "60",
        "WAIIDE_READY_TIMEOUT": "30",
    })
    if ide_socket:
        env["WAIIDE_SOCKET"] = ide_socket
    return env


def new_ports() -> dict[str, int]:
    return {"main": free_port(), "api": free_port(), "waiide": free_port()}


@dataclass
class Stack:
    """A running supervisor and what the test saw of its process tree."""

    proc: subprocess.Popen[bytes]
    log: Path
    env: dict[str, str]
    ports: dict[str, int]
    seen: dict[int, psutil.Process] = field(default_factory=dict)

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.ports['api']}"

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_log(self, pattern: str, timeout_s: float = 30.0, *, after: int = 0) -> float:
        def found() -> bool:
            if re.search(pattern, self.text()[after:]):
                return True
            assert self.proc.poll() is None or re.search(pattern, self.text()[after:]), \
                f"supervisor exited {self.proc.returncode}:\n{self.text()[-4000:]}"
            return False
        try:
            return wait_for(found, timeout_s, f"log line {pattern!r}")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n--- log ---\n{self.text()[-4000:]}") from None

    def remember_tree(self) -> list[psutil.Process]:
        """Every process of the supervisor's tree now (kept for cleanup)."""
        with contextlib.suppress(psutil.Error):
            root = psutil.Process(self.proc.pid)
            for p in [root, *root.children(recursive=True)]:
                self.seen.setdefault(p.pid, p)
        return list(self.seen.values())

    def child_pid(self, name: str) -> int:
        """The current pid of child `name`, from the supervisor's log."""
        matches = re.findall(rf"child {name} \[(\d+)\] started", self.text())
        assert matches, f"no start of {name} in the log"
        return int(matches[-1])

    def exit_code(self, timeout_s: float = 30.0) -> int:
        return self.proc.wait(timeout=timeout_s)


def start(tmp: Path, env: dict[str, str], ports: dict[str, int], name: str = "stack") -> Stack:
    log = tmp / f"{name}.log"
    out = log.open("ab")
    try:
        proc = subprocess.Popen([PYTHON, str(ROOT / "supervisor_main.py")], env=env, cwd=ROOT,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    finally:
        out.close()
    return Stack(proc, log, env, ports)


def stop(stack: Stack) -> None:
    """SIGTERM the supervisor, then kill by pid whatever of its tree is still alive."""
    stack.remember_tree()
    if stack.proc.poll() is None:
        stack.proc.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            stack.proc.wait(timeout=20)
    if stack.proc.poll() is None:
        stack.proc.kill()
        stack.proc.wait(timeout=5)
    for proc in stack.seen.values():
        with contextlib.suppress(psutil.Error):
            proc.kill()  # psutil refuses a pid that now belongs to another process


@contextlib.contextmanager
def running(tmp: Path, env: dict[str, str] | None = None, ports: dict[str, int] | None = None,
            *, ready: bool = True, name: str = "stack") -> Iterator[Stack]:
    """A stack that is ready (banner out) unless `ready=False`; always stopped."""
    ports = ports or new_ports()
    stack = start(tmp, env or base_env(tmp, ports), ports, name)
    try:
        if ready:
            stack.wait_log(BANNER, 90)
            stack.remember_tree()
        yield stack
    finally:
        stop(stack)


def tree_pids(pid: int) -> list[int]:
    with contextlib.suppress(psutil.Error):
        root = psutil.Process(pid)
        return [root.pid, *(p.pid for p in root.children(recursive=True))]
    return []
