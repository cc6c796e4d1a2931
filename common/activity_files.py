"""The activity directory: how gateway workers and the supervisor share what counts as use.

Real use reaches whichever gateway worker the connection landed on, but the idle decision (and
the `/api/activity` answer, from any worker) needs all of it. So each worker publishes its own
view in a small JSON file, and readers merge them; the supervisor publishes its shutdown plan the
same way. Every file is replaced atomically (temp file + rename), so a reader sees a whole
document or the previous one.

    <dir>/worker-<pid>.json   one per gateway worker process (kept after it exits: what happened
                              there still happened)
        {"pid": 123, "updated_at": 1764100000.0,
         "last_activity": 1764099990.5 | null, "cause": "editor" | ... | null,
         "extension_seen_at": 1764099999.0 | null,
         "sessions": [{"session": "9f2c...", "reported_at": 1764100000.0, "until": 1764100090.0,
                       "busy": [{"kind": "terminal", "name": "sleep 300"}]}],
         "ignored": {"keepalive": 12, "rpc-poll": 110, ...}}   (over the last IGNORED_WINDOW_S)
    <dir>/plan.json           the supervisor's idle plan (absent when self-shutdown is off)
        {"idle_timeout_s": 3600, "warning_s": 300, "busy_counts": true,
         "warn_at": 1764103300.0 | null, "stops_at": 1764103600.0 | null,
         "updated_at": 1764100000.0}

Times are unix seconds. The directory reaches the gateway as WAIIDE_HUB_ACTIVITY_DIR.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ENV_VAR = "WAIIDE_HUB_ACTIVITY_DIR"
SECRET_ENV = "WAIIDE_ACTIVITY_SECRET"  # the IDE extension's per-start secret
URL_ENV = "WAIIDE_ACTIVITY_URL"  # where the IDE extension reports (the gateway, over loopback)
IDE_REPORT_PATH = "/api/activity/ide"
PLAN_FILE = "plan.json"
WORKER_GLOB = "worker-*.json"
IGNORED_WINDOW_S = 60.0


@dataclass(frozen=True, slots=True)
class BusyWork:
    """Something running that is not input: a terminal command, a task, a debug session."""

    kind: str
    name: str


@dataclass(frozen=True, slots=True)
class SessionBusy:
    """The busy work one workbench session (tab) last reported, and until when it holds.

    An empty `busy` is kept too (until it expires): a session's newest report wins across
    workers, so "nothing runs any more" must be able to override an older report elsewhere.
    """

    session: str
    reported_at: float
    until: float
    busy: tuple[BusyWork, ...]


@dataclass(frozen=True, slots=True)
class WorkerActivity:
    """One worker's published view."""

    pid: int
    updated_at: float
    last_activity: float | None = None
    cause: str | None = None
    extension_seen_at: float | None = None
    sessions: tuple[SessionBusy, ...] = ()
    ignored: Mapping[str, int] = field(default_factory=dict)

    def to_json(self) -> bytes:
        return json.dumps({
            "pid": self.pid, "updated_at": self.updated_at,
            "last_activity": self.last_activity, "cause": self.cause,
            "extension_seen_at": self.extension_seen_at,
            "sessions": [{"session": s.session, "reported_at": s.reported_at, "until": s.until,
                          "busy": [{"kind": b.kind, "name": b.name} for b in s.busy]}
                         for s in self.sessions],
            "ignored": dict(self.ignored),
        }).encode()

    @classmethod
    def from_json(cls, data: bytes) -> WorkerActivity:
        """Raises ValueError for anything that is not a worker document."""
        doc = json.loads(data)
        if not isinstance(doc, dict) or not isinstance(doc.get("pid"), int):
            raise ValueError("not a worker activity document")  # noqa: TRY004 - a bad file
        sessions = tuple(
            SessionBusy(str(s.get("session", "")), _num(s.get("reported_at")) or 0.0,
                        _num(s.get("until")) or 0.0,
                        tuple(BusyWork(str(b.get("kind", "")), str(b.get("name", "")))
                              for b in s.get("busy") or () if isinstance(b, dict)))
            for s in doc.get("sessions") or () if isinstance(s, dict))
        ignored = doc.get("ignored") or {}
        return cls(pid=doc["pid"], updated_at=_num(doc.get("updated_at")) or 0.0,
                   last_activity=_num(doc.get("last_activity")),
                   cause=doc.get("cause") if isinstance(doc.get("cause"), str) else None,
                   extension_seen_at=_num(doc.get("extension_seen_at")), sessions=sessions,
                   ignored={str(k): int(v) for k, v in ignored.items()
                            if isinstance(v, int) and not isinstance(v, bool)}
                   if isinstance(ignored, dict) else {})


@dataclass(frozen=True, slots=True)
class IdlePlan:
    """The supervisor's self-shutdown plan."""

    idle_timeout_s: float
    warning_s: float
    busy_counts: bool
    warn_at: float | None
    stops_at: float | None
    updated_at: float

    def to_json(self) -> bytes:
        return json.dumps({"idle_timeout_s": self.idle_timeout_s, "warning_s": self.warning_s,
                           "busy_counts": self.busy_counts, "warn_at": self.warn_at,
                           "stops_at": self.stops_at, "updated_at": self.updated_at}).encode()

    @classmethod
    def from_json(cls, data: bytes) -> IdlePlan:
        doc = json.loads(data)
        if not isinstance(doc, dict):
            raise ValueError("not an idle plan")  # noqa: TRY004 - a bad file, not a bug
        return cls(idle_timeout_s=_num(doc.get("idle_timeout_s")) or 0.0,
                   warning_s=_num(doc.get("warning_s")) or 0.0,
                   busy_counts=doc.get("busy_counts") is not False,
                   warn_at=_num(doc.get("warn_at")), stops_at=_num(doc.get("stops_at")),
                   updated_at=_num(doc.get("updated_at")) or 0.0)


@dataclass(frozen=True, slots=True)
class ActivitySummary:
    """All workers merged: the last real use, busy work still fresh, traffic ignored."""

    last_activity: float | None
    cause: str | None
    busy: tuple[BusyWork, ...]
    extension_seen_at: float | None
    ignored: Mapping[str, int]


def merge(workers: Iterable[WorkerActivity], now: float) -> ActivitySummary:
    """The newest use across workers; per session, the newest busy report if it has not
    expired; ignored sums."""
    last: float | None = None
    cause: str | None = None
    newest: dict[str, SessionBusy] = {}
    seen: float | None = None
    ignored: dict[str, int] = {}
    for w in workers:
        if w.last_activity is not None and (last is None or w.last_activity > last):
            last, cause = w.last_activity, w.cause
        for s in w.sessions:
            known = newest.get(s.session)
            if known is None or s.reported_at > known.reported_at:
                newest[s.session] = s
        if w.extension_seen_at is not None and (seen is None or w.extension_seen_at > seen):
            seen = w.extension_seen_at
        if now - w.updated_at <= IGNORED_WINDOW_S:
            for kind, count in w.ignored.items():
                ignored[kind] = ignored.get(kind, 0) + count
    busy: dict[BusyWork, None] = {}
    for s in newest.values():
        if s.until > now:
            busy.update(dict.fromkeys(s.busy))
    return ActivitySummary(last, cause, tuple(busy), seen, ignored)


def write_atomically(path: Path, data: bytes) -> None:
    """Replace `path` with `data` (temp file + rename). Raises OSError."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)
        raise


def read_workers(directory: Path) -> list[WorkerActivity]:
    """Every worker document that can be read (a half-gone or foreign file is skipped)."""
    found = []
    for path in sorted(directory.glob(WORKER_GLOB)):
        try:
            found.append(WorkerActivity.from_json(path.read_bytes()))
        except (OSError, ValueError, TypeError, AttributeError):
            continue
    return found


def read_plan(directory: Path) -> IdlePlan | None:
    try:
        return IdlePlan.from_json((directory / PLAN_FILE).read_bytes())
    except (OSError, ValueError, TypeError):
        return None


def default_activity_dir(uid: int, api_port: int) -> Path:
    """Where a gateway without a supervisor keeps the directory (like the status record)."""
    shm = Path("/dev/shm")
    base = shm if shm.is_dir() else Path(tempfile.gettempdir())
    return base / f"waiide-hub-{uid}-{api_port}.activity"


def _num(value: Any) -> float | None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    return float(value) if ok else None
