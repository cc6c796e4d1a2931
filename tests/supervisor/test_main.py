"""`python supervisor_main.py` for real, with stand-in children (tests/resources/children):
an HTTP stand-in for WAIIDE ({port} substituted) and for the gateway, a sleeper as the monitor,
and in full mode the real Jupyter server with jupyter-server-proxy.

Scenarios:
 1. Lightweight mode: start order gated by readiness, wiring in env and components file,
    relayed output, banner; SIGTERM stops in reverse order, exit 0, nothing left behind.
 2. A SIGKILLed WAIIDE is restarted after the backoff; the components file follows.
 3. A monitor that ignores SIGTERM is SIGKILLed (with its group) at the stop deadline.
 4. A second SIGINT during the graceful stop kills everything at once (exit 1).
 5. A gateway that stops answering while alive is restarted.
 6. Full mode: the Jupyter server proxies {prefix}WAIIDE/ to the IDE the supervisor started,
    with token auth, and launches no second IDE.
 7. A bad value exits 2 naming the variable; a missing code-server exits 3 with the setup hint.
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

import psutil  # type: ignore[import-untyped]
import pytest

from tests.procs import PYTHON, RESOURCES, ROOT, free_port, group_pids, stop_group

CHILDREN = RESOURCES / "children"
BANNER = "WAIIDE Hub is ready"


def _cmd(*argv: object) -> str:
    return shlex.join(str(a) for a in argv)


@dataclass
class Run:
    """A running supervisor_main.py and what its stand-in children recorded."""

    proc: subprocess.Popen[bytes]
    log: Path
    records: Path
    ports: dict[str, int]
    env: dict[str, str] = field(default_factory=dict)

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_log(self, pattern: str, timeout_s: float = 30.0) -> re.Match[str]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            match = re.search(pattern, self.text())
            if match:
                return match
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(f"{pattern!r} not in the log:\n{self.text()[-4000:]}")

    def wait_ready(self, timeout_s: float = 30.0) -> None:
        """The banner is out and every stand-in has recorded its start."""
        self.wait_log(BANNER, timeout_s)
        deadline = time.monotonic() + 10.0
        while not all(self.started(name) for name in ("waiide", "gateway", "monitor")):
            assert time.monotonic() < deadline, "a child did not record its start"
            time.sleep(0.02)

    def started(self, name: str) -> list[dict[str, Any]]:
        path = self.records / f"{name}.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    def components(self) -> dict[str, dict[str, Any]]:
        path = Path(self.started("monitor")[0]["env"]["MONITOR_COMPONENTS_FILE"])
        components: dict[str, dict[str, Any]] = json.loads(path.read_text())["components"]
        return components

    def signal(self, signum: int) -> None:
        self.proc.send_signal(signum)

    def exit_code(self, timeout_s: float = 20.0) -> int:
        return self.proc.wait(timeout=timeout_s)

    def child_pids(self) -> list[int]:
        return [int(r["pid"]) for name in ("waiide", "gateway", "monitor")
                for r in self.started(name)]


def _base_env(tmp: Path, ports: dict[str, int], records: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("JUPYTERHUB_", "WAIIDE_", "SUPERVISOR_", "GATEWAY_", "JUPYTER"))}
    env.update({
        "HOME": str(tmp), "USE_ALL_COMPONENTS": "false", "HOST": "127.0.0.1",
        "PORT": str(ports["main"]), "API_SERVER_PORT": str(ports["api"]),
        "WAIIDE_PORT": str(ports["waiide"]),
        "WAIIDE_COMMAND": _cmd(PYTHON, CHILDREN / "http_server.py", "--port", "{port}",
                               "--name", "ide", "--record", records / "waiide.jsonl"),
        "SUPERVISOR_GATEWAY_COMMAND": _cmd(PYTHON, CHILDREN / "http_server.py", "--port-env",
                                           "API_SERVER_PORT", "--name", "gw", "--record",
                                           records / "gateway.jsonl"),
        "SUPERVISOR_MONITOR_COMMAND": _cmd(PYTHON, CHILDREN / "sleeper.py",
                                           records / "monitor.jsonl"),
        "SUPERVISOR_BACKOFF_INITIAL": "0.2", "SUPERVISOR_BACKOFF_MAX": "1",
        "SUPERVISOR_STOP_TIMEOUT": "3", "WAIIDE_READY_TIMEOUT": "30",
        "SUPERVISOR_READY_TIMEOUT": "30",
    })
    return env


def _kill_leftovers(run: Run) -> None:
    """Children live in their own sessions: kill any recorded one that is still ours."""
    for name in ("waiide", "gateway", "monitor"):
        for entry in run.started(name):
            pids = [int(entry[k]) for k in ("pid", "grandchild", "escapee") if k in entry]
            for pid in pids:
                with contextlib.suppress(psutil.Error):
                    proc = psutil.Process(pid)
                    # only the process the record describes, not a later holder of the pid
                    if proc.create_time() <= float(entry["time"]) + 1.0:
                        proc.kill()


@contextlib.contextmanager
def supervisor(tmp_path: Path, **overrides: str) -> Iterator[Run]:
    """Start supervisor_main.py; in `finally` stop its group and any recorded child."""
    records = tmp_path / "records"
    records.mkdir(exist_ok=True)
    ports = {"main": free_port(), "api": free_port(), "waiide": free_port()}
    env = _base_env(tmp_path, ports, records)
    env.update(overrides)
    log = tmp_path / "supervisor.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([PYTHON, str(ROOT / "supervisor_main.py")], env=env, cwd=ROOT,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    run = Run(proc, log, records, ports, env)
    try:
        yield run
    finally:
        stop_group(proc, timeout_s=10.0)
        _kill_leftovers(run)


def _gone(pid: int) -> bool:
    try:
        return bool(psutil.Process(pid).status() == psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return True


def assert_nothing_left(run: Run, extra_pids: tuple[int, ...] = ()) -> None:
    deadline = time.monotonic() + 5.0
    pids = run.child_pids() + list(extra_pids)
    while not all(_gone(pid) and not group_pids(pid) for pid in pids):
        assert time.monotonic() < deadline, f"left behind: {[p for p in pids if not _gone(p)]}"
        time.sleep(0.05)
    assert group_pids(run.proc.pid) == []


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return int(resp.status), resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, ""


def test_lightweight_start_wiring_and_clean_stop(tmp_path: Path) -> None:
    """1."""
    with supervisor(tmp_path) as run:
        run.wait_ready()
        token = run.wait_log(rf"http://127\.0\.0\.1:{run.ports['api']}/\?token=(\S+)").group(1)
        log = run.text()
        # WAIIDE was ready before the gateway started, the gateway before the monitor
        assert (log.index("child waiide [") < log.index("is ready after")
                < log.index("child gateway [") < log.index("child monitor ["))
        assert [len(run.started(n)) for n in ("waiide", "gateway", "monitor")] == [1, 1, 1]
        waiide, gateway, monitor = (run.started(n)[0] for n in ("waiide", "gateway", "monitor"))
        assert waiide["argv"][1:4] == ["--port", str(run.ports["waiide"]), "--name"]
        assert "PORT" not in waiide["env"] and "GATEWAY_TOKEN" not in waiide["env"]
        assert gateway["env"]["GATEWAY_TOKEN"] == token
        assert gateway["env"]["PORT"] == str(run.ports["main"])
        metrics = Path(gateway["env"]["PROMETHEUS_MULTIPROC_DIR"])
        assert metrics.is_dir() and not any(metrics.iterdir())
        assert monitor["env"]["PROMETHEUS_MULTIPROC_DIR"] == str(metrics)
        components = run.components()
        assert {name: (c["pid"], c["state"], c["restarts"]) for name, c in components.items()} \
            == {"waiide": (waiide["pid"], "running", 0), "gateway": (gateway["pid"], "running", 0),
                "monitor": (monitor["pid"], "running", 0)}
        assert f"[waiide] ide listening on 127.0.0.1:{run.ports['waiide']}" in log
        # The stand-in records its start before it prints: wait for the relayed line.
        run.wait_log(re.escape(f"[monitor] sleeper.py [{monitor['pid']}] running"), 10)
        run_dir = Path(str(monitor["env"]["MONITOR_COMPONENTS_FILE"])).parent

        run.signal(signal.SIGTERM)
        assert run.exit_code() == 0
        log = run.text()
        stops = [log.index(f"stopping child {name} [") for name in ("monitor", "gateway", "waiide")]
        assert stops == sorted(stops)
        assert_nothing_left(run)
        assert not run_dir.exists() and not metrics.exists()


@pytest.mark.slow
def test_killed_ide_is_restarted(tmp_path: Path) -> None:
    """2."""
    with supervisor(tmp_path) as run:
        run.wait_ready()
        first = int(run.started("waiide")[0]["pid"])
        os.killpg(first, signal.SIGKILL)
        run.wait_log(rf"child waiide \[{first}\] exited with signal SIGKILL; restart in 0\.2s")
        deadline = time.monotonic() + 20
        while run.components()["waiide"]["state"] != "running" or len(run.started("waiide")) < 2:
            assert time.monotonic() < deadline, run.components()
            time.sleep(0.05)
        second = run.started("waiide")[1]["pid"]
        assert run.components()["waiide"]["pid"] == second != first
        assert run.components()["waiide"]["restarts"] == 1
        assert len(run.started("gateway")) == 1  # the others are left alone
        run.signal(signal.SIGTERM)
        assert run.exit_code() == 0
        assert_nothing_left(run)


def test_monitor_ignoring_sigterm_is_killed_at_the_deadline(tmp_path: Path) -> None:
    """3."""
    monitor = _cmd(PYTHON, CHILDREN / "ignore_sigterm.py", "--grandchild", "--record",
                   tmp_path / "records" / "monitor.jsonl")
    with supervisor(tmp_path, SUPERVISOR_MONITOR_COMMAND=monitor,
                    SUPERVISOR_STOP_TIMEOUT="1") as run:
        run.wait_ready()
        grandchild = int(run.started("monitor")[0]["grandchild"])
        began = time.monotonic()
        run.signal(signal.SIGTERM)
        assert run.exit_code() == 0
        assert 1.0 <= time.monotonic() - began < 8.0
        pid = run.started("monitor")[0]["pid"]
        assert f"child monitor [{pid}] did not stop within 1.0s; SIGKILL" in run.text()
        assert_nothing_left(run, (grandchild,))


def test_second_sigint_forces_the_stop(tmp_path: Path) -> None:
    """4."""
    monitor = _cmd(PYTHON, CHILDREN / "ignore_sigterm.py", "--record",
                   tmp_path / "records" / "monitor.jsonl")
    with supervisor(tmp_path, SUPERVISOR_MONITOR_COMMAND=monitor,
                    SUPERVISOR_STOP_TIMEOUT="60") as run:
        run.wait_ready()
        run.signal(signal.SIGINT)
        run.wait_log(r"stopping child monitor \[")
        began = time.monotonic()
        run.signal(signal.SIGINT)
        assert run.exit_code() == 1
        assert time.monotonic() - began < 5.0
        assert "received SIGINT again: shutdown interrupted, killing every child" in run.text()
        assert_nothing_left(run)


@pytest.mark.slow
def test_hung_gateway_is_restarted(tmp_path: Path) -> None:
    """5."""
    gateway = _cmd(PYTHON, CHILDREN / "http_server.py", "--port-env", "API_SERVER_PORT",
                   "--hang-after", "1.5", "--record", tmp_path / "records" / "gateway.jsonl")
    with supervisor(tmp_path, SUPERVISOR_GATEWAY_COMMAND=gateway,
                    SUPERVISOR_PROBE_INTERVAL="0.3", SUPERVISOR_PROBE_TIMEOUT="0.3",
                    SUPERVISOR_HANG_PROBES="2", SUPERVISOR_STOP_TIMEOUT="1") as run:
        run.wait_ready()
        first = run.started("gateway")[0]["pid"]
        run.wait_log(rf"child gateway \[{first}\] is alive but hung \(2 probes failed in a row\)")
        run.wait_log(r"child gateway \[\d+\] started \(restart 1\)")
        run.signal(signal.SIGTERM)
        assert run.exit_code() == 0
        assert_nothing_left(run)


@pytest.mark.slow
def test_full_mode_proxies_the_running_ide_through_jupyter(tmp_path: Path) -> None:
    """6."""
    with supervisor(tmp_path, USE_ALL_COMPONENTS="true", JUPYTER_TOKEN="jt-secret") as run:
        run.wait_ready(timeout_s=60)
        main = run.ports["main"]
        assert f"http://127.0.0.1:{main}/WAIIDE/?token=jt-secret" in run.text()
        gateway_pid = run.started("gateway")[0]["pid"]
        status, body = _get(f"http://127.0.0.1:{main}/WAIIDE/probe?token=jt-secret")
        assert status == 200
        answer = json.loads(body)
        # Jupyter's proxy goes through the gateway (here a stand-in), which strips Jupyter's
        # credentials before WAIIDE; the secret header proves the hop to the gateway.
        assert (answer["name"], answer["pid"], answer["path"].split("?")[0]) == (
            "gw", gateway_pid, "/probe")
        assert answer["internal"] and len(answer["internal"]) >= 32
        assert len(run.started("waiide")) == 1  # JSP launched no second IDE
        status, body = _get(f"http://127.0.0.1:{main}/WAIIDE/probe")
        assert status in (302, 403) or "ide" not in body  # no token: Jupyter's login, not WAIIDE
        singleuser = int(run.components()["singleuser"]["pid"])
        assert run.components()["singleuser"]["state"] == "running"
        run.signal(signal.SIGTERM)
        assert run.exit_code() == 0
        assert_nothing_left(run, (singleuser,))


def test_bad_value_exits_2_and_missing_ide_exits_3(tmp_path: Path) -> None:
    """7."""
    with supervisor(tmp_path, PORT="eighty") as run:
        assert run.exit_code() == 2
        assert "Config 'PORT' has value 'eighty'. Not a valid TCP port" in run.text()
    env = {"WAIIDE_COMMAND": "", "WAIIDE_HUB_HOME": str(tmp_path / "no-hub"), "DEBUG": "true"}
    with supervisor(tmp_path, **env) as run:
        assert run.exit_code() == 3
        log = run.text()
        assert f"cannot start waiide: {tmp_path}/no-hub/code-server/bin/code-server" in log
        assert "make setup-run" in log
        run_dir = re.search(r"run directory (\S+),", log)
        assert run_dir and not Path(run_dir.group(1)).exists()
        assert run.started("gateway") == []
