"""HTTP probes of the IDE, the single-user server and the gateway, each with its own deadline.

Decisions (documented for the README):
- A component is **up** when it answers its probe route with a 2xx or 3xx status within
  MONITOR_PROBE_TIMEOUT; any other status is **down** (reason "HTTP 503 from <url>"), as are a
  refused connection, a timeout and a broken response. Each failure has a `kind` used as the
  `reason` label of `waiide_hub_probe_failures_total`: connect_error, timeout, http_status,
  protocol_error.
- The IDE (code-server) answers `/healthz` with ``{"status": "alive"|"expired", "lastHeartbeat":
  ms}``. Both mean the server is up: "expired" only says no client has been active for a minute.
  The value is kept as `liveness`. A body that is not that JSON leaves the IDE **up** (it answered
  with a good status, which is what serving requests needs) with liveness "unknown" and a reason
  naming the problem, so a wrong MONITOR_WAIIDE_HEALTH_PATH is visible without paging anyone.
- Every probe opens a new connection (no keep-alive), so it measures connect as well and a pooled
  connection to a restarted server can never produce a false failure. The GET itself is
  `monitor.http_get` (asyncio streams, no HTTP client library: see its docstring for why).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from monitor.config import MonitorConfig
from monitor.errors import ProbeError, ProbeFailureKind
from monitor.http_get import http_get
from monitor.record import ComponentName, Liveness

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024
MAX_REASON_CHARS = 300
_IDE_STATES: frozenset[str] = frozenset(("alive", "expired"))


@dataclass(frozen=True, slots=True)
class ProbeTarget:
    """One component to probe. `url` is what the record shows; `socket` routes it over a unix socket."""

    name: ComponentName
    url: str
    request_url: str
    socket: Path | None = None
    ide_health: bool = False


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """The outcome of one probe. `failure` is None exactly when `up` is True."""

    target: ProbeTarget
    up: bool
    probed_at: float
    latency_s: float
    http_status: int | None = None
    failure: ProbeFailureKind | None = None
    reason: str | None = None
    liveness: Liveness | None = None


def targets_from_config(config: MonitorConfig) -> list[ProbeTarget]:
    """The probe targets of this stack: the IDE, the single-user server (full mode), the gateway."""
    if config.waiide_socket is not None:
        ide = ProbeTarget("waiide", config.waiide_url, f"http://localhost{config.waiide_health_path}",
                          socket=config.waiide_socket, ide_health=True)
    else:
        ide = ProbeTarget("waiide", config.waiide_url, config.waiide_url, ide_health=True)
    targets = [ide]
    if config.use_all_components:
        targets.append(ProbeTarget("singleuser", config.singleuser_url, config.singleuser_url))
    targets.append(ProbeTarget("gateway", config.gateway_url, config.gateway_url))
    return targets


def parse_ide_health(body: bytes) -> tuple[Liveness, str | None]:
    """code-server's liveness from its /healthz body, and a note when the body is not understood."""
    try:
        doc = json.loads(body)
    except ValueError:
        return "unknown", f"health body is not JSON: {body[:60]!r}"
    state = doc.get("status") if isinstance(doc, dict) else None
    if state in _IDE_STATES:
        return state, None  # `state` is Any from json; the membership test makes it a Liveness
    return "unknown", f"health body has no status alive/expired: {body[:60]!r}"


class Prober:
    """Runs all probes concurrently, each over a connection of its own."""

    def __init__(self, targets: Sequence[ProbeTarget], timeout_s: float) -> None:
        self.targets = list(targets)
        self.timeout_s = timeout_s

    async def start(self) -> None:
        """Nothing to open: every probe connects afresh (see the module docstring)."""

    async def close(self) -> None:
        """Nothing to close."""

    async def probe_all(self) -> list[ProbeResult]:
        """Probe every target at once; the round takes at most about `timeout_s`."""
        return list(await asyncio.gather(*(self.probe(t) for t in self.targets)))

    async def probe(self, target: ProbeTarget) -> ProbeResult:
        """Probe one target; never raises for a failed probe (the result says why)."""
        probed_at = time.time()
        started = time.monotonic()
        try:
            status, body = await self._fetch(target)
        except ProbeError as exc:
            return ProbeResult(target, False, probed_at, time.monotonic() - started,
                               failure=exc.kind, reason=_clip(exc.reason))
        latency_s = time.monotonic() - started
        if not 200 <= status < 400:
            return ProbeResult(target, False, probed_at, latency_s, http_status=status,
                               failure="http_status", reason=_clip(f"HTTP {status} from {target.url}"))
        liveness: Liveness | None = None
        note = None
        if target.ide_health:
            liveness, note = parse_ide_health(body)
        return ProbeResult(target, True, probed_at, latency_s, http_status=status,
                           reason=_clip(note) if note else None, liveness=liveness)

    async def _fetch(self, target: ProbeTarget) -> tuple[int, bytes]:
        """GET the target (monitor.http_get raises ProbeError for every failure)."""
        return await http_get(target.request_url, socket=target.socket, timeout_s=self.timeout_s,
                              max_body=MAX_BODY_BYTES, shown_url=target.url)


def _clip(text: str) -> str:
    return text if len(text) <= MAX_REASON_CHARS else text[:MAX_REASON_CHARS - 3] + "..."
