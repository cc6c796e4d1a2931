"""`/api/activity`, and the two endpoints the IDE extension talks to.

    GET  /api/activity          (the server's credentials, like /api/services) what counts now:
                                last real use and its cause, busy work, traffic ignored over the
                                last minute by kind, and the self-shutdown plan when it is on
    POST /api/activity/ide      (the extension, with the per-start secret) a report; 204
    GET  /api/activity/ide/notice  (the extension, with the secret) the warning to show before
                                the server stops itself: 204 (none) or 200 {"id", "stops_at",
                                "message"}

The extension's side and every field are `ide-extension/waiide-activity/CONTRACT.md`. The secret
comes in `X-WAIIDE-Activity-Secret`; the supervisor generates it per start and gives it to the
IDE's environment (WAIIDE_ACTIVITY_SECRET) and to the gateway. The extension connects over
loopback only, so other peers are refused. Its own requests are never use: only what it reports
is.
"""

from __future__ import annotations

import hmac
import json
import math
import time
from pathlib import Path
from typing import Any

from sanic.request import Request
from sanic.response import HTTPResponse

from common.activity_files import BusyWork, IdlePlan, merge, read_plan, read_workers
from common.defaults import is_loopback
from gateway.activity.hub import isoformat
from gateway.activity.state import ActivityState
from gateway.pages import NO_STORE, error_response, json_body

SECRET_HEADER = "x-waiide-activity-secret"
_MAX_REPORT_BYTES = 64 * 1024
_MAX_BUSY = 64
_DEFAULT_BUSY_TTL_S = 90.0
_MAX_BUSY_TTL_S = 3 * 3600.0
# Causes the extension may report; anything else is refused (400), so a typo cannot pass as use.
CAUSES = frozenset({"editor", "save", "open", "terminal-input", "task", "debug", "focus",
                    "input", "keep-working"})


def _json(payload: Any, status: int = 200) -> HTTPResponse:
    return HTTPResponse(json_body(payload), status=status, content_type="application/json",
                        headers=NO_STORE)


def _iso(ts: float | None) -> str | None:
    return None if ts is None else isoformat(ts)


class ActivityRoutes:
    """The activity endpoints of one worker."""

    def __init__(self, state: ActivityState, directory: Path | None, secret: str) -> None:
        self._state = state
        self._directory = directory
        self._secret = secret.encode()

    def _summary_sources(self, now: float) -> tuple[Any, IdlePlan | None]:
        workers = read_workers(self._directory) if self._directory is not None else []
        own = self._state.snapshot(now)
        # This worker's file may lag by up to a second: its live view replaces it.
        workers = [w for w in workers if w.pid != own.pid] + [own]
        plan = read_plan(self._directory) if self._directory is not None else None
        return merge(workers, now), plan

    async def overview(self, request: Request) -> HTTPResponse:
        """GET /api/activity."""
        now = time.time()
        summary, plan = self._summary_sources(now)
        last = summary.last_activity
        body: dict[str, Any] = {
            "last_activity": _iso(last),
            "cause": summary.cause,
            "idle_s": None if last is None else round(max(0.0, now - last), 1),
            "busy": bool(summary.busy),
            "busy_work": [{"kind": b.kind, "name": b.name} for b in summary.busy],
            "ignored_last_60s": dict(sorted(summary.ignored.items())),
            "extension": {"seen": summary.extension_seen_at is not None,
                          "last_seen_at": _iso(summary.extension_seen_at)},
            "self_shutdown": None if plan is None else {
                "idle_timeout_s": plan.idle_timeout_s, "warning_s": plan.warning_s,
                "busy_counts": plan.busy_counts, "warn_at": _iso(plan.warn_at),
                "stops_at": _iso(plan.stops_at)},
        }
        return _json(body)

    def _trusted(self, request: Request) -> bool:
        given = request.headers.get(SECRET_HEADER, "")
        return (bool(self._secret) and hmac.compare_digest(given.encode(), self._secret)
                and is_loopback(request.ip))

    async def ide_report(self, request: Request) -> HTTPResponse:
        """POST /api/activity/ide."""
        if not self._trusted(request):
            return error_response(request, 403, "Only the IDE extension reports activity.")
        raw = request.body or b""
        if len(raw) > _MAX_REPORT_BYTES:
            return error_response(request, 413, "The report is too large.")
        try:
            report = _parse_report(raw)
        except (ValueError, AttributeError, TypeError, KeyError) as exc:
            return error_response(request, 400, f"Not a report ({exc}); see CONTRACT.md.")
        now = time.time()
        session, causes, at, busy, ttl_s = report
        self._state.extension_report(session, busy, ttl_s, now)
        if causes:
            # `at` may lie in the past (a retried report, an `input` lower bound), never ahead.
            when = now if at is None else min(at, now)
            self._state.use(causes[-1], when)
        return HTTPResponse(status=204, headers=NO_STORE)

    async def ide_notice(self, request: Request) -> HTTPResponse:
        """GET /api/activity/ide/notice."""
        if not self._trusted(request):
            return error_response(request, 403, "Only the IDE extension reads notices.")
        now = time.time()
        self._state.extension_contact(now)
        plan = read_plan(self._directory) if self._directory is not None else None
        last = self._state.last_activity
        if (plan is None or plan.warn_at is None or plan.stops_at is None or now < plan.warn_at
                or (last is not None and last > plan.updated_at)):  # used since: withdrawn
            return HTTPResponse(status=204, headers=NO_STORE)
        minutes = max(1, math.ceil((plan.stops_at - now) / 60))
        return _json({
            "id": f"idle-{plan.stops_at:.0f}",  # the stop time names this idle period
            "stops_at": plan.stops_at,
            "message": (f"This server stops in {minutes} minute{'s' if minutes != 1 else ''} "
                        "because nobody used it.")})


def _parse_report(raw: bytes) -> tuple[str, list[str], float | None, tuple[BusyWork, ...],
                                        float]:
    """(session, causes oldest first, at, busy work, busy ttl) of a report; raises on bad input."""
    doc = json.loads(raw or b"{}")
    if not isinstance(doc, dict):
        raise TypeError("not a JSON object")
    causes = [c for c in (doc.get("causes") or []) if c is not None]
    if doc.get("cause") is not None:
        causes = [c for c in causes if c != doc["cause"]] + [doc["cause"]]
    unknown = [c for c in causes if c not in CAUSES]
    if unknown:
        raise ValueError(f"unknown cause {unknown[0]!r}")
    at = doc.get("at")
    if at is not None and (isinstance(at, bool) or not isinstance(at, (int, float))):
        raise TypeError("'at' is not a number")
    busy = tuple(BusyWork(str(b["kind"])[:32], str(b.get("name", ""))[:200])
                 for b in (doc.get("busy") or ())[:_MAX_BUSY])
    ttl = doc.get("busy_ttl_s", _DEFAULT_BUSY_TTL_S)
    if isinstance(ttl, bool) or not isinstance(ttl, (int, float)) or ttl <= 0:
        raise TypeError("'busy_ttl_s' is not a positive number")
    return (str(doc.get("session") or "-")[:64], causes, None if at is None else float(at), busy,
            min(float(ttl), _MAX_BUSY_TTL_S))
