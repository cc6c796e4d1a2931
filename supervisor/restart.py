"""When a dead child comes back: capped exponential backoff, reset after a stable uptime, flapping.

Pure bookkeeping on times the caller passes in, so it is tested without processes or clocks.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass

from supervisor.spec import RestartPolicy

# 2**62 seconds is already far beyond any cap; the bound keeps the float conversion finite.
MAX_BACKOFF_EXPONENT = 62


@dataclass(frozen=True, slots=True)
class RestartDecision:
    """How long to wait before the next start, and whether the child is flapping."""

    delay_s: float
    flapping: bool
    recent_exits: int


class RestartTracker:
    """Remembers one child's recent exits and turns each new exit into a `RestartDecision`."""

    def __init__(self, policy: RestartPolicy) -> None:
        self._policy = policy
        self._quick_exits = 0
        self._recent: collections.deque[float] = collections.deque()

    def record_exit(self, now_s: float, uptime_s: float) -> RestartDecision:
        """Account for an exit at monotonic time `now_s` after `uptime_s` of running."""
        policy = self._policy
        if uptime_s >= policy.stable_uptime_s:
            # A run that lasted is a fresh start for both the backoff and the flap window.
            self.reset()
        self._quick_exits += 1
        while self._recent and now_s - self._recent[0] > policy.flap_window_s:
            self._recent.popleft()
        self._recent.append(now_s)
        flapping = len(self._recent) >= policy.flap_restarts
        if flapping:
            delay_s = policy.backoff_max_s
        else:
            exponent = min(self._quick_exits - 1, MAX_BACKOFF_EXPONENT)
            delay_s = min(policy.backoff_initial_s * 2.0**exponent, policy.backoff_max_s)
        return RestartDecision(delay_s=delay_s, flapping=flapping, recent_exits=len(self._recent))

    def is_stable(self, uptime_s: float) -> bool:
        """True once a run has lasted long enough to forget earlier crashes."""
        return uptime_s >= self._policy.stable_uptime_s

    def reset(self) -> None:
        """Forget earlier exits (a deliberate restart, e.g. SIGHUP, is not a crash)."""
        self._quick_exits = 0
        self._recent.clear()
