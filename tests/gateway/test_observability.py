"""The gateway's /metrics and /api/status with real workers and a real monitor beside them."""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import Server, gateway_process
from tests.procs import PYTHON, ROOT, running

REQUESTS = 200
MAX_ROUNDS = 5  # more requests while one worker has served none yet (the kernel decides)


def get(server: Server, path: str) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def samples(server: Server) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    status, body = get(server, "/metrics")
    assert status == 200
    out = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def proxied_total(values: dict[tuple[str, tuple[tuple[str, str], ...]], float], code: str) -> float:
    return sum(v for (name, labels), v in values.items()
               if name == "waiide_hub_http_requests_total"
               and ("route_class", "proxy") in labels and ("code", code) in labels)


def per_worker(values: dict[tuple[str, tuple[tuple[str, str], ...]], float]) -> dict[str, float]:
    return {dict(labels)["worker"]: v for (name, labels), v in values.items()
            if name == "waiide_hub_worker_requests_total"}


@pytest.fixture
def observed(tmp_path: Path, upstream: Server) -> Iterator[tuple[Server, dict[str, str]]]:
    metrics_dir = tmp_path / "prom"
    metrics_dir.mkdir()
    env = {"PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
           "WAIIDE_HUB_STATUS_PATH": str(tmp_path / "status.record"),
           "MONITOR_INTERVAL": "0.5", "MONITOR_PROBE_TIMEOUT": "0.4",
           "USE_ALL_COMPONENTS": "false"}
    with gateway_process(tmp_path, upstream.port, env, workers=2) as gw:
        env.update({"API_SERVER_PORT": str(gw.port), "WAIIDE_PORT": str(upstream.port),
                    "HOST": "127.0.0.1", "PYTHONPATH": str(ROOT)})
        yield gw, env


def test_counters_sum_requests_across_workers_exactly(observed: tuple[Server, dict[str, str]]
                                                      ) -> None:
    gw, _env = observed
    before = proxied_total(samples(gw), "200")
    sent = 0
    for _ in range(MAX_ROUNDS):
        for i in range(REQUESTS):
            # A new connection each time, so the kernel spreads them over both workers.
            assert get(gw, f"/count/{sent + i}")[0] == 200
        sent += REQUESTS
        counts = per_worker(samples(gw))
        if len(counts) == 2 and min(counts.values()) > 0:
            break
    for _ in range(7):
        assert get(gw, "/status/503")[0] == 503
    values = samples(gw)
    assert proxied_total(values, "200") - before == sent
    assert proxied_total(values, "503") == 7
    assert any(name == "waiide_hub_build_info" for name, _ in values), "build info missing"
    counts = per_worker(values)
    # Both workers served and are counted, each under its own index (bounded by GATEWAY_WORKERS).
    assert set(counts) == {"0", "1"} and min(counts.values()) > 0, counts
    every = sum(v for (name, _), v in values.items() if name == "waiide_hub_http_requests_total")
    assert sum(counts.values()) == every
    assert values[("waiide_hub_http_requests_in_flight", (("route_class", "proxy"),))] == 0


def test_gateway_and_monitor_side_by_side_share_the_record(
        observed: tuple[Server, dict[str, str]], tmp_path: Path) -> None:
    gw, env = observed
    status, body = get(gw, "/api/status")
    assert status == 503 and json.loads(body)["status"] == "unknown"  # no monitor yet
    with running([PYTHON, "-m", "monitor"], env, log_path=tmp_path / "monitor.log", cwd=ROOT):
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            status, body = get(gw, "/api/status")
            if status == 200:
                break
            time.sleep(0.2)
        report = json.loads(body)
        assert status == 200, report
        assert report["components"]["waiide"]["state"] == "up"
        # Each worker maps the record itself (a worker that found none retries within 1 s), and
        # a scrape may land on either: poll until the series shows.
        key = ("waiide_hub_component_up", (("component", "waiide"),))
        deadline = time.monotonic() + 10
        while key not in (values := samples(gw)) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert values.get(key) == 1
    # The monitor is gone: after 3 intervals the record is stale and reads as unknown, not healthy.
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        status, body = get(gw, "/api/status")
        if status == 503:
            break
        time.sleep(0.2)
    report = json.loads(body)
    assert status == 503 and report["status"] == "unknown", report
    assert report["reason"]
