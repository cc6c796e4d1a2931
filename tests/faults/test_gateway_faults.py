"""`python -m gateway` on its own: lost workers, a broken metrics directory, metrics without a
supervisor, and PORT that a stranger cannot share."""

from __future__ import annotations

import errno
import os
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from common.metrics_dir import derived_metrics_dir
from tests.conftest import Server, gateway_process
from tests.faults.stack import RECOVERY, get, wait_for
from tests.gateway.test_workers import workers
from tests.procs import PYTHON, ROOT, free_port, running


def _api(gw: Server, path: str) -> tuple[int, dict[str, object]]:
    return get(f"{gw.url}{path}")


def _metrics(gw: Server) -> dict[str, float]:
    with urllib.request.urlopen(f"{gw.url}/metrics", timeout=10) as resp:
        text = resp.read().decode()
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            key = sample.name + "".join(f",{k}={v}" for k, v in sorted(sample.labels.items()))
            out[key] = sample.value
    return out


@pytest.mark.slow
def test_every_worker_killed_is_back_within_seconds(tmp_path: Path, upstream: Server) -> None:
    """Issue 12: with every worker killed nothing noticed but the supervisor's probe, 20.8 s."""
    with gateway_process(tmp_path, upstream.port) as gw:
        victims = workers(gw)
        assert len(victims) == 2
        began = time.monotonic()
        for pid in victims:
            os.kill(pid, signal.SIGKILL)

        def back() -> bool:
            now = workers(gw)
            return len(now) == 2 and not now & victims and _api(gw, "/api/healthz")[0] == 200

        wait_for(back, 30, "two new workers serving")
        RECOVERY["all gateway workers killed: serving again"] = time.monotonic() - began
        wait_for(lambda: _api(gw, "/api/services")[1].get("gateway_workers")
                 == {"up": 2, "expected": 2}, 10, "2 of 2 workers reported")


@pytest.mark.slow
def test_a_broken_metrics_directory_is_reported_and_recovered(tmp_path: Path,
                                                               upstream: Server) -> None:
    """Issue 12: a replacement worker that crashed on a broken metrics directory left the gateway
    at 1 of 2 workers for good, even after the directory was restored, and status said healthy."""
    metrics_dir = tmp_path / "prom"
    metrics_dir.mkdir()
    away = tmp_path / "prom.away"
    with gateway_process(tmp_path, upstream.port,
                         {"PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}) as gw:
        victim = min(workers(gw))
        metrics_dir.rename(away)  # broken: every new metric file fails
        os.kill(victim, signal.SIGKILL)
        wait_for(lambda: "still down after" in gw.log_text(), 30, "a failed restart retried")

        def reported_short() -> bool:
            body = _api(gw, "/api/status")[1]
            return body.get("gateway_workers") == {"up": 1, "expected": 2} and \
                "gateway: 1 of 2 workers up" in str(body.get("reason"))

        wait_for(reported_short, 10, "/api/status reporting 1 of 2 workers")
        services = _api(gw, "/api/services")[1]
        assert services["gateway_workers"] == {"up": 1, "expected": 2}
        away.rename(metrics_dir)  # restored
        began = time.monotonic()
        wait_for(lambda: len(workers(gw)) == 2 and _api(gw, "/api/services")[1].get(
            "gateway_workers") == {"up": 2, "expected": 2}, 60, "2 of 2 workers again")
        RECOVERY["broken metrics dir restored: back to 2 of 2 workers"] = time.monotonic() - began
        # Each worker reads the shared states at most every CAPACITY_CACHE_S: the worker answering
        # the scrape may lag the one that answered /api/services by that much.
        wait_for(lambda: _metrics(gw)["waiide_hub_gateway_workers_up"] == 2, 5,
                 "the scrape reporting 2 workers up")
        assert _metrics(gw)["waiide_hub_gateway_workers_expected"] == 2


@pytest.mark.slow
def test_metrics_are_whole_with_python_m_gateway_alone_and_a_monitor_beside_it(
        tmp_path: Path, upstream: Server) -> None:
    """Issue 12: without PROMETHEUS_MULTIPROC_DIR each worker kept its own registry: /metrics
    showed 107 of 200 requests, and a monitor beside it shared nothing."""
    env = {"WAIIDE_HUB_STATUS_PATH": str(tmp_path / "status.record"),
           "USE_ALL_COMPONENTS": "false"}
    with gateway_process(tmp_path, upstream.port, env) as gw:
        own_dir = derived_metrics_dir(gw.port)
        assert own_dir.is_dir(), "the gateway made no metrics directory of its own"
        for i in range(200):  # a new connection each: both workers serve some
            assert get(f"{gw.url}/count/{i}")[0] == 200
        values = _metrics(gw)
        proxied = sum(v for k, v in values.items()
                      if k.startswith("waiide_hub_http_requests_total,")
                      and "route_class=proxy" in k and "code=200" in k)
        assert proxied == 200
        per_worker = [k for k in values if k.startswith("waiide_hub_worker_requests_total,")]
        assert len(per_worker) == 2, per_worker
        monitor_env = {"API_SERVER_PORT": str(gw.port), "WAIIDE_PORT": str(upstream.port),
                       "HOST": "127.0.0.1", "PYTHONPATH": str(ROOT), "MONITOR_INTERVAL": "0.5",
                       **env}
        with running([PYTHON, "-m", "monitor"], monitor_env, cwd=ROOT,
                     log_path=tmp_path / "monitor.log"):
            wait_for(lambda: any(k.startswith("waiide_hub_probes_total,") for k in _metrics(gw)),
                     20, "the monitor's series on the gateway's /metrics")
    assert not own_dir.exists(), "the gateway's own metrics directory was left behind"


def test_a_stranger_cannot_share_port_with_so_reuseport(tmp_path: Path,
                                                         upstream: Server) -> None:
    """Issue 12: another process binding PORT with SO_REUSEPORT got 9 of 20 requests."""
    port = free_port()
    env = {"USE_ALL_COMPONENTS": "false", "PORT": str(port)}
    with gateway_process(tmp_path, upstream.port, env):
        stranger = socket.socket()
        stranger.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        try:
            with pytest.raises(OSError) as refused:
                stranger.bind(("127.0.0.1", port))
            assert refused.value.errno == errno.EADDRINUSE
        finally:
            stranger.close()


def test_a_taken_api_port_is_named_by_python_m_gateway(tmp_path: Path, upstream: Server) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {**os.environ, "HOST": "127.0.0.1", "API_SERVER_PORT": str(port),
               "WAIIDE_PORT": str(upstream.port), "GATEWAY_AUTH": "none",
               "PYTHONPATH": str(ROOT)}
        proc = subprocess.run([PYTHON, "-m", "gateway"], env=env, cwd=ROOT, capture_output=True,
                              timeout=60, check=False)
    assert proc.returncode == 2
    assert f"Config 'API_SERVER_PORT' has value '{port}'. 127.0.0.1:{port} is already in use" \
        in proc.stderr.decode()
