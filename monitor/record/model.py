"""What the record holds: `StatusRecord` (written by the monitor) and `StatusView` (what a reader
saw: a trusted record, or "unknown" with the reason). The JSON payload format is `to_json`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

from monitor.record.errors import RecordCorrupt

ComponentName = Literal["waiide", "singleuser", "gateway", "monitor"]
ComponentState = Literal["up", "down", "unknown"]
Liveness = Literal["alive", "expired", "unknown"]
OverallState = Literal["healthy", "degraded", "unhealthy"]
ViewState = Literal["healthy", "degraded", "unhealthy", "unknown"]

COMPONENT_NAMES: tuple[ComponentName, ...] = ("waiide", "singleuser", "gateway", "monitor")
_COMPONENT_STATES = frozenset(("up", "down", "unknown"))
_LIVENESS = frozenset(("alive", "expired", "unknown"))
_OVERALL = frozenset(("healthy", "degraded", "unhealthy"))


@dataclass(frozen=True, slots=True)
class ComponentStatus:
    """One component as the monitor last saw it. Times are unix seconds; None means not known.

    `reason` says why the state is not plain "up" (or carries a note, e.g. an unparseable IDE
    health body). `liveness` is the IDE's own report (code-server /healthz) and None for the
    other components. Process fields come from the supervisor's pid file plus psutil.
    """

    name: str
    state: ComponentState
    reason: str | None = None
    url: str | None = None
    http_status: int | None = None
    latency_s: float | None = None
    last_probe_at: float | None = None
    last_success_at: float | None = None
    liveness: Liveness | None = None
    pid: int | None = None
    pid_alive: bool | None = None
    uptime_s: float | None = None
    restarts: int | None = None
    rss_bytes: int | None = None
    cpu_percent: float | None = None
    cpu_seconds: float | None = None


_FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "reason": (str,), "url": (str,), "http_status": (int,), "latency_s": (float, int),
    "last_probe_at": (float, int), "last_success_at": (float, int), "pid": (int,),
    "pid_alive": (bool,), "uptime_s": (float, int), "restarts": (int,), "rss_bytes": (int,),
    "cpu_percent": (float, int), "cpu_seconds": (float, int),
}


@dataclass(frozen=True, slots=True)
class StatusRecord:
    """What the monitor publishes each tick: the overall state and every probed component.

    The write time, interval and writer pid travel in the header, not here (see StatusView).
    """

    overall: OverallState
    components: tuple[ComponentStatus, ...]

    def component(self, name: str) -> ComponentStatus | None:
        """The component called `name`, or None when it is not part of this stack."""
        for comp in self.components:
            if comp.name == name:
                return comp
        return None

    def to_json(self) -> bytes:
        """The compact JSON payload (None fields are left out to save space)."""
        comps = []
        for comp in self.components:
            item: dict[str, Any] = {"name": comp.name, "state": comp.state}
            for field in _FIELD_TYPES:
                value = getattr(comp, field)
                if value is not None:
                    item[field] = value
            if comp.liveness is not None:
                item["liveness"] = comp.liveness
            comps.append(item)
        doc = {"overall": self.overall, "components": comps}
        return json.dumps(doc, separators=(",", ":"), allow_nan=False).encode()

    @classmethod
    def from_json(cls, payload: bytes) -> StatusRecord:
        """Decode and validate a payload written by `to_json`.

        Raises:
            RecordCorrupt: not JSON, or a field has the wrong type or value.
        """
        try:
            doc = json.loads(payload)
            overall = doc["overall"]
            comps = tuple(_component_from_json(item) for item in doc["components"])
        except (ValueError, KeyError, TypeError) as exc:
            raise RecordCorrupt(f"bad payload ({exc.__class__.__name__}: {exc})") from exc
        if overall not in _OVERALL:
            raise RecordCorrupt(f"bad payload (overall state {overall!r})")
        return cls(overall=overall, components=comps)


def _component_from_json(item: dict[str, Any]) -> ComponentStatus:
    name, state = item["name"], item["state"]
    if not isinstance(name, str) or state not in _COMPONENT_STATES:
        raise ValueError(f"component {name!r} has state {state!r}")
    fields: dict[str, Any] = {}
    for field, types in _FIELD_TYPES.items():
        value = item.get(field)
        if value is None:
            continue
        # bool is an int subclass: keep it out of the numeric fields and vice versa.
        valid = isinstance(value, types) and not (isinstance(value, bool) and bool not in types)
        if not valid:
            raise ValueError(f"component {name!r} field {field!r} has value {value!r}")
        fields[field] = float(value) if float in types else value
    liveness = item.get("liveness")
    if liveness is not None and liveness not in _LIVENESS:
        raise ValueError(f"component {name!r} has liveness {liveness!r}")
    return ComponentStatus(name=name, state=state, liveness=liveness, **fields)


@dataclass(frozen=True, slots=True)
class StatusView:
    """What a reader saw: a trusted record, or "unknown" with the reason.

    `record` is set only when the record is valid and fresh (state is then the record's overall
    state). When the record is stale, `record` is None and `last_record` keeps the last good one
    for display only (last probe times, pids): never decide health from it.
    `written_at` (unix time) and `interval_s` describe the record the view was built from.
    """

    state: ViewState
    reason: str | None = None
    record: StatusRecord | None = None
    last_record: StatusRecord | None = None
    written_at: float | None = None
    interval_s: float | None = None
    seq: int = 0
    writer_pid: int | None = None

    @property
    def known(self) -> bool:
        """True when `record` is present, valid and fresh."""
        return self.record is not None


def unknown_view(reason: str, **fields: Any) -> StatusView:
    return StatusView(state="unknown", reason=reason, **fields)
