"""Real servers for the observability tests: Prometheus, and WAIIDE Hub under its supervisor.

Both run on loopback only, in their own sessions, and are stopped by process group whatever
happens (`tests.procs.running`). The supervisor starts its children in sessions of their own, so
after it has stopped, any child it left behind is killed by pid (checked against its start time,
so a recycled pid is never hit).
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import pytest
import yaml

from tests.procs import PYTHON, RESOURCES, ROOT, free_port, running, wait_http

PROMETHEUS = Path("/usr/bin/prometheus")
PROMTOOL = Path("/usr/bin/promtool")
# monitor.record.RecordReader retries a missing record file at most this often (its default).
RECORD_REOPEN_S = 1.0
INSTALL_HINT = "install the Debian package 'prometheus' (`bash scripts/setup.sh test` does)"


def require_tool(path: Path) -> Path:
    """The tool's path, or a failed test (never a skip) that says how to get it."""
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.fail(f"{path} is missing: {INSTALL_HINT}", pytrace=False)
    return path


class PromQLError(Exception):
    """Prometheus refused a query (`status` 400: it does not parse; 422: it cannot run)."""

    def __init__(self, status: int, error_type: str, message: str) -> None:
        super().__init__(f"HTTP {status} {error_type}: {message}")
        self.status = status


@dataclass
class PrometheusServer:
    """A running Prometheus on 127.0.0.1:port."""

    port: int
    log: Path

    def api(self, path: str, params: Mapping[str, str] | None = None) -> Any:
        url = f"http://127.0.0.1:{self.port}/api/v1/{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        try:
            with urllib.request.urlopen(url, timeout=10) as resp:
                doc = json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            body = json.loads(exc.read() or b"{}")
            raise PromQLError(exc.code, body.get("errorType", "?"), body.get("error", "?")) from None
        assert doc["status"] == "success", doc
        return doc["data"]

    def query(self, promql: str) -> list[dict[str, Any]]:
        """The instant vector (or scalar, as one sample) `promql` evaluates to now."""
        data = self.api("query", {"query": promql})
        if data["resultType"] in ("scalar", "string"):
            return [{"metric": {}, "value": data["result"]}]
        result: list[dict[str, Any]] = data["result"]
        return result

    def wait_for(self, what: str, check: Callable[[], bool], timeout_s: float) -> None:
        """Poll `check` until it holds; fail with `what` at the deadline."""
        deadline = time.monotonic() + timeout_s
        while not check():
            if time.monotonic() > deadline:
                tail = self.log.read_text(errors="replace")[-2000:]
                raise AssertionError(f"Prometheus: {what} not within {timeout_s}s\n{tail}")
            time.sleep(0.25)


@contextlib.contextmanager
def prometheus_server(tmp: Path, config: Mapping[str, Any]) -> Iterator[PrometheusServer]:
    """Prometheus with `config`, a fresh TSDB under `tmp`, listening on loopback only."""
    binary = require_tool(PROMETHEUS)
    port = free_port()
    config_path = tmp / "prometheus.yml"
    config_path.write_text(yaml.safe_dump(dict(config), sort_keys=False))
    log = tmp / "prometheus.log"
    argv = [str(binary), f"--config.file={config_path}", f"--storage.tsdb.path={tmp / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"]
    with running(argv, log_path=log, cwd=tmp) as proc:
        # /-/ready answers 503 until the TSDB is open and the config loaded: wait for a 200.
        wait_http(f"http://127.0.0.1:{port}/-/ready", 60, proc, accept_status=[200])
        yield PrometheusServer(port, log)


@dataclass
class WaiideHub:
    """WAIIDE Hub in full mode under supervisor_main.py, the fake IDE standing in for WAIIDE."""

    api_port: int
    main_port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def get_json(self, path: str) -> Any:
        """The JSON body at `path`, whatever the status (/api/status answers 503 when unwell)."""
        try:
            with urllib.request.urlopen(self.url + path, timeout=10) as resp:
                return json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            with exc:
                return json.loads(exc.read())

    def metrics_text(self) -> str:
        with urllib.request.urlopen(self.url + "/metrics", timeout=10) as resp:
            text: str = resp.read().decode()
            return text


@dataclass(frozen=True)
class HubPorts:
    """Chosen before anything starts, so Prometheus can be configured first."""

    api: int
    main: int
    waiide: int

    @classmethod
    def pick(cls) -> HubPorts:
        return cls(free_port(), free_port(), free_port())


def hub_env(tmp: Path, ports: HubPorts) -> dict[str, str]:
    """The supervisor's environment: loopback, no auth, fast probes, a short read timeout."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("JUPYTERHUB_", "WAIIDE_", "SUPERVISOR_", "GATEWAY_", "JUPYTER",
                                "MONITOR_", "PROMETHEUS_MULTIPROC_DIR"))}
    env.update({
        "HOME": str(tmp), "TMPDIR": str(tmp), "PYTHONPATH": str(ROOT),
        "USE_ALL_COMPONENTS": "true", "HOST": "127.0.0.1",
        "PORT": str(ports.main), "API_SERVER_PORT": str(ports.api),
        "WAIIDE_PORT": str(ports.waiide),
        "WAIIDE_COMMAND": shlex.join([PYTHON, str(RESOURCES / "fake_waiide.py"),
                                      "--port", "{port}"]),
        "WAIIDE_HUB_STATUS_PATH": str(tmp / "status.rec"),
        "GATEWAY_AUTH": "none", "GATEWAY_WORKERS": "2",
        "GATEWAY_READ_TIMEOUT": "1",  # so /slow?delay=2 becomes a 504 and an upstream timeout
        "MONITOR_INTERVAL": "1", "MONITOR_PROBE_TIMEOUT": "0.5",
        "SUPERVISOR_BACKOFF_INITIAL": "0.2", "SUPERVISOR_STOP_TIMEOUT": "3",
    })
    return env


def _kill_leftovers(children: list[psutil.Process]) -> None:
    for child in children:
        # is_running() compares the start time too: a recycled pid is not this process.
        with contextlib.suppress(psutil.Error, ProcessLookupError):
            if child.is_running():
                if os.getpgid(child.pid) == child.pid:
                    os.killpg(child.pid, signal.SIGKILL)
                else:
                    child.kill()
                child.wait(timeout=5)


@contextlib.contextmanager
def waiide_hub(tmp: Path, ports: HubPorts, ready_timeout_s: float = 90.0) -> Iterator[WaiideHub]:
    """Start the supervisor and wait until /api/status says healthy (200)."""
    log = tmp / "supervisor.log"
    argv = [PYTHON, str(ROOT / "supervisor_main.py")]
    children: list[psutil.Process] = []

    def snapshot() -> None:
        with contextlib.suppress(psutil.Error):
            children.extend(psutil.Process(proc.pid).children(recursive=True))

    with contextlib.ExitStack() as stack:
        stack.callback(_kill_leftovers, children)  # runs last: after the supervisor stopped
        proc: subprocess.Popen[bytes] = stack.enter_context(
            running(argv, hub_env(tmp, ports), log_path=log, cwd=ROOT, stop_timeout_s=15))
        stack.callback(snapshot)  # runs first: the children as they are at the end
        hub = WaiideHub(ports.api, ports.main, log)
        try:
            wait_http(f"{hub.url}/api/status", ready_timeout_s, proc, accept_status=[200])
            # That was one worker. A worker that looked for the record before the monitor wrote
            # it looks again at most RECORD_REOPEN_S later; after that every worker sees it.
            settled = time.monotonic() + RECORD_REOPEN_S
            while time.monotonic() < settled:
                wait_http(f"{hub.url}/api/status", ready_timeout_s, proc, accept_status=[200])
                time.sleep(0.05)
        except (RuntimeError, TimeoutError) as exc:
            raise RuntimeError(f"WAIIDE Hub not healthy: {exc}\n--- supervisor log ---\n"
                               f"{log.read_text(errors='replace')[-4000:]}") from exc
        snapshot()
        yield hub
