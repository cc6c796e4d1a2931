"""gateway/metrics.py: exact sums across processes, dead-worker cleanup, status series, Prometheus.

Scenarios:
1. Three worker processes share one PROMETHEUS_MULTIPROC_DIR and record known traffic; one
   scrape sums every counter exactly and the in-flight / open-WebSocket gauges per live worker.
2. A SIGKILLed worker's live gauges disappear once it is marked dead; its counted totals stay.
3. Single-process mode (no directory): the same API, label hygiene, status series from a record
   that is fresh, stale, or missing; the monitor and gateway series never share a name.
4. A real Prometheus server scrapes a worker's /metrics on loopback, and PromQL over its HTTP API
   returns the expected series and values.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

import gateway
from common.prometheus_mode import multiprocess_active
from gateway.metrics import PREFIX, GatewayMetrics, GatewayMetricsError
from monitor.metrics import MonitorMetrics
from monitor.probes import ProbeResult, ProbeTarget
from monitor.record import ComponentStatus, RecordReader, RecordWriter, StatusRecord
from tests.procs import PYTHON, RESOURCES, ROOT, free_port, running, wait_http

PROMETHEUS = Path("/usr/bin/prometheus")
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(text: str) -> Samples:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for fam in text_string_to_metric_families(text) for s in fam.samples}


def scrape(port: int) -> Samples:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
        assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        return parse(resp.read().decode())


def post(port: int, path: str, doc: Any = None) -> Any:
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}",
                                 data=json.dumps(doc or {}).encode(), method="POST")
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


@contextlib.contextmanager
def worker(tmp: Path, mpdir: Path | None, record: Path | None = None) -> Iterator[int]:
    port = free_port()
    env = {"PYTHONPATH": str(ROOT)}
    if mpdir:
        env["PROMETHEUS_MULTIPROC_DIR"] = str(mpdir)
    argv = [PYTHON, str(RESOURCES / "metrics_app.py"), "--port", str(port)]
    if record:
        argv += ["--record", str(record)]
    with running(argv, env, ready_url=f"http://127.0.0.1:{port}/metrics", cwd=tmp,
                 log_path=tmp / f"worker-{port}.log", stop_timeout_s=5):
        yield port


def traffic(i: int) -> dict[str, Any]:
    """Worker i's share: distinct per worker so a wrong sum cannot pass by accident."""
    return {
        "requests": [["GET", "proxy", 200, 10, 1000, 100 * (i + 1)],
                     ["POST", "api", 201, 50, 5, 7],
                     ["GET", "websocket", 101, 0, 0, 1],
                     ["BREW", "proxy", 418, 0, 3, 2]],
        "in_flight": {"proxy": 1, "api": i},
        "ws_open": 1,
        "ws_messages": {"in": 5 * (i + 1), "out": 11},
        "upstream_errors": {"timeout": i, "connect_error": 1},
    }


def labels(**kw: str) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(kw.items()))


def test_multiprocess_sums_exactly_and_dead_workers_drop_live_gauges(tmp_path: Path) -> None:
    mpdir = tmp_path / "mp"
    mpdir.mkdir()
    with contextlib.ExitStack() as stack:
        ports = [stack.enter_context(worker(tmp_path, mpdir)) for _ in range(3)]
        pids = [post(port, "/traffic", traffic(i))["pid"] for i, port in enumerate(ports)]
        s = scrape(ports[0])
        req = PREFIX + "http_requests_total"
        assert s[(req, labels(method="GET", route_class="proxy", code="200"))] == 600
        assert s[(req, labels(method="POST", route_class="api", code="201"))] == 21
        assert s[(req, labels(method="GET", route_class="websocket", code="101"))] == 3
        assert s[(req, labels(method="OTHER", route_class="proxy", code="418"))] == 6
        total = 600 + 21 + 3 + 6
        assert sum(v for (n, _), v in s.items() if n == req) == total
        duration_counts = [v for (n, _), v in s.items()
                           if n == PREFIX + "http_request_duration_seconds_count"]
        assert sum(duration_counts) == total
        assert s[(PREFIX + "http_received_bytes_total", labels(route_class="proxy"))] == 6000
        assert s[(PREFIX + "http_sent_bytes_total", labels(route_class="proxy"))] == 600_000 + 3 * 2 * 3
        assert s[(PREFIX + "http_received_bytes_total", labels(route_class="api"))] == 21 * 50
        assert s[(PREFIX + "http_requests_in_flight", labels(route_class="proxy"))] == 3
        assert s[(PREFIX + "http_requests_in_flight", labels(route_class="api"))] == 0 + 1 + 2
        assert s[(PREFIX + "websocket_connections_open", ())] == 3
        assert s[(PREFIX + "websocket_connections_total", ())] == 3
        assert s[(PREFIX + "websocket_messages_total", labels(direction="in"))] == 5 + 10 + 15
        assert s[(PREFIX + "websocket_messages_total", labels(direction="out"))] == 33
        assert s[(PREFIX + "upstream_errors_total", labels(kind="timeout"))] == 0 + 1 + 2
        assert s[(PREFIX + "upstream_errors_total", labels(kind="connect_error"))] == 3
        assert s[(PREFIX + "build_info", labels(version=gateway.__version__))] == 1
        assert not any("pid" in dict(lbl) for _, lbl in s)  # no per-pid series leak out

        # Worker 2 crashes: nothing runs in it to clean up, so a sibling marks it dead.
        os.kill(pids[2], signal.SIGKILL)
        post(ports[0], f"/mark-dead/{pids[2]}")
        after = scrape(ports[1])
        assert after[(PREFIX + "http_requests_in_flight", labels(route_class="proxy"))] == 2
        assert after[(PREFIX + "http_requests_in_flight", labels(route_class="api"))] == 0 + 1
        assert after[(PREFIX + "websocket_connections_open", ())] == 2
        assert sum(v for (n, _), v in after.items() if n == req) == total  # totals survive


def test_single_process_mode_api(tmp_path: Path) -> None:
    assert not multiprocess_active()  # the test process itself has no PROMETHEUS_MULTIPROC_DIR
    metrics = GatewayMetrics(version="9.9.9")
    token = metrics.request_started("proxy")
    metrics.request_finished(token, "GET", "proxy", 200, 3, 4)
    for method in ("FOO", "BAR", "get"):  # non-standard methods collapse into OTHER
        metrics.request_finished(metrics.request_started("api"), method, "api", 404, 0, 0)
    with pytest.raises(ValueError, match="unknown route class 'bogus'"):
        metrics.request_started("bogus")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown route class 'bogus'"):
        metrics.request_finished(metrics.request_started("api"), "GET", "bogus", 200, 0, 0)  # type: ignore[arg-type]
    metrics.websocket_opened()
    metrics.websocket_opened()
    metrics.websocket_closed()
    body, content_type = metrics.render()
    assert content_type.startswith("text/plain; version=0.0.4")
    s = parse(body.decode())
    assert s[(PREFIX + "http_requests_total", labels(method="GET", route_class="proxy", code="200"))] == 1
    assert s[(PREFIX + "http_requests_total", labels(method="OTHER", route_class="api", code="404"))] == 3
    assert s[(PREFIX + "websocket_connections_open", ())] == 1
    # the bogus finish still balanced the in-flight gauge before it raised
    assert s[(PREFIX + "http_requests_in_flight", labels(route_class="api"))] == 0
    assert s[(PREFIX + "build_info", labels(version="9.9.9"))] == 1
    assert (PREFIX + "status_up", ()) not in s  # no reader given: no status series
    # A second instance in the same process has its own registry (no duplicate errors).
    assert parse(GatewayMetrics().render()[0].decode())[
        (PREFIX + "build_info", labels(version=gateway.__version__))] == 1


def test_multiproc_dir_without_env_is_refused() -> None:
    with pytest.raises(GatewayMetricsError, match="PROMETHEUS_MULTIPROC_DIR=/x"):
        GatewayMetrics(multiproc_dir="/x")


def test_env_without_multiproc_dir_is_refused(tmp_path: Path) -> None:
    """The variable set (even empty) but no directory passed: refuse rather than litter the cwd."""
    code = ("from gateway.metrics import GatewayMetrics, GatewayMetricsError\n"
            "try:\n    GatewayMetrics()\nexcept GatewayMetricsError as exc:\n    print(exc)\n")
    out = subprocess.run([PYTHON, "-c", code], cwd=tmp_path, capture_output=True, timeout=30,
                         check=True, env={**os.environ, "PYTHONPATH": str(ROOT),
                                          "PROMETHEUS_MULTIPROC_DIR": ""})
    assert b"no directory was given" in out.stdout, out.stderr
    assert not list(tmp_path.glob("*.db"))


RECORD = StatusRecord(overall="degraded", components=(
    ComponentStatus(name="waiide", state="up", liveness="alive", latency_s=0.004, pid=10,
                    uptime_s=50.0, restarts=1, rss_bytes=2048, cpu_seconds=1.5,
                    last_success_at=1700000000.0),
    ComponentStatus(name="singleuser", state="down", reason="no answer within 2s", restarts=0),
))


def test_status_series_follow_the_record(tmp_path: Path) -> None:
    path = tmp_path / "status.rec"
    metrics = GatewayMetrics(status_reader=RecordReader(path, reopen_interval_s=0.0))
    s = parse(metrics.render()[0].decode())
    assert s[(PREFIX + "status_up", ())] == 0
    assert not any(n.startswith(PREFIX + "component_") for n, _ in s)  # nothing known yet
    writer = RecordWriter(path, interval_s=5.0)
    writer.open()
    try:
        writer.write(RECORD)
        s = parse(metrics.render()[0].decode())
        assert s[(PREFIX + "status_up", ())] == 1
        assert 0 <= s[(PREFIX + "status_age_seconds", ())] < 5
        assert s[(PREFIX + "component_up", labels(component="waiide"))] == 1
        assert s[(PREFIX + "component_up", labels(component="singleuser"))] == 0
        assert s[(PREFIX + "ide_alive", ())] == 1
        assert s[(PREFIX + "component_restarts_total", labels(component="waiide"))] == 1
        assert s[(PREFIX + "component_restarts_total", labels(component="singleuser"))] == 0
        assert s[(PREFIX + "component_resident_memory_bytes", labels(component="waiide"))] == 2048
        assert s[(PREFIX + "component_cpu_seconds_total", labels(component="waiide"))] == 1.5
        assert s[(PREFIX + "component_uptime_seconds", labels(component="waiide"))] == 50
        assert s[(PREFIX + "component_probe_latency_seconds", labels(component="waiide"))] == 0.004
        assert s[(PREFIX + "component_last_success_timestamp_seconds",
                  labels(component="waiide"))] == 1700000000.0
        # A dead monitor: every component drops to 0 and the frozen details disappear.
        writer.write(RECORD, written_monotonic=time.monotonic() - 60)
        s = parse(metrics.render()[0].decode())
        assert s[(PREFIX + "status_up", ())] == 0
        assert s[(PREFIX + "component_up", labels(component="waiide"))] == 0
        assert (PREFIX + "ide_alive", ()) not in s
        assert not any(n.startswith(PREFIX + "component_restarts") for n, _ in s)
    finally:
        writer.close()


def test_monitor_and_gateway_series_have_one_owner_each(tmp_path: Path) -> None:
    """No metric name is produced by both the monitor and the gateway's status collector."""
    path = tmp_path / "status.rec"
    writer = RecordWriter(path, interval_s=5.0)
    writer.open()
    try:
        writer.write(RECORD)
        gateway_names = {n for n, _ in parse(
            GatewayMetrics(status_reader=RecordReader(path)).render()[0].decode())}
    finally:
        writer.close()
    monitor_metrics = MonitorMetrics(None)
    target = ProbeTarget("waiide", "http://x/healthz", "http://x/healthz", ide_health=True)
    monitor_metrics.probe_finished(ProbeResult(target, False, 0.0, 0.1, failure="timeout",
                                               reason="no answer"))
    monitor_names = {s.name for fam in monitor_metrics.registry.collect() for s in fam.samples}
    assert {PREFIX + "probes_total", PREFIX + "probe_failures_total",
            PREFIX + "probe_duration_seconds_count"} <= monitor_names
    assert gateway_names and not gateway_names & monitor_names
    assert all(n.startswith(PREFIX) for n in gateway_names | monitor_names)


def _prometheus_config(tmp: Path, target_port: int) -> Path:
    config = tmp / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        "scrape_configs:\n  - job_name: waiide_hub\n    static_configs:\n"
        f"      - targets: ['127.0.0.1:{target_port}']\n")
    return config


def _query(prom_port: int, promql: str) -> list[dict[str, Any]]:
    url = (f"http://127.0.0.1:{prom_port}/api/v1/query?"
           + urllib.parse.urlencode({"query": promql}))
    with urllib.request.urlopen(url, timeout=10) as resp:
        doc = json.loads(resp.read())
    assert doc["status"] == "success", doc
    result: list[dict[str, Any]] = doc["data"]["result"]
    return result


def _wait_query(prom_port: int, promql: str, timeout_s: float = 30.0) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        result = _query(prom_port, promql)
        if result:
            return result
        time.sleep(0.25)
    raise AssertionError(f"PromQL {promql!r} returned nothing within {timeout_s}s")


@pytest.mark.slow
def test_real_prometheus_scrapes_and_answers_promql(tmp_path: Path) -> None:
    if not (PROMETHEUS.is_file() and os.access(PROMETHEUS, os.X_OK)):
        pytest.fail(f"{PROMETHEUS} is missing: install the Debian package 'prometheus' "
                    "(bash scripts/setup.sh test does)")
    mpdir = tmp_path / "mp"
    mpdir.mkdir()
    record = tmp_path / "status.rec"
    writer = RecordWriter(record, interval_s=60.0)  # stays fresh for the whole test
    writer.open()
    try:
        writer.write(RECORD)
        with worker(tmp_path, mpdir, record) as target, worker(tmp_path, mpdir) as sibling:
            post(target, "/traffic", traffic(0))
            post(sibling, "/traffic", traffic(1))
            prom_port = free_port()
            argv = [str(PROMETHEUS), f"--config.file={_prometheus_config(tmp_path, target)}",
                    f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                    f"--web.listen-address=127.0.0.1:{prom_port}", "--log.level=warn"]
            with running(argv, log_path=tmp_path / "prometheus.log", cwd=tmp_path) as prom:
                # /-/ready answers 503 until the TSDB is open: wait for a 200.
                wait_http(f"http://127.0.0.1:{prom_port}/-/ready", 60, prom, accept_status=[200])
                result = _wait_query(prom_port, 'sum(waiide_hub_http_requests_total'
                                                '{route_class="proxy",code="200"})')
                assert float(result[0]["value"][1]) == 100 + 200
                up = _wait_query(prom_port, 'up{job="waiide_hub"}')
                assert up[0]["value"][1] == "1"
                comp = _wait_query(prom_port, 'waiide_hub_component_up{component="waiide"}')
                assert comp[0]["value"][1] == "1"
                info = _wait_query(prom_port, "waiide_hub_build_info")
                assert info[0]["metric"]["version"] == gateway.__version__
                inflight = _wait_query(prom_port, "sum(waiide_hub_http_requests_in_flight)")
                assert float(inflight[0]["value"][1]) == 2 + 1  # proxy 1+1, api 0+1
    finally:
        writer.close()



def test_render_skips_a_file_a_starting_process_has_not_sized_yet(tmp_path: Path) -> None:
    """A scrape racing a worker's start must not fail as a whole (seen as a 500 on /metrics)."""
    script = (
        "import os, sys\n"
        "from gateway.metrics import GatewayMetrics\n"
        "m = GatewayMetrics(multiproc_dir=sys.argv[1])\n"
        "t = m.request_started('proxy'); m.request_finished(t, 'GET', 'proxy', 200, 0, 0)\n"
        "open(os.path.join(sys.argv[1], 'counter_424242.db'), 'wb').close()\n"
        "body, _ = m.render()\n"
        "assert b'waiide_hub_http_requests_total{' in body, body[:300]\n"
    )
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path), "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", script, str(tmp_path)], env=env, cwd=ROOT,
                          capture_output=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr.decode()
