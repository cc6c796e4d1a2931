"""The IDE hangs, or its port belongs to someone else: restarted or refused, never served."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from supervisor.ownership import owns_listener
from supervisor.process import ChildProcess
from supervisor.spec import ChildSpec, ReadyCheck
from tests.faults.stack import RECOVERY, base_env, get, new_ports, running, wait_for
from tests.procs import PYTHON, RESOURCES, free_port, stop_group, wait_http

CHILDREN = RESOURCES / "children"


@pytest.mark.slow
@pytest.mark.parametrize("transport", ["tcp", "unix"])
def test_a_hung_ide_is_killed_and_restarted(tmp_path: Path, transport: str) -> None:
    """Issue 12: a SIGSTOPped IDE made /api/status 503 and proxied requests hang, forever."""
    ports = new_ports()
    sock = str(tmp_path / "ide.sock") if transport == "unix" else None
    with running(tmp_path, base_env(tmp_path, ports, sock), ports) as stack:
        hung = stack.child_pid("waiide")
        mark = len(stack.text())
        start = time.monotonic()
        os.kill(hung, signal.SIGSTOP)
        stack.wait_log(r"child waiide \[\d+\] is alive but hung", 30, after=mark)
        detected = time.monotonic() - start
        stack.wait_log(r"child waiide \[\d+\] is ready after", 30, after=mark)

        def healthy_again() -> bool:
            status, body = get(f"{stack.api}/api/status")
            return status == 200 and body["components"]["waiide"]["state"] == "up"

        wait_for(healthy_again, 30, "/api/status 200 with a new IDE")
        RECOVERY[f"hung IDE ({transport}): detected"] = detected
        RECOVERY[f"hung IDE ({transport}): served again"] = time.monotonic() - start
        assert stack.child_pid("waiide") != hung
        with pytest.raises(ProcessLookupError):
            os.kill(hung, 0)  # the stopped process is gone, not left frozen
        # Counted where an operator looks: /api/services and /metrics.
        wait_for(lambda: get(f"{stack.api}/api/services")[1]["services"]["waiide"]["restarts"]
                 >= 1, 10, "the restart in /api/services")
        metrics = get_text(f"{stack.api}/metrics")
        assert 'waiide_hub_component_restarts_total{component="waiide"} 1.0' in metrics
        status, body = get(f"{stack.api}/echo/after-restart")
        assert status == 200 and body["raw_path"] == "/echo/after-restart"


def get_text(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return str(resp.read().decode())


def test_readiness_needs_the_childs_own_listener(tmp_path: Path) -> None:
    """Issue 12: another app's answer on the IDE's port (its 404) counted as the IDE ready."""
    port = free_port()
    other = subprocess.Popen([PYTHON, "-m", "http.server", "--bind", "127.0.0.1", str(port)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             start_new_session=True)
    try:
        wait_http(f"http://127.0.0.1:{port}/", 20, other)
        check = ReadyCheck(f"http://127.0.0.1:{port}/healthz")
        child = ChildProcess(ChildSpec("waiide", (PYTHON, str(CHILDREN / "sleeper.py")), {},
                                       ready=check), stdout=io.StringIO(), stderr=io.StringIO())
        child.start()
        try:
            assert not child.probe(2.0), "another program's answer counted as the child ready"
        finally:
            child.kill()
            child.wait(5)
            child.close()
        assert owns_listener(other.pid, check)  # the server itself would count
    finally:
        stop_group(other)
