"""The monitor's Prometheus series: probe events only (counters and a histogram).

Ownership, so that no series has two writers:
- The monitor owns what accumulates over probe events and needs no state after it exits:
  `waiide_hub_probes_total{component,result}`, `waiide_hub_probe_failures_total{component,reason}`
  and `waiide_hub_probe_duration_seconds{component}`. They go to prometheus-client's multiprocess
  files and the gateway's `/metrics` sums them with everything else.
- The gateway owns every *state* series derived from the status record (component up, liveness,
  last success time, restarts, RSS, CPU, record age): its per-scrape collector reads the record,
  so a dead monitor shows as a stale record instead of as gauges frozen at their last value.

PROMETHEUS_MULTIPROC_DIR must be in the process environment before prometheus_client is imported
(the supervisor sets it). Without it the monitor still counts into a private registry that nobody
scrapes, and says so once at start.
"""

from __future__ import annotations

import logging
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Histogram, multiprocess

from common.errors import ConfigError
from common.prometheus_mode import multiprocess_active
from monitor.probes import ProbeResult

logger = logging.getLogger(__name__)

PREFIX = "waiide_hub_"
PROBE_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class MonitorMetrics:
    """The monitor's metric objects; `probe_finished()` once per probe."""

    def __init__(self, multiproc_dir: Path | None) -> None:
        """
        Raises:
            ConfigError: `multiproc_dir` and prometheus_client's import-time mode disagree
                (the samples would silently go nowhere, or into the working directory).
        """
        if multiproc_dir is not None and not multiprocess_active():
            raise ConfigError("PROMETHEUS_MULTIPROC_DIR", str(multiproc_dir),
                              "It was not in the environment when prometheus_client was imported.")
        if multiproc_dir is None and multiprocess_active():
            # prometheus_client switches on the variable's presence, not its value: set but
            # empty, it would scatter counter_<pid>.db files into the working directory.
            raise ConfigError("PROMETHEUS_MULTIPROC_DIR", "",
                              "Set but empty; unset it or name a directory.")
        if multiproc_dir is None:
            logger.info("PROMETHEUS_MULTIPROC_DIR not set: probe metrics are not exported")
        self.multiproc_dir = multiproc_dir
        # In multiprocess mode the values live in files and the registry is unused; a private one
        # keeps repeated construction (tests) free of duplicate-registration errors.
        self.registry = registry = CollectorRegistry()
        self._probes = Counter(
            PREFIX + "probes", "Probes run by the monitor, by component and result (up/down).",
            ["component", "result"], registry=registry)
        self._failures = Counter(
            PREFIX + "probe_failures", "Failed probes by component and reason "
            "(connect_error, timeout, http_status, protocol_error).",
            ["component", "reason"], registry=registry)
        self._duration = Histogram(
            PREFIX + "probe_duration_seconds", "Probe duration, connect to last body byte.",
            ["component"], buckets=PROBE_BUCKETS_S, registry=registry)

    def probe_finished(self, result: ProbeResult) -> None:
        """Count one probe and its duration."""
        name = result.target.name
        self._probes.labels(name, "up" if result.up else "down").inc()
        self._duration.labels(name).observe(result.latency_s)
        if result.failure is not None:
            self._failures.labels(name, result.failure).inc()

    def close(self, pid: int) -> None:
        """Remove this process's live gauge files (none today; kept so adding one stays safe)."""
        if self.multiproc_dir is not None:
            multiprocess.mark_process_dead(pid, str(self.multiproc_dir))  # type: ignore[no-untyped-call]
