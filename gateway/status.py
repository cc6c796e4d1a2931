"""The bodies of `GET /api/status` and `GET /api/services`, from a status record view.

`status_response` and `services_response` are pure functions: the caller reads the view
(`RecordReader.read()`, no I/O) and passes the wall clock; nothing here touches the network, a
lock or a file. Both return ``(http_status, body)``. `WorkerStatus` holds a worker's reader.

`GET /api/status` — 200 when the IDE (waiide) is up in a valid, fresh record; 503 otherwise,
unknown included. JSON either way, for JupyterHub, Docker HEALTHCHECK and Kubernetes probes:

    status          "healthy" (all up) | "degraded" (IDE up, another component down) |
                    "unhealthy" (IDE down) | "unknown" (record missing, corrupt, closed or stale)
    healthy         true exactly when the HTTP status is 200
    reason          why it is not "healthy": the record's problem ("record is stale (age 17.2s >
                    3 intervals)", "no record yet ...", "corrupt: bad magic ...", "monitor
                    stopped ...") or the failing components' reasons; null when healthy
    checked_at      unix time at which the monitor wrote the record; null without a record
    age_s           seconds since checked_at; null without a record
    interval_s      the monitor's probe interval in seconds; null without a record
    components      object keyed by component name (waiide, singleuser in full mode, gateway,
                    monitor); empty without a record. Each:
        state             "up" | "down" | "unknown" (every component is unknown when the record
                          is stale; last_probe_at and age still show the last known probe)
        reason            why not up (e.g. "no answer within 2s", "HTTP 503 from ..."), or a note
                          while up (e.g. an IDE health body that is not code-server's JSON); null
        last_probe_at     unix time of the component's last probe; null if never probed
        last_probe_age_s  seconds since last_probe_at
        latency_s         duration of the last probe in seconds (connect to last byte)
        http_status       status of the last probe's answer; null when there was none
        liveness          waiide only: "alive" | "expired" (up, but no client for a minute) |
                          "unknown" (body not understood) — from code-server's /healthz

`GET /api/services` — always 200 (it is an inventory, not a health check); the same top-level
status, healthy, reason, checked_at, age_s and interval_s, plus

    services        object keyed by component name. Each: url (what the monitor probes;
                    "unix:<socket>:<path>" for a unix socket), state, reason, pid (null when
                    the supervisor did not say), pid_alive, uptime_s, restarts (by the
                    supervisor), rss_bytes and cpu_percent (whole process tree), last_probe_at,
                    last_probe_age_s, last_success_at, latency_s, http_status, liveness (waiide)

Process fields are as of checked_at and null when unknown.

Without credentials both routes answer the public view (`public_view`): what a health check
needs and nothing about whose server it is or where things run — status, healthy, reason,
checked_at, age_s and per component only state and reason, with addresses and paths in reasons
replaced by "<internal>" ("cannot connect to <internal>: Connection refused").
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from monitor.record import ComponentStatus, RecordReader, StatusRecord, StatusView

IDE = "waiide"
HTTP_OK = 200
HTTP_UNAVAILABLE = 503

_PUBLIC_TOP = ("status", "healthy", "reason", "checked_at", "age_s")
_PUBLIC_COMPONENT = ("state", "reason")
# URLs, unix:<path>, host:port and file paths in reasons (monitor.probes writes "from <url>",
# the record reader "no record yet at <path>").
_ADDRESS = re.compile(r"(?:[a-z][a-z0-9+.-]*://|unix:)\S+|\b\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?\b"
                      r"|\[[0-9a-fA-F:]+\](?::\d+)?|(?<!\S)/\S+", re.IGNORECASE)

_SERVICE_FIELDS = ("pid", "pid_alive", "uptime_s", "restarts", "rss_bytes", "cpu_percent",
                   "last_success_at")


def is_healthy(view: StatusView) -> bool:
    """True when the record is valid and fresh and the IDE answered its last probe."""
    if view.record is None:
        return False
    ide = view.record.component(IDE)
    return ide is not None and ide.state == "up"


def status_response(view: StatusView, now: float) -> tuple[int, dict[str, Any]]:
    """`GET /api/status`: (200 or 503, body). `now` is `time.time()`."""
    healthy = is_healthy(view)
    record = _shown_record(view)
    components = {} if record is None else {
        c.name: _probe_fields(c, view.known, now) for c in record.components}
    body = _top(view, healthy, now)
    body["components"] = components
    return (HTTP_OK if healthy else HTTP_UNAVAILABLE), body


def services_response(view: StatusView, now: float) -> tuple[int, dict[str, Any]]:
    """`GET /api/services`: (200, body) with each component's process facts."""
    record = _shown_record(view)
    services: dict[str, Any] = {}
    for comp in () if record is None else record.components:
        item = _probe_fields(comp, view.known, now)
        item["url"] = comp.url
        for field in _SERVICE_FIELDS:
            item[field] = getattr(comp, field)
        services[comp.name] = item
    body = _top(view, is_healthy(view), now)
    body["services"] = services
    return HTTP_OK, body


def public_reason(reason: str | None) -> str | None:
    """`reason` with internal addresses replaced by "<internal>"."""
    return None if reason is None else _ADDRESS.sub("<internal>", reason)


def public_view(body: dict[str, Any], key: str) -> dict[str, Any]:
    """The anonymous view of a status (`key`="components") or services (`key`="services") body."""
    view = {name: body[name] for name in _PUBLIC_TOP if name in body}
    view["reason"] = public_reason(view.get("reason"))
    view[key] = {name: {"state": item["state"], "reason": public_reason(item["reason"])}
                 for name, item in body.get(key, {}).items()}
    return view


def _shown_record(view: StatusView) -> StatusRecord | None:
    # A stale record is still shown (every state "unknown") so operators see the last probe.
    return view.record if view.record is not None else view.last_record


def _top(view: StatusView, healthy: bool, now: float) -> dict[str, Any]:
    return {
        "status": view.state,
        "healthy": healthy,
        "reason": _reason(view),
        "checked_at": view.written_at,
        "age_s": None if view.written_at is None else _age(view.written_at, now),
        "interval_s": view.interval_s,
    }


def _reason(view: StatusView) -> str | None:
    if view.record is None:
        return view.reason or "status unknown"
    failing = [f"{c.name} {c.state}: {c.reason or 'no reason given'}"
               for c in view.record.components if c.state != "up"]
    return "; ".join(failing) or None


def _probe_fields(comp: ComponentStatus, known: bool, now: float) -> dict[str, Any]:
    item: dict[str, Any] = {
        "state": comp.state if known else "unknown",
        "reason": comp.reason,
        "last_probe_at": comp.last_probe_at,
        "last_probe_age_s": None if comp.last_probe_at is None else _age(comp.last_probe_at, now),
        "latency_s": comp.latency_s,
        "http_status": comp.http_status,
    }
    if comp.name == IDE:
        item["liveness"] = comp.liveness if known else "unknown"
    return item


def _age(then: float, now: float) -> float:
    return round(max(0.0, now - then), 3)


def with_capacity(body: dict[str, Any], up: int, expected: int) -> dict[str, Any]:
    """Add the gateway's worker count; a short gateway turns "healthy" into "degraded".

    Still 200 (WAIIDE is served), but the reason says what is missing, so a dashboard or an
    operator sees lost capacity instead of a healthy gateway at half strength.
    """
    body["gateway_workers"] = {"up": up, "expected": expected}
    if up < expected:
        note = f"gateway: {up} of {expected} workers up (a worker died and is not back yet)"
        if body["status"] == "healthy":
            body["status"] = "degraded"
        body["reason"] = f"{body['reason']}; {note}" if body["reason"] else note
    return body


class WorkerStatus:
    """/api/status and /api/services for one worker, from its own reader of the record.

    The reader maps the record once per worker (in `start`, in the worker's process) and each
    request reads it with no lock, no syscall and no I/O.

    Args:
        capacity: (workers up, expected), or None when not known (see gateway.workers).
    """

    def __init__(self, path: str,
                 capacity: Callable[[], tuple[int, int] | None] | None = None) -> None:
        self._path = Path(path)
        self._capacity = capacity
        self.reader: RecordReader | None = None

    def start(self) -> None:
        self.reader = RecordReader(self._path)

    def stop(self) -> None:
        if self.reader is not None:
            self.reader.close()

    async def status(self) -> tuple[int, dict[str, Any]]:
        assert self.reader is not None
        code, body = status_response(self.reader.read(), time.time())
        return code, self._with_capacity(body)

    async def services(self) -> dict[str, Any]:
        assert self.reader is not None
        return self._with_capacity(services_response(self.reader.read(), time.time())[1])

    def _with_capacity(self, body: dict[str, Any]) -> dict[str, Any]:
        counts = self._capacity() if self._capacity is not None else None
        return body if counts is None else with_capacity(body, *counts)
