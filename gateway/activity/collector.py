"""The activity gauges of `/metrics`, computed at scrape time from the activity directory.

    waiide_hub_last_activity_timestamp_seconds   last real use (absent before the first)
    waiide_hub_idle_seconds                      seconds since then (since start before any use)
    waiide_hub_busy                              1 while busy work (terminal, task, debug) runs
    waiide_hub_idle_shutdown_timestamp_seconds   when the server stops itself unless used
                                                 (absent when self-shutdown is off or busy
                                                 work holds it)
    waiide_hub_activity_ignored{kind}            traffic not counted as use, last 60 s
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from common.activity_files import merge, read_plan, read_workers

PREFIX = "waiide_hub_"


class ActivityCollector(Collector):
    """Reads the activity files once per scrape (a few small files; no request path cost)."""

    def __init__(self, directory: Path, started_at: float) -> None:
        self._directory = directory
        self._started_at = started_at

    def collect(self) -> Iterator[Metric]:
        now = time.time()
        summary = merge(read_workers(self._directory), now)
        plan = read_plan(self._directory)
        if summary.last_activity is not None:
            yield GaugeMetricFamily(f"{PREFIX}last_activity_timestamp_seconds",
                                    "Unix time of the last real use of this server.",
                                    value=summary.last_activity)
        since = summary.last_activity if summary.last_activity is not None else self._started_at
        yield GaugeMetricFamily(f"{PREFIX}idle_seconds",
                                "Seconds since the last real use (since start before any).",
                                value=max(0.0, now - since))
        yield GaugeMetricFamily(f"{PREFIX}busy",
                                "1 while a terminal command, task or debug session runs.",
                                value=1.0 if summary.busy else 0.0)
        if plan is not None and plan.stops_at is not None:
            yield GaugeMetricFamily(f"{PREFIX}idle_shutdown_timestamp_seconds",
                                    "Unix time at which the server stops itself unless used.",
                                    value=plan.stops_at)
        ignored = GaugeMetricFamily(f"{PREFIX}activity_ignored",
                                    "Requests and messages not counted as use, last 60 s.",
                                    labels=["kind"])
        for kind, count in sorted(summary.ignored.items()):
            ignored.add_metric([kind], float(count))
        yield ignored
