"""One Prometheus and one WAIIDE Hub for all the live observability tests (package scope).

Order: ports are picked, Prometheus starts scraping the gateway's port (before the gateway is
there, as in a real deployment), the stack starts under its supervisor, a bounded load runs, the
IDE is killed once so the supervisor restarts it, and the fixture waits until Prometheus has
ingested all of it and the recording rules have caught up.
"""

from __future__ import annotations

import functools
import os
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.observability import load
from tests.observability.scrape import GATEWAY_JOB, live_config
from tests.observability.servers import (
    HubPorts,
    PrometheusServer,
    WaiideHub,
    prometheus_server,
    waiide_hub,
)

INGEST_TIMEOUT_S = 30.0
RESTART_TIMEOUT_S = 30.0
LATE_503S = 5


@dataclass
class Observed:
    """The stack after the load, and the Prometheus that watched it."""

    hub: WaiideHub
    prometheus: PrometheusServer
    report: load.LoadReport

    @property
    def instance(self) -> str:
        return f"127.0.0.1:{self.hub.api_port}"


@pytest.fixture(scope="package")
def obs_tmp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("observability")


@pytest.fixture(scope="package")
def hub_ports() -> HubPorts:
    return HubPorts.pick()


@pytest.fixture(scope="package")
def prometheus(obs_tmp: Path, hub_ports: HubPorts) -> Iterator[PrometheusServer]:
    tmp = obs_tmp / "prometheus"
    tmp.mkdir()
    with prometheus_server(tmp, live_config(hub_ports.api, tmp)) as server:
        yield server


def _ide_restarts(hub: WaiideHub) -> float:
    for family in text_string_to_metric_families(hub.metrics_text()):
        for sample in family.samples:
            if (sample.name == "waiide_hub_component_restarts_total"
                    and sample.labels.get("component") == "waiide"):
                return float(sample.value)
    return 0.0


def _restart_ide(hub: WaiideHub) -> None:
    """SIGKILL the IDE (a pid this test's supervisor started) and wait until it is back."""
    pid = int(hub.get_json("/api/services")["services"]["waiide"]["pid"])
    os.kill(pid, signal.SIGKILL)
    load.burst(hub.url, "/during-restart", 5)  # likely 502s while it is gone
    deadline = time.monotonic() + RESTART_TIMEOUT_S
    while _ide_restarts(hub) < 1 or hub.get_json("/api/status").get("status") != "healthy":
        if time.monotonic() > deadline:
            raise AssertionError(f"the IDE was not restarted within {RESTART_TIMEOUT_S}s:\n"
                                 + hub.log.read_text(errors="replace")[-3000:])
        time.sleep(0.2)


def _ingested(prom: PrometheusServer, promql: str, minimum: float) -> bool:
    result = prom.query(promql)
    return bool(result) and float(result[0]["value"][1]) >= minimum


@pytest.fixture(scope="package")
def observed(obs_tmp: Path, hub_ports: HubPorts,
             prometheus: PrometheusServer) -> Iterator[Observed]:
    tmp = obs_tmp / "hub"
    tmp.mkdir()
    sel = f'job="{GATEWAY_JOB}"'
    with waiide_hub(tmp, hub_ports) as hub:
        # As in production, Prometheus has been scraping the idle server before the traffic:
        # the series the gateway creates at start (at 0) are stored, so rate() sees the load.
        _wait_ingested(prometheus, [
            (f"count_over_time(waiide_hub_websocket_connections_total{{{sel}}}[1m])", 2)])
        report = load.generate(hub.url)
        _restart_ide(hub)
        report.statuses.update(load.burst(hub.url, "/after-restart", 20).statuses)
        fivexx = f'sum(waiide_hub_http_requests_total{{{sel},code="503"}})'
        _wait_ingested(prometheus, [(fivexx, load.IDE_503S)])
        # The gateway creates a status code's series at its first use. When all 503s of the load
        # fall between two scrapes, the series is born at its final value and rate() sees no
        # increase (Prometheus cannot know it started at 0). More 503s now, with the series
        # already stored, make the increase visible.
        report.statuses.update(load.burst(hub.url, "/status/503", LATE_503S).statuses)
        _wait_ingested(prometheus, [
            (fivexx, load.IDE_503S + LATE_503S),
            (f"sum(waiide_hub_websocket_connections_total{{{sel}}})", load.WEBSOCKETS),
            (f'sum(waiide_hub_upstream_errors_total{{{sel},kind="timeout"}})', load.SLOW_REQUESTS),
            (f'max(waiide_hub_component_restarts_total{{{sel},component="waiide"}})', 1),
            (f'sum(waiide_hub_http_requests_total{{{sel},route_class="proxy"}})',
             load.PROXIED_GETS + 20),
            (f"sum(instance:waiide_hub_http_5xx:rate5m{{{sel}}})", 1e-9),
        ])
        yield Observed(hub, prometheus, report)


def _wait_ingested(prometheus: PrometheusServer, expectations: list[tuple[str, float]]) -> None:
    for promql, minimum in expectations:
        prometheus.wait_for(f"{promql} >= {minimum}",
                            functools.partial(_ingested, prometheus, promql, minimum),
                            INGEST_TIMEOUT_S)
