"""The components file: how the supervisor tells the monitor the children's pids and restarts.

One writer (the supervisor), readers in other processes (the monitor). Format: one JSON document,
replaced atomically (write to a temp file in the same directory, then rename) on every start,
exit, restart and stop, so a reader sees the old or the new document, never half of one:

    {"components": {
        "waiide":     {"pid": 123, "started_at": 1764100000.5, "restarts": 0,
                       "state": "running", "flapping": false},
        "singleuser": {...}, "gateway": {...}, "monitor": {...}},
     "updated_at": 1764100001.2}

`pid` and `started_at` (unix time, float) are null while a child is not running; `state` is the
supervisor's child state (pending, starting, running, backoff, flapping, stopping, stopped). The
path reaches the children as MONITOR_COMPONENTS_FILE. Readers drop malformed entries and fields
instead of failing: a half-known child is better than none.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ENV_VAR = "MONITOR_COMPONENTS_FILE"


@dataclass(frozen=True, slots=True)
class ChildEntry:
    """One supervised child as the file describes it; None means not known (or not running)."""

    name: str
    pid: int | None = None
    started_at: float | None = None
    restarts: int | None = None
    state: str | None = None
    flapping: bool = False


def write_components(path: Path, entries: Sequence[ChildEntry], now: float) -> None:
    """Replace the document atomically.

    Raises:
        OSError: the file could not be written (the temp file is removed).
    """
    document = {
        "components": {e.name: {"pid": e.pid, "started_at": e.started_at, "restarts": e.restarts,
                                "state": e.state, "flapping": e.flapping} for e in entries},
        "updated_at": now,
    }
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(json.dumps(document), encoding="utf-8")
        os.replace(tmp, path)  # atomic on POSIX within one directory
    except OSError:
        tmp.unlink(missing_ok=True)
        raise


def read_components(path: Path) -> dict[str, ChildEntry]:
    """The entries of the file at `path`.

    Raises:
        OSError: the file cannot be read.
        ValueError: it is not a components document.
    """
    return parse_components(json.loads(path.read_bytes()))


def parse_components(doc: Any) -> dict[str, ChildEntry]:
    """The entries of a parsed document; malformed entries or fields are dropped.

    Raises:
        ValueError: the document is not ``{"components": {...}}``.
    """
    if not isinstance(doc, dict) or not isinstance(doc.get("components"), dict):
        raise ValueError('expected {"components": {...}}')  # noqa: TRY004 - a bad file, not a bug
    entries: dict[str, ChildEntry] = {}
    for name, item in doc["components"].items():
        if not isinstance(item, dict):
            continue
        pid, restarts = _number(item.get("pid")), _number(item.get("restarts"))
        state = item.get("state")
        entries[str(name)] = ChildEntry(
            name=str(name),
            pid=int(pid) if pid is not None and pid > 0 else None,
            started_at=_number(item.get("started_at")),
            restarts=int(restarts) if restarts is not None and restarts >= 0 else None,
            state=state if isinstance(state, str) else None,
            flapping=item.get("flapping") is True)
    return entries


def _number(value: Any) -> float | None:
    is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
    return float(value) if is_number else None
