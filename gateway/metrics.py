"""The gateway's Prometheus metrics: cheap recording on the request path, one scrape for all.

Every gateway worker records into prometheus-client's multiprocess files (PROMETHEUS_MULTIPROC_DIR,
set by the launcher *before* Python starts, because prometheus_client reads it on import, and
emptied by it before the first start). `render()` builds a fresh registry per scrape and merges the
files of all workers and of the monitor; it globs and parses files, so call it in an executor.
Without PROMETHEUS_MULTIPROC_DIR (unit tests, a single process) the same API records into a
private in-process registry.

Series and their one owner:

gateway workers (multiprocess files)
  waiide_hub_http_requests_total{method,route_class,code}    counter, finished requests
  waiide_hub_http_request_duration_seconds{route_class}       histogram, start to last byte
  waiide_hub_http_received_bytes_total{route_class}           counter, request bodies
  waiide_hub_http_sent_bytes_total{route_class}               counter, response bodies
  waiide_hub_http_requests_in_flight{route_class}             gauge (livesum)
  waiide_hub_websocket_connections_total                      counter, opened
  waiide_hub_websocket_connections_open                       gauge (livesum)
  waiide_hub_websocket_messages_total{direction}              counter, in = from the client
  waiide_hub_upstream_errors_total{kind}                      counter, connect_error|timeout|reset
  waiide_hub_worker_requests_total{worker}                    counter, per worker index (0..N-1)
monitor (multiprocess files; see monitor/metrics.py)
  waiide_hub_probes_total, waiide_hub_probe_failures_total, waiide_hub_probe_duration_seconds
the scraping worker, computed per scrape (no files, so nothing lingers after a crash)
  waiide_hub_build_info{version}                              gauge, always 1
  waiide_hub_gateway_workers_up / _expected                   gauge, server workers serving/configured
  waiide_hub_status_up                                        1 when the record is valid and fresh
  waiide_hub_status_age_seconds                               age of the record
  waiide_hub_component_up{component}                          1 up; 0 down, unknown or stale
  waiide_hub_ide_alive                                        1 "alive", 0 "expired" (absent if unknown)
  waiide_hub_component_probe_latency_seconds{component}       last probe latency
  waiide_hub_component_last_success_timestamp_seconds{component}
  waiide_hub_component_uptime_seconds{component}
  waiide_hub_component_restarts_total{component}              from the supervisor
  waiide_hub_component_resident_memory_bytes{component}       RSS of the process tree
  waiide_hub_component_cpu_seconds_total{component}           user+system of the live tree
The per-component state series come from the status record at scrape time and only while it is
fresh (except component_up, which drops to 0), so a dead monitor is a visible 0, not a frozen 1.

Label values are closed sets: route_class api|proxy|websocket, method one of the standard HTTP
methods or OTHER, so a client cannot blow up the series count.
"""

from __future__ import annotations

import contextlib
import glob
import importlib.metadata
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Literal

from prometheus_client import (
    CONTENT_TYPE_PLAIN_0_0_4,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from common.prometheus_mode import multiprocess_active
from gateway.activity.collector import ActivityCollector
from gateway.errors import GatewayError, UpstreamErrorKind
from monitor.record import RecordReader, StatusView

PREFIX = "waiide_hub_"
RouteClass = Literal["api", "proxy", "websocket"]
Direction = Literal["in", "out"]
ROUTE_CLASSES: tuple[RouteClass, ...] = ("api", "proxy", "websocket")
DIRECTIONS: tuple[Direction, ...] = ("in", "out")
UPSTREAM_ERROR_KINDS: tuple[UpstreamErrorKind, ...] = ("connect_error", "timeout", "reset")
METHODS = frozenset(("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE"))
OTHER_METHOD = "OTHER"
# Proxied IDE requests range from sub-millisecond assets to minute-long streams.
DURATION_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                      10.0, 30.0, 60.0, 300.0)

# A sized file starts with its used-bytes counter (8 bytes); anything shorter is still being made.
_MIN_FILE_BYTES = 8

RequestToken = tuple[float, RouteClass]
"""Opaque: what `request_started` returns and `request_finished` takes (start time, class)."""


def gateway_version() -> str:
    """`gateway.__version__`, else the installed distribution's version, else "unknown"."""
    import gateway

    version = getattr(gateway, "__version__", None)
    if isinstance(version, str):
        return version
    try:
        return importlib.metadata.version("waiide-hub")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def mark_process_dead(pid: int, multiproc_dir: str | Path | None) -> None:
    """Drop a dead worker's live gauges (in-flight, open WebSockets); totals are kept.

    Call it for every worker that exits, crashed ones included (a SIGKILLed worker cannot call
    it itself). A no-op without a multiprocess directory.
    """
    if multiproc_dir is not None:
        multiprocess.mark_process_dead(pid, str(multiproc_dir))  # type: ignore[no-untyped-call]


class GatewayMetricsError(GatewayError):
    """The metrics cannot work as configured (see the message)."""


class GatewayMetrics:
    """One per gateway worker, created after the fork (in `before_server_start`).

    Recording methods are synchronous and cheap: each sample is a dict lookup plus
    prometheus-client's locked write into its mmap file. A request (`request_started` +
    `request_finished`) updates seven metrics (in flight up and down, the request counter, the
    worker counter, the duration histogram, bytes in and out); `bench/request_path_cost.py`
    measures it: about 12 µs in multiprocess mode, 2.6 µs without.
    """

    def __init__(self, *, multiproc_dir: str | Path | None = None,
                 status_reader: RecordReader | None = None, version: str | None = None,
                 activity_dir: Path | None = None,
                 worker: str = "0",
                 capacity: Callable[[], tuple[int, int] | None] | None = None,
                 ide_memory_limit: int | None = None) -> None:
        """
        Args:
            worker: this worker's index (Sanic's worker number, so a replaced worker continues
                its predecessor's series and the label stays bounded by GATEWAY_WORKERS).
            multiproc_dir: PROMETHEUS_MULTIPROC_DIR as the gateway config read it; None for
                single-process mode.
            status_reader: where the per-scrape status series come from (None: not exported).
            version: for build_info; default `gateway_version()`.
            capacity: (workers up, expected) for the gateway_workers gauges (gateway.workers).
            ide_memory_limit: the IDE's memory limit in bytes (WAIIDE_MEMORY_LIMIT, which the
                supervisor sets from the cgroup), exported for the "IDE near its memory limit"
                alert; None: not exported.

        Raises:
            GatewayMetricsError: `multiproc_dir` and prometheus_client's import-time mode
                disagree (samples would go nowhere, or into the working directory).
        """
        if multiproc_dir is not None and not multiprocess_active():
            raise GatewayMetricsError(
                f"PROMETHEUS_MULTIPROC_DIR={multiproc_dir} was not in the environment when "
                "prometheus_client was imported; set it before the process starts")
        if multiproc_dir is None and multiprocess_active():
            # prometheus_client switches on the variable's presence, not its value: set but
            # empty (or not passed on by the config), files would land in the working directory.
            raise GatewayMetricsError(
                "PROMETHEUS_MULTIPROC_DIR is in the environment but no directory was given; "
                "pass the configured directory, or unset the variable")
        self.multiproc_dir = None if multiproc_dir is None else str(multiproc_dir)
        self._status_reader = status_reader
        self._activity = (ActivityCollector(activity_dir, time.time())
                          if activity_dir is not None else None)
        self._capacity = capacity
        self._version = version if version is not None else gateway_version()
        self._registry = CollectorRegistry()  # single-process mode only; unused with files
        self._worker = worker
        self._ide_memory_limit = ide_memory_limit
        self._define()
        self._requests: dict[tuple[str, str, int], Counter] = {}

    def _define(self) -> None:
        reg = self._registry
        self._requests_total = Counter(
            PREFIX + "http_requests", "Finished HTTP requests by method, route class and status.",
            ["method", "route_class", "code"], registry=reg)
        duration = Histogram(
            PREFIX + "http_request_duration_seconds", "Request duration, start to last byte.",
            ["route_class"], buckets=DURATION_BUCKETS_S, registry=reg)
        received = Counter(PREFIX + "http_received_bytes", "Request body bytes received.",
                           ["route_class"], registry=reg)
        sent = Counter(PREFIX + "http_sent_bytes", "Response body bytes sent.",
                       ["route_class"], registry=reg)
        in_flight = Gauge(PREFIX + "http_requests_in_flight", "Requests being served.",
                          ["route_class"], multiprocess_mode="livesum", registry=reg)
        ws_messages = Counter(PREFIX + "websocket_messages", "WebSocket messages relayed; "
                              "in = from the client, out = to the client.", ["direction"],
                              registry=reg)
        upstream = Counter(PREFIX + "upstream_errors", "Failures talking to the IDE by kind.",
                           ["kind"], registry=reg)
        self._ws_opened = Counter(PREFIX + "websocket_connections", "WebSockets opened.",
                                  registry=reg)
        self._ws_open = Gauge(PREFIX + "websocket_connections_open", "WebSockets open now.",
                              multiprocess_mode="livesum", registry=reg)
        self._worker_requests = Counter(
            PREFIX + "worker_requests", "Finished requests per gateway worker (all classes).",
            ["worker"], registry=reg).labels(self._worker)
        # Pre-bound children: the request path never calls .labels() for these.
        self._duration = {rc: duration.labels(rc) for rc in ROUTE_CLASSES}
        self._received = {rc: received.labels(rc) for rc in ROUTE_CLASSES}
        self._sent = {rc: sent.labels(rc) for rc in ROUTE_CLASSES}
        self._in_flight = {rc: in_flight.labels(rc) for rc in ROUTE_CLASSES}
        self._ws_messages = {d: ws_messages.labels(d) for d in DIRECTIONS}
        self._upstream = {k: upstream.labels(k) for k in UPSTREAM_ERROR_KINDS}

    # ---- request path ------------------------------------------------------------------------

    def request_started(self, route_class: RouteClass) -> RequestToken:
        """Count a request in flight; pass the token to `request_finished` exactly once."""
        try:
            self._in_flight[route_class].inc()
        except KeyError:
            raise ValueError(f"unknown route class {route_class!r}") from None
        return (time.perf_counter(), route_class)

    def request_finished(self, token: RequestToken, method: str, route_class: RouteClass,
                         status: int, bytes_in: int, bytes_out: int) -> None:
        """Record a finished request (also a failed or cancelled one; `status` as sent)."""
        started, started_class = token
        elapsed = time.perf_counter() - started
        self._in_flight[started_class].dec()
        key = (method, route_class, status)
        counter = self._requests.get(key)
        if counter is None:
            counter = self._bind_request(method, route_class, status)
        counter.inc()
        self._worker_requests.inc()
        self._duration[route_class].observe(elapsed)
        if bytes_in:
            self._received[route_class].inc(bytes_in)
        if bytes_out:
            self._sent[route_class].inc(bytes_out)

    def _bind_request(self, method: str, route_class: RouteClass, status: int) -> Counter:
        if route_class not in self._duration:
            raise ValueError(f"unknown route class {route_class!r}")
        standard = method in METHODS
        child = self._requests_total.labels(method if standard else OTHER_METHOD, route_class,
                                            str(int(status)))
        # Only standard methods get a cache entry, so odd methods cannot grow the dict.
        if standard:
            self._requests[(method, route_class, status)] = child
        return child

    def websocket_opened(self) -> None:
        """A WebSocket was accepted (after the upstream handshake)."""
        self._ws_opened.inc()
        self._ws_open.inc()

    def websocket_closed(self) -> None:
        """A WebSocket opened with `websocket_opened` has closed."""
        self._ws_open.dec()

    def websocket_messages(self, direction: Direction, n: int = 1) -> None:
        """`n` messages relayed; "in" = from the client to the IDE, "out" = to the client."""
        self._ws_messages[direction].inc(n)

    def upstream_error(self, kind: UpstreamErrorKind) -> None:
        """A failure talking to the IDE: connect_error, timeout or reset."""
        self._upstream[kind].inc()

    # ---- scrape --------------------------------------------------------------------------------

    def render(self) -> tuple[bytes, str]:
        """The text exposition of everything, and its content type. Blocking: use an executor."""
        registry = CollectorRegistry(support_collectors_without_names=True)
        if self.multiproc_dir is not None:
            # prometheus_client's collector constructor is unannotated upstream.
            _SettledFilesCollector(registry, path=self.multiproc_dir)  # type: ignore[no-untyped-call]
        else:
            registry.register(_Forward(self._registry))
        registry.register(_BuildInfo(self._version, self._capacity, self._ide_memory_limit))
        if self._status_reader is not None:
            registry.register(StatusCollector(self._status_reader))
        if self._activity is not None:
            registry.register(self._activity)
        # All our names are legacy-safe, so the body is valid text format 0.0.4, the version
        # every Prometheus understands (the client's "latest" label, 1.0.0, only adds UTF-8 names).
        return generate_latest(registry), CONTENT_TYPE_PLAIN_0_0_4


class _SettledFilesCollector(multiprocess.MultiProcessCollector):
    """MultiProcessCollector that skips files a starting process has created but not sized yet.

    prometheus-client creates a process's file and only then grows it to its first size; a scrape
    that globs in between reads an empty file and fails as a whole (client_python#347 family).
    Such a file holds no samples yet, so leaving it out of this one scrape loses nothing.
    """

    def collect(self) -> Iterator[Metric]:
        files = []
        for path in glob.glob(os.path.join(self._path, "*.db")):
            with contextlib.suppress(OSError):  # removed by mark_process_dead meanwhile
                if os.path.getsize(path) >= _MIN_FILE_BYTES:
                    files.append(path)
        return self.merge(files, accumulate=True)  # type: ignore[no-any-return,no-untyped-call]


class _Forward(Collector):
    """Re-exports the private single-process registry inside a per-scrape registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._registry = registry

    def collect(self) -> Iterator[Metric]:
        yield from self._registry.collect()


class _BuildInfo(Collector):
    """The serving gateway itself: its build, its worker count, the IDE's memory limit."""

    def __init__(self, version: str,
                 capacity: Callable[[], tuple[int, int] | None] | None,
                 ide_memory_limit: int | None) -> None:
        self._version = version
        self._capacity = capacity
        self._ide_memory_limit = ide_memory_limit

    def collect(self) -> Iterator[Metric]:
        info = GaugeMetricFamily(PREFIX + "build_info", "Build of the serving gateway.",
                                 labels=["version"])
        info.add_metric([self._version], 1.0)
        yield info
        counts = self._capacity() if self._capacity is not None else None
        if counts is not None:
            yield _gauge("gateway_workers_up", "Gateway server workers serving now.", [],
                         [([], float(counts[0]))])
            yield _gauge("gateway_workers_expected", "Gateway server workers configured "
                         "(GATEWAY_WORKERS).", [], [([], float(counts[1]))])
        if self._ide_memory_limit is not None:
            yield _gauge("component_memory_limit_bytes", "Memory the component may use (the "
                         "container's limit or WAIIDE_MEMORY_LIMIT).", ["component"],
                         [(["waiide"], float(self._ide_memory_limit))])


class StatusCollector(Collector):
    """State series from the status record, read once per scrape in the scraping process."""

    def __init__(self, reader: RecordReader) -> None:
        self._reader = reader

    def collect(self) -> Iterator[Metric]:
        view = self._reader.read()
        yield _gauge("status_up", "1 when the status record is valid and fresh, else 0.",
                     [], [([], 1.0 if view.known else 0.0)])
        if view.written_at is not None:
            age = max(0.0, time.time() - view.written_at)
            yield _gauge("status_age_seconds", "Age of the status record.", [], [([], age)])
        yield from _component_families(view)


def _gauge(name: str, doc: str, labels: list[str],
           samples: list[tuple[list[str], float]]) -> GaugeMetricFamily:
    family = GaugeMetricFamily(PREFIX + name, doc, labels=labels)
    for label_values, value in samples:
        family.add_metric(label_values, value)
    return family


def _component_families(view: StatusView) -> Iterator[Metric]:
    record = view.record or view.last_record
    if record is None:
        return
    comps = record.components
    yield _gauge("component_up", "1 when the component answered its last probe and the record "
                 "is fresh, else 0.", ["component"],
                 [([c.name], 1.0 if view.known and c.state == "up" else 0.0) for c in comps])
    if not view.known:
        return  # the rest would be frozen values of a dead monitor
    ide = record.component("waiide")
    if ide is not None and ide.liveness in ("alive", "expired"):
        yield _gauge("ide_alive", "1 when the IDE reports alive, 0 when expired (idle).", [],
                     [([], 1.0 if ide.liveness == "alive" else 0.0)])
    per_component = (
        ("component_probe_latency_seconds", "Latency of the last probe.", "latency_s"),
        ("component_last_success_timestamp_seconds", "Unix time of the last good probe.",
         "last_success_at"),
        ("component_uptime_seconds", "Uptime of the component's process.", "uptime_s"),
        ("component_resident_memory_bytes", "RSS of the component's process tree.", "rss_bytes"),
    )
    for name, doc, field in per_component:
        samples = [([c.name], float(v)) for c in comps if (v := getattr(c, field)) is not None]
        if samples:
            yield _gauge(name, doc, ["component"], samples)
    for name, doc, field in (
        ("component_restarts", "Restarts of the component by the supervisor.", "restarts"),
        ("component_cpu_seconds", "CPU time (user+system) of the component's live process tree.",
         "cpu_seconds"),
    ):
        family = CounterMetricFamily(PREFIX + name, doc, labels=["component"])
        for comp in comps:
            value = getattr(comp, field)
            if value is not None:
                family.add_metric([comp.name], float(value))
        if family.samples:
            yield family
