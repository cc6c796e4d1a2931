"""`python -m monitor` as a real process against real fake upstreams (tests/resources/health_upstream.py).

Scenarios:
1. All up -> healthy; the fake then turns expired, wrong JSON, 503, slow, down (process stopped)
   and up again; each shows in the record with the documented state, liveness and reason.
2. Lightweight mode (USE_ALL_COMPONENTS=false) has no singleuser; a dead gateway -> degraded.
3. The supervisor's components file feeds pid, uptime, restarts, RSS and CPU.
4. The IDE over a unix socket (WAIIDE_SOCKET).
5. SIGKILLed monitor -> the record goes stale (unknown); a restarted monitor takes it over.
6. SIGTERM or SIGINT -> exit 0, record unlinked, readers say so.
7. Bad settings, and a second monitor on the same record -> exit 3 naming the variable and value.
8. With PROMETHEUS_MULTIPROC_DIR the monitor's probe counters land in the multiprocess files.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest, multiprocess
from prometheus_client.parser import text_string_to_metric_families

from common.errors import ConfigError
from monitor.config import MonitorConfig
from monitor.probes import parse_ide_health
from monitor.record import ComponentStatus, RecordReader, StatusView
from tests.procs import PYTHON, RESOURCES, ROOT, free_port, running, wait_unix_socket

INTERVAL_S = 0.5
TIMEOUT_S = 0.4
CONFIG_ERROR = 2
STARTUP_FAILURE = 3
PREFIX = "/user/tester/"


@contextlib.contextmanager
def fake_upstream(tmp: Path, port: int | None = None, *, mode: str = "up",
                  socket_path: Path | None = None) -> Iterator[int]:
    """The switchable fake on `port` (or a unix socket); yields the port."""
    port = port if port is not None else free_port()
    where = ["--socket", str(socket_path)] if socket_path else ["--port", str(port)]
    argv = [PYTHON, str(RESOURCES / "health_upstream.py"), *where, "--mode", mode, "--slow-s", "2"]
    ready = None if socket_path else f"http://127.0.0.1:{port}/_hits"
    with running(argv, ready_url=ready, log_path=tmp / f"upstream-{port}.log", stop_timeout_s=5):
        if socket_path:
            wait_unix_socket(str(socket_path), 30)
        yield port


def set_mode(port: int, mode: str) -> None:
    req = urllib.request.Request(f"http://127.0.0.1:{port}/_mode/{mode}", method="POST")
    with urllib.request.urlopen(req, timeout=5) as resp:
        assert resp.status == 200


def monitor_env(tmp: Path, port: int, **extra: str) -> dict[str, str]:
    env = {
        "PYTHONPATH": str(ROOT), "HOST": "127.0.0.1", "WAIIDE_HOST": "127.0.0.1",
        "WAIIDE_PORT": str(port), "PORT": str(port), "API_SERVER_PORT": str(port),
        "JUPYTERHUB_SERVICE_PREFIX": PREFIX, "MONITOR_INTERVAL": str(INTERVAL_S),
        "MONITOR_PROBE_TIMEOUT": str(TIMEOUT_S), "WAIIDE_HUB_STATUS_PATH": str(tmp / "status.rec"),
        "USE_ALL_COMPONENTS": "true", "WAIIDE_SOCKET": "",
        "MONITOR_COMPONENTS_FILE": "", "MONITOR_WAIIDE_HEALTH_PATH": "/healthz",
    }
    env.update(extra)
    return env


@contextlib.contextmanager
def monitor_process(tmp: Path, env: Mapping[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    with running([PYTHON, "-m", "monitor"], env, log_path=tmp / "monitor.log", cwd=tmp,
                 stop_timeout_s=5) as proc:
        yield proc


def wait_view(reader: RecordReader, predicate: Callable[[StatusView], bool],
              timeout_s: float = 8.0, log: Path | None = None) -> StatusView:
    """Poll the record until `predicate` holds, with a deadline."""
    deadline = time.monotonic() + timeout_s
    view = reader.read()
    while time.monotonic() < deadline:
        view = reader.read()
        if predicate(view):
            return view
        time.sleep(0.05)
    tail = log.read_text(errors="replace")[-2000:] if log and log.exists() else ""
    raise AssertionError(f"no matching view within {timeout_s}s; last: {view}\n{tail}")


def find(view: StatusView, name: str) -> ComponentStatus | None:
    return view.record.component(name) if view.record else None


def comp(view: StatusView, name: str) -> ComponentStatus:
    found = find(view, name)
    assert found is not None, f"no component {name} in {view}"
    return found


def comp_state(name: str, state: str) -> Callable[[StatusView], bool]:
    def check(view: StatusView) -> bool:
        found = find(view, name)
        return found is not None and found.state == state
    return check


def ide_has(predicate: Callable[[ComponentStatus], bool]) -> Callable[[StatusView], bool]:
    def check(view: StatusView) -> bool:
        found = find(view, "waiide")
        return found is not None and predicate(found)
    return check


@pytest.mark.slow
def test_status_transitions(tmp_path: Path) -> None:
    reader = RecordReader(tmp_path / "status.rec", reopen_interval_s=0.05)
    log = tmp_path / "monitor.log"
    with fake_upstream(tmp_path) as port, monitor_process(tmp_path, monitor_env(tmp_path, port)):
        view = wait_view(reader, lambda v: v.state == "healthy", log=log)
        assert view.record is not None
        assert [c.name for c in view.record.components] == ["waiide", "singleuser", "gateway",
                                                            "monitor"]
        ide = view.record.component("waiide")
        assert ide is not None
        assert (ide.state, ide.liveness, ide.http_status, ide.reason) == ("up", "alive", 200, None)
        assert ide.url == f"http://127.0.0.1:{port}/healthz"
        assert ide.latency_s is not None and 0 < ide.latency_s < TIMEOUT_S
        singleuser = view.record.component("singleuser")
        assert singleuser is not None and singleuser.url == f"http://127.0.0.1:{port}{PREFIX}api"
        assert view.interval_s == INTERVAL_S

        set_mode(port, "expired")  # idle IDE: still up and healthy
        view = wait_view(reader, lambda v: v.state == "healthy"
                         and ide_has(lambda c: c.liveness == "expired")(v))

        set_mode(port, "wrong-json")  # up by HTTP status, liveness unknown, reason says why
        view = wait_view(reader, ide_has(lambda c: c.liveness == "unknown"))
        ide = comp(view, "waiide")
        assert ide is not None and ide.state == "up" and "not JSON" in (ide.reason or "")

        set_mode(port, "error")
        view = wait_view(reader, ide_has(lambda c: c.http_status == 503))
        ide = comp(view, "waiide")
        assert ide is not None and ide.http_status == 503
        assert ide.reason == f"HTTP 503 from http://127.0.0.1:{port}/healthz"
        assert view.state == "unhealthy"
        last_success = ide.last_success_at

        set_mode(port, "slow")
        view = wait_view(reader, ide_has(lambda c: "no answer within" in (c.reason or "")))
        ide = comp(view, "waiide")
        assert ide is not None and ide.last_success_at == last_success

        set_mode(port, "up")
        wait_view(reader, lambda v: v.state == "healthy")

    # The fake is gone (the monitor too): start only a monitor against the dead port.
    with monitor_process(tmp_path, monitor_env(tmp_path, port)):
        view = wait_view(reader, comp_state("waiide", "down"), log=log)
        ide = comp(view, "waiide")
        assert ide is not None and (ide.reason or "").startswith("cannot connect")
        with fake_upstream(tmp_path, port):  # back on the same port
            wait_view(reader, lambda v: v.state == "healthy", log=log)


def test_lightweight_mode_and_degraded(tmp_path: Path) -> None:
    reader = RecordReader(tmp_path / "status.rec", reopen_interval_s=0.05)
    dead = free_port()
    with fake_upstream(tmp_path) as port:
        env = monitor_env(tmp_path, port, USE_ALL_COMPONENTS="false", API_SERVER_PORT=str(dead))
        with monitor_process(tmp_path, env):
            view = wait_view(reader, lambda v: v.known, log=tmp_path / "monitor.log")
            assert view.record is not None
            assert view.record.component("singleuser") is None
            assert view.state == "degraded"
            gateway = view.record.component("gateway")
            assert gateway is not None and gateway.state == "down"
            assert gateway.url == f"http://127.0.0.1:{dead}/api/healthz"


@pytest.mark.slow
def test_components_file_feeds_process_facts(tmp_path: Path) -> None:
    reader = RecordReader(tmp_path / "status.rec", reopen_interval_s=0.05)
    components = tmp_path / "components.json"
    with fake_upstream(tmp_path) as port:
        pid = _listener_pid(tmp_path, port)
        started = time.time() - 100.0
        doc: dict[str, dict[str, dict[str, Any]]] = {"components": {
            "waiide": {"pid": pid, "started_at": started, "restarts": 2, "state": "running"},
            "monitor": {"restarts": 1},
            "gateway": {"pid": "junk"},
        }}
        components.write_text(json.dumps(doc))
        env = monitor_env(tmp_path, port, MONITOR_COMPONENTS_FILE=str(components))
        with monitor_process(tmp_path, env) as mon:
            view = wait_view(reader, ide_has(lambda c: c.cpu_percent is not None),
                             log=tmp_path / "monitor.log")
            ide = comp(view, "waiide")
            assert ide is not None
            assert (ide.pid, ide.pid_alive, ide.restarts) == (pid, True, 2)
            assert ide.uptime_s is not None and 100.0 <= ide.uptime_s < 200.0
            assert ide.rss_bytes is not None and ide.rss_bytes > 1_000_000
            assert ide.cpu_seconds is not None and ide.cpu_seconds > 0
            me = comp(view, "monitor")
            assert me is not None and (me.pid, me.restarts, me.state) == (mon.pid, 1, "up")
            gateway = comp(view, "gateway")
            assert gateway is not None and gateway.pid is None  # the junk pid was dropped
    # Fake stopped; the file still names its pid.
    with monitor_process(tmp_path, monitor_env(tmp_path, port,
                                               MONITOR_COMPONENTS_FILE=str(components))):
        view = wait_view(reader, comp_state("waiide", "down"), log=tmp_path / "monitor.log")
        ide = comp(view, "waiide")
        assert ide is not None and ide.pid_alive is False
        assert (ide.reason or "").endswith(f"pid {pid} is not running")
    doc["components"]["waiide"].update(pid=None, state="backoff")
    components.write_text(json.dumps(doc))
    with monitor_process(tmp_path, monitor_env(tmp_path, port,
                                               MONITOR_COMPONENTS_FILE=str(components))):
        view = wait_view(reader, ide_has(lambda c: c.state == "down"), log=tmp_path / "monitor.log")
        ide = comp(view, "waiide")
        assert ide.pid is None and (ide.reason or "").endswith("; supervisor: backoff")


def _listener_pid(tmp: Path, port: int) -> int:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/healthz", timeout=5) as resp:
        return int(json.loads(resp.read())["pid"])


def test_ide_over_unix_socket(tmp_path: Path) -> None:
    reader = RecordReader(tmp_path / "status.rec", reopen_interval_s=0.05)
    sock = tmp_path / "ide.sock"
    with fake_upstream(tmp_path) as port, fake_upstream(tmp_path, socket_path=sock):
        env = monitor_env(tmp_path, port, WAIIDE_SOCKET=str(sock), WAIIDE_PORT="1")
        with monitor_process(tmp_path, env):
            view = wait_view(reader, lambda v: v.state == "healthy", log=tmp_path / "monitor.log")
            ide = comp(view, "waiide")
            assert ide is not None and ide.url == f"unix:{sock}:/healthz"
            assert ide.liveness == "alive"


@pytest.mark.slow
def test_killed_monitor_goes_stale_and_restart_takes_over(tmp_path: Path) -> None:
    path = tmp_path / "status.rec"
    reader = RecordReader(path, reopen_interval_s=0.05)
    with fake_upstream(tmp_path) as port:
        env = monitor_env(tmp_path, port)
        with monitor_process(tmp_path, env) as mon:
            wait_view(reader, lambda v: v.known, log=tmp_path / "monitor.log")
            inode = path.stat().st_ino
            os.kill(mon.pid, signal.SIGKILL)
            mon.wait(timeout=5)
            view = wait_view(reader, lambda v: not v.known, timeout_s=3 * INTERVAL_S + 3)
            assert view.state == "unknown"
            assert (view.reason or "").startswith("record is stale (age ")
            assert (view.reason or "").endswith(" > 3 intervals)")
            assert view.last_record is not None
        with monitor_process(tmp_path, env):
            wait_view(reader, lambda v: v.known, log=tmp_path / "monitor.log")
            assert path.stat().st_ino == inode  # took over the crashed writer's file


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_exits_cleanly_and_unlinks(tmp_path: Path, signum: signal.Signals) -> None:
    path = tmp_path / "status.rec"
    reader = RecordReader(path, reopen_interval_s=0.05)
    with fake_upstream(tmp_path) as port, monitor_process(tmp_path, monitor_env(tmp_path, port)) as mon:
        wait_view(reader, lambda v: v.known, log=tmp_path / "monitor.log")
        os.kill(mon.pid, signum)
        assert mon.wait(timeout=10) == 0
        assert not path.exists()
        view = reader.read()
        assert view.state == "unknown"
        assert "monitor stopped" in (view.reason or "")


@pytest.mark.parametrize(("key", "value"), [
    ("MONITOR_INTERVAL", "abc"),
    ("MONITOR_INTERVAL", "-1"),
    ("MONITOR_PROBE_TIMEOUT", "9"),
    ("USE_ALL_COMPONENTS", "yes"),
    ("WAIIDE_PORT", "99999"),
    ("API_SERVER_PORT", "http"),
    ("MONITOR_WAIIDE_HEALTH_PATH", "healthz"),
    ("PROMETHEUS_MULTIPROC_DIR", "/nonexistent/dir"),
    ("PROMETHEUS_MULTIPROC_DIR", ""),  # set but empty: would write into the cwd
])
def test_bad_setting_exits_2_naming_it(tmp_path: Path, key: str, value: str) -> None:
    env = {**os.environ, **monitor_env(tmp_path, 1), key: value}
    out = subprocess.run([PYTHON, "-m", "monitor"], env=env, cwd=tmp_path, capture_output=True,
                         timeout=30, start_new_session=True, check=False)
    assert out.returncode == CONFIG_ERROR, out.stderr
    assert f"Config '{key}' has value '{value}'" in out.stderr.decode()
    assert not (tmp_path / "status.rec").exists()
    assert not list(tmp_path.glob("*.db"))  # no stray multiprocess files in the cwd


def test_second_monitor_is_refused(tmp_path: Path) -> None:
    with fake_upstream(tmp_path) as port, monitor_process(tmp_path, monitor_env(tmp_path, port)):
        wait_view(RecordReader(tmp_path / "status.rec"), lambda v: v.known)
        env = {**os.environ, **monitor_env(tmp_path, port)}
        out = subprocess.run([PYTHON, "-m", "monitor"], env=env, cwd=tmp_path, capture_output=True,
                             timeout=30, start_new_session=True, check=False)
        assert out.returncode == STARTUP_FAILURE
        assert "Config 'WAIIDE_HUB_STATUS_PATH'" in out.stderr.decode()
        assert "another writer holds" in out.stderr.decode()


def test_probe_metrics_in_multiprocess_files(tmp_path: Path) -> None:
    mpdir = tmp_path / "mp"
    mpdir.mkdir()
    reader = RecordReader(tmp_path / "status.rec", reopen_interval_s=0.05)
    with fake_upstream(tmp_path) as port:
        set_mode(port, "error")
        env = monitor_env(tmp_path, port, PROMETHEUS_MULTIPROC_DIR=str(mpdir))
        with monitor_process(tmp_path, env) as mon:
            wait_view(reader, lambda v: v.seq >= 6, log=tmp_path / "monitor.log")  # 3 ticks
            os.kill(mon.pid, signal.SIGTERM)
            assert mon.wait(timeout=10) == 0
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=str(mpdir))  # type: ignore[no-untyped-call]
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for fam in text_string_to_metric_families(generate_latest(registry).decode())
               for s in fam.samples}
    down = samples[("waiide_hub_probes_total", (("component", "waiide"), ("result", "down")))]
    failures = samples[("waiide_hub_probe_failures_total",
                        (("component", "waiide"), ("reason", "http_status")))]
    assert down >= 3 and failures == down
    assert samples[("waiide_hub_probe_duration_seconds_count", (("component", "gateway"),))] >= 3


def test_config_from_plain_dict() -> None:
    config = MonitorConfig.from_env({"JUPYTERHUB_SERVICE_PREFIX": "/user/a", "HOST": "::",
                                     "API_SERVER_PORT": "9001"})
    assert (config.interval_s, config.probe_timeout_s, config.use_all_components) == (5.0, 2.0, True)
    # A wildcard IPv6 listener is probed on ::1, which it answers even with IPV6_V6ONLY set
    # (the supervisor's readiness probe uses the same rule: common.defaults.local_host).
    assert config.singleuser_url == "http://[::1]:8090/user/a/api"
    assert config.gateway_url == "http://[::1]:9001/api/healthz"
    assert config.waiide_url == "http://127.0.0.1:8080/healthz"
    assert config.record_path.name.endswith("-9001.status")
    assert MonitorConfig.from_env({"HOST": "10.1.2.3"}).gateway_url.startswith("http://10.1.2.3:")
    with pytest.raises(ConfigError, match="Config 'DEBUG' has value 'on'"):
        MonitorConfig.from_env({"DEBUG": "on"})


@pytest.mark.parametrize(("body", "liveness", "note"), [
    (b'{"status":"alive","lastHeartbeat":1}', "alive", None),
    (b'{"status":"expired","lastHeartbeat":0}', "expired", None),
    (b'{"status":"dead"}', "unknown", "health body has no status alive/expired"),
    (b"[1, 2]", "unknown", "health body has no status alive/expired"),
    (b"<html>", "unknown", "health body is not JSON"),
])
def test_parse_ide_health(body: bytes, liveness: str, note: str | None) -> None:
    got_liveness, got_note = parse_ide_health(body)
    assert got_liveness == liveness
    assert (got_note is None) if note is None else (got_note or "").startswith(note)
