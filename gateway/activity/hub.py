"""Telling JupyterHub that the user is using the server: only real use, never a tab by itself.

Each worker posts the last use it recorded (`ActivityState`) to `JUPYTERHUB_ACTIVITY_URL` the way
jupyterhub-singleuser does: every `JUPYTERHUB_ACTIVITY_INTERVAL` seconds (default 300, ±10 %
jitter), only when it is newer than what was last sent, retrying with exponential backoff (1 s
doubling, capped at 15 s) for up to 60 s. What counts as use is `gateway.activity.classify`.
While busy work runs (a terminal command, a task, a debug session) and WAIIDE_IDLE_BUSY_COUNTS is
true, the time posted is "now": the hub's idle culler then agrees with the self-shutdown.

aiohttp is imported when a reporter starts, not with this module: standalone (and without an
activity URL) no worker pays for it (about 12 MiB PSS, bench/memory.py).
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported in start(): only a hub with an activity URL needs aiohttp
    import aiohttp

from common.activity_files import merge, read_workers
from gateway.activity.state import ActivityState, cancel_and_wait

logger = logging.getLogger(__name__)

_RETRY_FIRST_S = 1.0
_RETRY_MAX_S = 15.0
_RETRY_TOTAL_S = 60.0


def isoformat(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


class ActivityReporter:
    """The loop that posts this worker's last real use to the hub."""

    def __init__(self, state: ActivityState, *, url: str, token: str, server_name: str,
                 interval_s: float, directory: Path | None = None,
                 busy_counts: bool = True) -> None:
        self._state = state
        self._directory = directory
        self._busy_counts = busy_counts
        self._url = url
        self._token = token
        self._server_name = server_name
        self._interval_s = interval_s
        self._last_sent = 0.0
        self._task: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None

    def start(self) -> None:
        import aiohttp  # lazy on purpose (module docstring)

        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        """Idempotent: the posting loop ends and the HTTP session closes."""
        task, self._task = self._task, None
        await cancel_and_wait(task)
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    def _busy_anywhere(self) -> bool:
        """Busy work reported to any worker (the activity directory), or to this one."""
        now = time.time()
        workers = read_workers(self._directory) if self._directory is not None else []
        return bool(merge([*workers, self._state.snapshot(now)], now).busy)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval_s * random.uniform(0.9, 1.1))
            await self.flush()

    async def flush(self) -> bool:
        """Post the last activity if it is newer than what the hub has; True when posted."""
        stamp = self._state.last_activity
        if self._busy_counts and self._busy_anywhere():
            # A job runs: the hub's culler must see the server as used, as our self-shutdown
            # does (WAIIDE_IDLE_BUSY_COUNTS), or it would stop the server under the job.
            stamp = time.time()
        if stamp is None or stamp <= self._last_sent:
            return False
        when = isoformat(stamp)
        body = json.dumps({"servers": {self._server_name: {"last_activity": when}},
                           "last_activity": when})
        deadline = time.monotonic() + _RETRY_TOTAL_S
        delay = _RETRY_FIRST_S
        while True:
            if await self._post(body):
                self._last_sent = stamp
                return True
            if time.monotonic() + delay > deadline:
                logger.warning("could not report activity to %s for %.0fs; giving up until the "
                               "next interval", self._url, _RETRY_TOTAL_S)
                return False
            await asyncio.sleep(delay)
            delay = min(delay * 2, _RETRY_MAX_S)

    async def _post(self, body: str) -> bool:
        import aiohttp  # already loaded by start()

        if self._session is None:  # stopped
            return False
        try:
            async with self._session.post(self._url, data=body, headers={
                    "Authorization": f"token {self._token}",
                    "Content-Type": "application/json"}) as resp:
                if resp.status < 400:
                    return True
                logger.warning("activity report to %s answered %d: %s", self._url,
                               resp.status, (await resp.text())[:200])
                # 4xx other than 429 will not heal by retrying within the minute, but the
                # singleuser contract retries anyway; keep it the same.
                return False
        except (TimeoutError, aiohttp.ClientError) as exc:
            logger.warning("activity report to %s failed: %s", self._url, exc)
            return False
