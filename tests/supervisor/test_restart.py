"""RestartTracker: capped doubling, reset after a stable run, flap window."""

from __future__ import annotations

from supervisor.restart import RestartTracker
from supervisor.spec import RestartPolicy

POLICY = RestartPolicy(backoff_initial_s=0.5, backoff_max_s=4.0, stable_uptime_s=10.0,
                       flap_restarts=5, flap_window_s=30.0)


def test_doubles_up_to_the_cap() -> None:
    tracker = RestartTracker(RestartPolicy(backoff_initial_s=0.5, backoff_max_s=4.0,
                                           flap_restarts=100))
    delays = [tracker.record_exit(now_s=i * 100.0, uptime_s=0.1).delay_s for i in range(6)]
    assert delays == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]


def test_stable_run_starts_over() -> None:
    tracker = RestartTracker(POLICY)
    for i in range(3):
        tracker.record_exit(now_s=float(i), uptime_s=0.1)
    decision = tracker.record_exit(now_s=20.0, uptime_s=10.0)
    assert decision.delay_s == 0.5
    assert decision.recent_exits == 1


def test_flapping_within_the_window_uses_the_cap() -> None:
    tracker = RestartTracker(POLICY)
    decisions = [tracker.record_exit(now_s=i * 2.0, uptime_s=0.1) for i in range(5)]
    assert [d.flapping for d in decisions] == [False, False, False, False, True]
    assert decisions[-1].delay_s == POLICY.backoff_max_s


def test_exits_older_than_the_window_do_not_count() -> None:
    tracker = RestartTracker(POLICY)
    for i in range(4):
        tracker.record_exit(now_s=i * 2.0, uptime_s=0.1)
    late = tracker.record_exit(now_s=100.0, uptime_s=5.0)
    assert not late.flapping
    assert late.recent_exits == 1


def test_huge_exit_counts_stay_finite() -> None:
    tracker = RestartTracker(RestartPolicy(flap_restarts=10**6))
    for i in range(3000):
        decision = tracker.record_exit(now_s=float(i), uptime_s=0.0)
    assert decision.delay_s == 30.0
