"""The monitor's loop: probe, sample processes, publish the record, count metrics, repeat.

Phases: `startup()` (open the record and the HTTP sessions), `main_loop()` (one tick every
`interval_s` on the monotonic clock, a tick never outlives its probe deadline), `shutdown()`
(mark the record closed and unlink it, close sessions). The overall state written to the record:

- healthy: every probed component is up;
- degraded: the IDE is up, another component is down;
- unhealthy: the IDE is down.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Iterable
from dataclasses import replace

from common.components_file import ChildEntry
from monitor.config import MonitorConfig
from monitor.metrics import MonitorMetrics
from monitor.probes import Prober, ProbeResult, ProbeTarget
from monitor.processes import ProcessSampler
from monitor.record import (
    ComponentStatus,
    OverallState,
    RecordError,
    RecordTooLarge,
    RecordWriter,
    StatusRecord,
)

logger = logging.getLogger(__name__)

IDE_COMPONENT = "waiide"
MONITOR_COMPONENT = "monitor"


def overall_state(components: Iterable[ComponentStatus]) -> OverallState:
    """Healthy when all are up, degraded when only non-IDE components are down, else unhealthy."""
    comps = list(components)
    ide = next((c for c in comps if c.name == IDE_COMPONENT), None)
    if ide is None or ide.state != "up":
        return "unhealthy"
    return "healthy" if all(c.state == "up" for c in comps) else "degraded"


class Monitor:
    """Owns the record writer, the prober, the process sampler and the metrics of one monitor."""

    def __init__(self, config: MonitorConfig, writer: RecordWriter, prober: Prober,
                 sampler: ProcessSampler, metrics: MonitorMetrics) -> None:
        self.config = config
        self.writer = writer
        self.prober = prober
        self.sampler = sampler
        self.metrics = metrics
        self._last_success: dict[str, float] = {}
        self._last_state: dict[str, str] = {}
        self._started_at = time.time()

    async def startup(self) -> None:
        """Open the HTTP sessions (the writer is opened by the caller, before signals)."""
        await self.prober.start()
        logger.info("monitor [%d] probing %s every %.1fs (deadline %.1fs); record %s",
                    os.getpid(), ", ".join(t.url for t in self.prober.targets),
                    self.config.interval_s, self.config.probe_timeout_s, self.writer.path)

    async def main_loop(self, should_exit: asyncio.Event) -> None:
        """Tick until `should_exit` is set; a tick in progress is cancelled at once."""
        next_tick = time.monotonic()
        while not should_exit.is_set():
            tick = asyncio.ensure_future(self.tick())
            stop = asyncio.ensure_future(should_exit.wait())
            await asyncio.wait({tick, stop}, return_when=asyncio.FIRST_COMPLETED)
            stop.cancel()
            if not tick.done():
                tick.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await tick
                return
            if tick.exception() is not None:
                # A bug in one round must not kill the monitor: the record simply goes stale
                # (and /api/status says so) while the traceback is in the log.
                logger.error("probe round failed", exc_info=tick.exception())
            next_tick += self.config.interval_s
            now = time.monotonic()
            next_tick = max(next_tick, now)  # a slow host skipped ticks: do not burst to catch up
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(should_exit.wait(), next_tick - now)

    async def shutdown(self) -> None:
        """Close the sessions, mark the record closed and unlink it."""
        await self.prober.close()
        self.writer.close()
        self.metrics.close(os.getpid())
        logger.info("monitor [%d] stopped; record %s removed", os.getpid(), self.writer.path)

    async def tick(self) -> StatusRecord:
        """One round: probes (concurrent, bounded), process samples, record, metrics."""
        results = await self.prober.probe_all()
        supervised = self.sampler.read_components()
        now = time.time()
        components = [self._component(r, supervised.get(r.target.name), now) for r in results]
        components.append(self._self_component(supervised.get(MONITOR_COMPONENT), now))
        self.sampler.forget_dead()
        record = StatusRecord(overall=overall_state(components), components=tuple(components))
        self._relink()
        try:
            self.writer.write(record)
        except RecordTooLarge:
            logger.exception("status record too large; writing it without reasons")
            self.writer.write(_without_reasons(record))
        for result in results:
            self.metrics.probe_finished(result)
        self._log_transitions(components)
        return record

    def _relink(self) -> None:
        """Re-create the record if it was deleted (RemoveIPC at logout, a cleanup script)."""
        try:
            if self.writer.relink():
                logger.warning("status record %s was deleted or replaced; re-created it",
                               self.writer.path)
        except (RecordError, OSError) as exc:
            logger.error("status record %s was deleted or replaced and cannot be re-created: %s",
                         self.writer.path, exc)

    def _component(self, result: ProbeResult, proc: ChildEntry | None,
                   now: float) -> ComponentStatus:
        target: ProbeTarget = result.target
        if result.up:
            self._last_success[target.name] = result.probed_at
        comp = ComponentStatus(
            name=target.name, state="up" if result.up else "down", reason=result.reason,
            url=target.url, http_status=result.http_status, latency_s=round(result.latency_s, 6),
            last_probe_at=result.probed_at, last_success_at=self._last_success.get(target.name),
            liveness=result.liveness)
        comp = self._with_process(comp, proc, now)
        if not result.up:
            # Say what the supervisor knows: a dead pid or a child in backoff explains a failure.
            if comp.pid_alive is False:
                comp = replace(comp, reason=f"{comp.reason}; pid {comp.pid} is not running")
            if proc is not None and proc.state not in (None, "running"):
                comp = replace(comp, reason=f"{comp.reason}; supervisor: {proc.state}")
        return comp

    def _self_component(self, proc: ChildEntry | None, now: float) -> ComponentStatus:
        own = ChildEntry(name=MONITOR_COMPONENT, pid=os.getpid(), started_at=self._started_at,
                                restarts=proc.restarts if proc else None)
        comp = ComponentStatus(name=MONITOR_COMPONENT, state="up", last_probe_at=now,
                               last_success_at=now)
        return self._with_process(comp, own, now)

    def _with_process(self, comp: ComponentStatus, proc: ChildEntry | None,
                      now: float) -> ComponentStatus:
        if proc is None:
            return comp
        if proc.pid is None:
            return replace(comp, restarts=proc.restarts)
        sample = self.sampler.sample(proc.pid, proc.started_at, now)
        return replace(comp, restarts=proc.restarts, pid=sample.pid, pid_alive=sample.alive,
                       uptime_s=sample.uptime_s, rss_bytes=sample.rss_bytes,
                       cpu_percent=sample.cpu_percent, cpu_seconds=sample.cpu_seconds)

    def _log_transitions(self, components: Iterable[ComponentStatus]) -> None:
        for comp in components:
            previous = self._last_state.get(comp.name)
            if previous != comp.state:
                log = logger.info if comp.state == "up" else logger.warning
                log("component %s: %s -> %s (%s)", comp.name, previous or "unknown", comp.state,
                    comp.reason or "ok")
                self._last_state[comp.name] = comp.state



def _without_reasons(record: StatusRecord) -> StatusRecord:
    comps = tuple(replace(c, reason=None) for c in record.components)
    return StatusRecord(overall=record.overall, components=comps)
