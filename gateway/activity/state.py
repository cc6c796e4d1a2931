"""`ActivityState`: one gateway worker's record of use, published for the others.

Recording is synchronous and cheap (it runs on the request path): an attribute store and, for
ignored traffic, a counter increment. Publishing (a small JSON file in the activity directory,
see `common.activity_files`) happens at most every `PUBLISH_EVERY_S`, off the request path.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections import Counter, deque
from pathlib import Path

from common.activity_files import (
    IGNORED_WINDOW_S,
    BusyWork,
    SessionBusy,
    WorkerActivity,
    read_workers,
    write_atomically,
)

logger = logging.getLogger(__name__)

PUBLISH_EVERY_S = 1.0
_BUCKET_S = 10.0


async def cancel_and_wait(task: asyncio.Task[None] | None) -> None:
    """Cancel a background loop and wait until it has ended (a no-op for None)."""
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


class ActivityState:
    """Last use, busy work and ignored traffic seen by this worker."""

    def __init__(self, directory: Path | None) -> None:
        self._directory = directory
        self.last_activity: float | None = None
        self.cause: str | None = None
        self.extension_seen_at: float | None = None
        # session -> its newest report: each workbench tab reports its own complete list
        self._sessions: dict[str, SessionBusy] = {}
        # (bucket start, counts): the ignored traffic of the last IGNORED_WINDOW_S
        self._buckets: deque[tuple[float, Counter[str]]] = deque()
        self._dirty = False
        self._task: asyncio.Task[None] | None = None
        self._write_failed = False
        self._extension_seen_elsewhere = False

    # -- recording (request path) ----------------------------------------------------------------
    def use(self, cause: str, at: float | None = None) -> None:
        """Someone used the server just now (or at `at`, unix time)."""
        when = time.time() if at is None else at
        if self.last_activity is None or when >= self.last_activity:
            self.last_activity, self.cause = when, cause
            self._dirty = True

    def ignored(self, kind: str) -> None:
        """Traffic that is not use (a keepalive, a poll, a probe...)."""
        now = time.time()
        buckets = self._buckets
        if not buckets or now - buckets[-1][0] >= _BUCKET_S:
            buckets.append((now, Counter()))
            while buckets and now - buckets[0][0] > IGNORED_WINDOW_S:
                buckets.popleft()
        buckets[-1][1][kind] += 1
        self._dirty = True

    def extension_report(self, session: str, busy: tuple[BusyWork, ...], ttl_s: float,
                         now: float | None = None) -> None:
        """The IDE extension spoke: it is installed and alive, and this is `session`'s complete
        busy work now (kept `ttl_s` unless repeated)."""
        now = time.time() if now is None else now
        self.extension_seen_at = now
        self._sessions[session] = SessionBusy(session, now, now + ttl_s, busy)
        self._dirty = True

    def extension_contact(self, now: float | None = None) -> None:
        """The extension asked for the notice: it runs, even if it has nothing to report.

        An open, untouched workbench never reports, yet its RPC polling must not count as use
        from the start: a notice poll (at the extension's start, then every few seconds) is
        the proof that the extension measures use in this IDE.
        """
        self.extension_seen_at = time.time() if now is None else now
        self._dirty = True

    def sessions_now(self, now: float) -> tuple[SessionBusy, ...]:
        """The sessions' reports that have not expired (older ones are forgotten)."""
        for session, report in list(self._sessions.items()):
            if report.until <= now:
                del self._sessions[session]
        return tuple(self._sessions.values())

    @property
    def extension_seen_anywhere(self) -> bool:
        """The IDE extension has reported to this worker or to another one."""
        return self.extension_seen_at is not None or self._extension_seen_elsewhere

    def ignored_recent(self, now: float | None = None) -> dict[str, int]:
        now = time.time() if now is None else now
        total: Counter[str] = Counter()
        for start, counts in self._buckets:
            if now - start <= IGNORED_WINDOW_S:
                total.update(counts)
        return dict(total)

    def snapshot(self, now: float | None = None) -> WorkerActivity:
        now = time.time() if now is None else now
        return WorkerActivity(pid=os.getpid(), updated_at=now, last_activity=self.last_activity,
                              cause=self.cause, extension_seen_at=self.extension_seen_at,
                              sessions=self.sessions_now(now),
                              ignored=self.ignored_recent(now))

    # -- publishing ----------------------------------------------------------------------------
    def start(self) -> None:
        if self._directory is not None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait(task)
        self.publish()  # the last use must be visible after this worker is gone

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(PUBLISH_EVERY_S)
            if self._dirty or self._buckets or self._sessions:
                self.publish()
            if not self.extension_seen_anywhere:
                self._look_for_extension()

    def _look_for_extension(self) -> None:
        assert self._directory is not None
        self._extension_seen_elsewhere = any(
            w.extension_seen_at is not None for w in read_workers(self._directory))

    def publish(self) -> None:
        """Write this worker's file now (a failure is logged once, never raised)."""
        if self._directory is None:
            return
        self._dirty = False
        path = self._directory / f"worker-{os.getpid()}.json"
        try:
            write_atomically(path, self.snapshot().to_json())
        except OSError as exc:
            if not self._write_failed:
                logger.warning("cannot publish activity to %s: %s", path, exc)
            self._write_failed = True
            return
        self._write_failed = False
