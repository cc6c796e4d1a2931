"""The supervision policy on fake processes and a fake clock: order, readiness, backoff,
flapping, hung children, shutdown and the forcing second signal.

Scenarios:
 1. Children start in order; each waits for its readiness probe before the next starts.
 2. A child that never answers within its deadline fails the start; what started is stopped.
 3. A child that exits before it is ready fails the start.
 4. A command that cannot be executed fails the start with its hint.
 5. A signal while waiting for readiness aborts the start cleanly (exit code 0).
 6. A crashed child restarts after 1, 2, 4, 8, 16, 16 s (capped doubling).
 7. The backoff starts over after a stable uptime.
 8. A child that exits 0 is restarted like a crash.
 9. A flapping child is reported, marked, and restarted only every backoff_max_s.
10. Nothing is respawned once shutdown has begun.
11. Shutdown stops the children in reverse start order.
12. A child that ignores SIGTERM is SIGKILLed at its stop deadline.
13. A second signal during shutdown kills every remaining child at once.
14. A gateway that stops answering K probes in a row while alive is restarted.
15. A restarted child that never gets ready is restarted again after its deadline.
16. Every lifecycle event publishes the components' state.
17. run() supervises until SIGTERM and returns 0; SIGHUP restarts every child.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import signal
import threading
import time

import pytest

from common.components_file import ChildEntry
from common.exits import ExitCode
from supervisor.spec import RestartPolicy
from supervisor.supervisor import Supervisor
from tests.supervisor.fakes import NAMES, World, make_specs

NO_FLAPPING = RestartPolicy(backoff_initial_s=1.0, backoff_max_s=16.0, stable_uptime_s=30.0,
                            flap_restarts=1000, flap_window_s=60.0)
EXIT_LINE = re.compile(r"child (\w+) \[(\d+)\] exited with (.+); restart in ([\d.]+)s")


class Harness:
    """A Supervisor wired to a World, with the published component states kept."""

    def __init__(self, world: World | None = None, **spec_options: object) -> None:
        self.world = world or World()
        self.published: list[list[ChildEntry]] = []
        self.sup = Supervisor(make_specs(**spec_options),  # type: ignore[arg-type]
                              self.world.factory,
                              on_change=lambda c: self.published.append(list(c)),
                              clock=self.world.clock, wall_clock=lambda: 1.7e9 + self.world.clock(),
                              sleep=self.world.clock.sleep)

    def tick(self, seconds: float = 0.5, times: int = 1) -> None:
        for _ in range(times):
            self.world.clock.advance(seconds)
            self.sup.keep_children_alive()

    def until_started(self, name: str, starts: int, limit_s: float = 120.0) -> float:
        """Tick until `name` has started `starts` times; the fake time that took."""
        began = self.world.clock()
        while self.world.starts(name) < starts:
            assert self.world.clock() - began < limit_s, f"{name} did not restart"
            self.tick(0.1)
        return self.world.clock() - began

    def state(self, name: str) -> ChildEntry:
        return next(c for c in self.published[-1] if c.name == name)


def exit_lines(caplog: pytest.LogCaptureFixture, name: str) -> list[tuple[str, float]]:
    found = []
    for record in caplog.records:
        match = EXIT_LINE.fullmatch(record.getMessage())
        if match and match.group(1) == name:
            found.append((match.group(3), float(match.group(4))))
    return found


def test_start_order_waits_for_each_readiness() -> None:
    """1. waiide answers on its 4th probe; nothing else starts before that."""
    h = Harness()
    h.world.behaviour["waiide"].failed_probes_before_ready = 3
    assert h.sup.startup()
    assert h.world.of("start") == list(NAMES)
    first_other = h.world.events.index(("start", "singleuser"))
    assert h.world.events[:first_other].count(("probe", "waiide")) == 4
    assert "monitor" not in h.world.of("probe")
    # capped doubling waits between the probes: 0.01 + 0.02 + 0.04
    assert h.world.clock() - 1000.0 == pytest.approx(0.07)
    assert {c.state for c in h.published[-1]} == {"running"}


def test_not_ready_in_time_fails_the_start(caplog: pytest.LogCaptureFixture) -> None:
    """2. waiide never answers: after its 20 s deadline the start fails, waiide is stopped."""
    h = Harness()
    h.world.behaviour["waiide"].failed_probes_before_ready = 10**9
    assert h.sup.run() is ExitCode.STARTUP_FAILURE
    assert h.world.of("start") == ["waiide"]
    assert h.world.of("term") == ["waiide"]
    assert 20.0 <= h.world.clock() - 1000.0 < 22.0
    assert "did not answer http://127.0.0.1:1/waiide within 20.0s" in caplog.text


def test_exit_before_ready_fails_the_start(caplog: pytest.LogCaptureFixture) -> None:
    """3. singleuser exits at once: the start fails, waiide is stopped, the gateway never runs."""
    h = Harness()
    h.world.behaviour["singleuser"].exit_on_start = 1
    assert h.sup.run() is ExitCode.STARTUP_FAILURE
    assert h.world.of("start") == ["waiide", "singleuser"]
    assert h.world.of("term") == ["waiide"]
    assert "exited with exit code 1 before it was ready" in caplog.text


def test_missing_command_fails_the_start(caplog: pytest.LogCaptureFixture) -> None:
    """4. The IDE binary is missing: the start fails and the message names the program."""
    h = Harness()
    h.world.behaviour["waiide"].not_executable = True
    assert h.sup.run() is ExitCode.STARTUP_FAILURE
    assert h.world.of("start") == []
    assert "cannot start waiide: /bin/waiide: No such file or directory" in caplog.text


def test_signal_while_waiting_for_readiness_aborts_cleanly() -> None:
    """5. SIGTERM arrives during waiide's readiness wait: stop, exit 0, start nothing else."""
    h = Harness()
    h.world.behaviour["waiide"].failed_probes_before_ready = 10**9

    def on_probe(process: object) -> None:
        if h.world.of("probe").count("waiide") == 3:
            h.sup.signal_queue.append(signal.SIGTERM)

    h.world.on_probe = on_probe
    assert h.sup.run() is ExitCode.OK
    assert h.world.of("start") == ["waiide"]
    assert h.world.of("term") == ["waiide"]
    assert h.world.clock() - 1000.0 < 1.0


def test_crash_restarts_with_capped_exponential_backoff(caplog: pytest.LogCaptureFixture) -> None:
    """6. The gateway crashes right after each start: 1, 2, 4, 8, 16, 16 s between restarts."""
    h = Harness(policy=NO_FLAPPING)
    assert h.sup.startup()
    waited = []
    for attempt in range(6):
        h.world.current("gateway").exit(1)
        h.sup.keep_children_alive()
        waited.append(h.until_started("gateway", attempt + 2))
    expected = [1.0, 2.0, 4.0, 8.0, 16.0, 16.0]
    assert [delay for _, delay in exit_lines(caplog, "gateway")] == expected
    assert all(e <= w < e + 0.2 for w, e in zip(waited, expected, strict=True)), waited
    pid = h.world.processes["gateway"][0].pid
    assert f"child gateway [{pid}] exited with exit code 1; restart in 1.0s" in caplog.text
    assert h.world.starts("waiide") == 1  # the others are left alone


def test_backoff_resets_after_stable_uptime(caplog: pytest.LogCaptureFixture) -> None:
    """7. Three quick crashes (1, 2, 4 s), then 31 s of uptime: the next wait is 1 s again."""
    h = Harness(policy=NO_FLAPPING)
    assert h.sup.startup()
    for attempt in range(3):
        h.world.current("monitor").exit(2)
        h.sup.keep_children_alive()
        h.until_started("monitor", attempt + 2)
    h.tick(1.0, times=31)
    h.world.current("monitor").exit(2)
    h.sup.keep_children_alive()
    assert [d for _, d in exit_lines(caplog, "monitor")] == [1.0, 2.0, 4.0, 1.0]


def test_clean_exit_is_restarted(caplog: pytest.LogCaptureFixture) -> None:
    """8. The monitor exits 0: it is a dead child all the same."""
    h = Harness()
    assert h.sup.startup()
    h.world.current("monitor").exit(0)
    h.sup.keep_children_alive()
    assert exit_lines(caplog, "monitor") == [("exit code 0", 1.0)]
    h.until_started("monitor", 2)


def test_flapping_child_is_reported_and_not_restarted_in_a_tight_loop(
        caplog: pytest.LogCaptureFixture) -> None:
    """9. waiide dies right after every start: from the 4th exit in 60 s on it is flapping,
    logged as an error, marked in the components file and restarted only every 16 s."""
    h = Harness()
    assert h.sup.startup()
    began = h.world.clock()
    while h.world.clock() - began < 120.0:
        process = h.world.current("waiide")
        if process.is_alive():
            process.exit(1)
        h.tick(0.1)
    delays = [d for _, d in exit_lines(caplog, "waiide")]
    assert delays[:4] == [1.0, 2.0, 4.0, 16.0]
    assert set(delays[3:]) == {16.0}
    assert h.world.starts("waiide") <= 1 + 3 + 120 // 16 + 1
    flapping_errors = [r for r in caplog.records
                       if r.levelno == logging.ERROR and "FLAPPING" in r.getMessage()]
    assert len(flapping_errors) == 1  # loud once, not on every exit
    assert any(c.name == "waiide" and c.state == "flapping" and c.flapping
               for snapshot in h.published for c in snapshot)
    # once it stays up for the stable uptime it is no longer flapping
    h.until_started("waiide", h.world.starts("waiide") + 1)
    h.tick(1.0, times=31)
    assert h.state("waiide").state == "running"
    assert not h.state("waiide").flapping


def test_no_respawn_once_shutdown_began() -> None:
    """10. The gateway crashed; SIGTERM arrives before its restart is due: it stays down."""
    h = Harness()
    assert h.sup.startup()
    h.world.current("gateway").exit(1)
    h.sup.keep_children_alive()
    h.sup.signal_queue.append(signal.SIGTERM)
    h.sup.handle_signals()
    h.tick(1.0, times=20)
    assert h.world.starts("gateway") == 1


def test_shutdown_in_reverse_start_order() -> None:
    """11. SIGTERM to monitor, gateway, singleuser, waiide in that order; all closed, all
    published as stopped without pids."""
    h = Harness()
    assert h.sup.startup()
    h.sup.shutdown()
    assert h.world.of("term") == list(reversed(NAMES))
    assert h.world.of("kill") == []
    assert all(p.closed for procs in h.world.processes.values() for p in procs)
    assert [(c.state, c.pid) for c in h.published[-1]] == [("stopped", None)] * 4


def test_child_ignoring_sigterm_is_killed_at_its_deadline(caplog: pytest.LogCaptureFixture) -> None:
    """12. The monitor ignores SIGTERM: SIGKILL after its 5 s stop timeout, then the rest."""
    h = Harness()
    h.world.behaviour["monitor"].ignore_term = True
    assert h.sup.startup()
    began = h.world.clock()
    h.sup.shutdown()
    assert 5.0 <= h.world.clock() - began < 5.2
    assert h.world.of("kill") == ["monitor"]
    assert h.world.of("term") == list(reversed(NAMES))
    pid = h.world.current("monitor").pid
    assert f"child monitor [{pid}] did not stop within 5.0s; SIGKILL" in caplog.text


def test_second_signal_forces_immediate_kill(caplog: pytest.LogCaptureFixture) -> None:
    """13. Everything ignores SIGTERM. SIGTERM starts the stop; a SIGINT during the monitor's
    grace period kills every child at once instead of waiting 4 x 5 s."""
    h = Harness()
    for name in NAMES:
        h.world.behaviour[name].ignore_term = True
    assert h.sup.startup()
    h.sup.signal_queue.append(signal.SIGTERM)
    h.sup.handle_signals()
    h.sup.signal_queue.append(signal.SIGINT)
    began = h.world.clock()
    h.sup.shutdown()
    assert h.world.clock() - began < 1.0
    assert h.world.of("term") == ["monitor"]
    assert sorted(h.world.of("kill")) == sorted(NAMES)
    assert h.sup.force_exit
    assert "received SIGINT again: shutdown interrupted, killing every child" in caplog.text
    assert all(not p.is_alive() for procs in h.world.processes.values() for p in procs)


def test_hung_gateway_is_restarted(caplog: pytest.LogCaptureFixture) -> None:
    """14. The gateway's process lives but /api/healthz stops answering: two misses are
    tolerated, a success resets the count, three in a row restart it."""
    h = Harness()
    assert h.sup.startup()
    gateway = h.world.current("gateway")
    h.world.behaviour["gateway"].healthy = False
    h.tick(5.0, times=2)
    h.world.behaviour["gateway"].healthy = True
    h.tick(5.0)
    h.world.behaviour["gateway"].healthy = False
    h.tick(5.0, times=2)
    assert h.world.starts("gateway") == 1 and gateway.is_alive()
    h.tick(5.0)
    assert h.world.of("term") == ["gateway"]
    assert f"child gateway [{gateway.pid}] is alive but hung (3 probes failed in a row)" \
        in caplog.text
    h.world.behaviour["gateway"].healthy = True
    h.until_started("gateway", 2)
    h.tick(0.5, times=2)
    assert h.state("gateway").state == "running"
    assert h.state("gateway").restarts == 1


def test_restarted_child_that_never_gets_ready_is_restarted(
        caplog: pytest.LogCaptureFixture) -> None:
    """15. waiide crashes; its replacement never answers: after 20 s it is stopped and
    restarted again."""
    h = Harness()
    assert h.sup.startup()
    h.world.behaviour["waiide"].failed_probes_before_ready = 10**9
    h.world.current("waiide").exit(1)
    h.sup.keep_children_alive()
    h.until_started("waiide", 2)
    assert h.state("waiide").state == "starting"
    h.tick(0.5, times=41)
    assert "not ready within 20.0s; restarting it" in caplog.text
    assert h.world.of("term") == ["waiide"]
    h.until_started("waiide", 3)


def test_every_lifecycle_event_is_published() -> None:
    """16. Components file content across start, crash and restart."""
    h = Harness()
    assert h.sup.startup()
    running = h.state("gateway")
    assert running.state == "running" and running.pid == h.world.current("gateway").pid
    assert running.started_at == pytest.approx(1.7e9 + 1000.0, abs=1.0)
    assert running.restarts == 0
    h.world.current("gateway").exit(1)
    h.tick()
    assert (h.state("gateway").state, h.state("gateway").pid) == ("backoff", None)
    h.until_started("gateway", 2)
    restarted = h.state("gateway")
    assert restarted.pid == h.world.current("gateway").pid and restarted.restarts == 1
    assert restarted.state == "starting"
    h.tick()
    assert h.state("gateway").state == "running"


def _run_in_thread(h: Harness) -> tuple[threading.Thread, list[ExitCode]]:
    result: list[ExitCode] = []
    thread = threading.Thread(target=lambda: result.append(h.sup.run()), daemon=True)
    thread.start()
    return thread, result


def _wait_for(predicate: object, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.01)


def test_run_until_sigterm_and_sighup_restarts_everything() -> None:
    """17. run() in the real loop: SIGHUP restarts all four (in order, no backoff); SIGTERM
    ends it with exit code 0."""
    h = Harness()
    thread, result = _run_in_thread(h)
    try:
        _wait_for(lambda: h.published and h.published[-1][-1].state == "running")
        h.sup.signal_queue.append(signal.SIGHUP)
        _wait_for(lambda: h.world.starts("monitor") == 2)
        assert h.world.of("start")[4:] == list(NAMES)
        assert h.world.of("term") == list(reversed(NAMES))
    finally:
        h.sup.signal_queue.append(signal.SIGTERM)
        thread.join(5.0)
    assert result == [ExitCode.OK]
    assert [c.state for c in h.published[-1]] == ["stopped"] * 4


def _with_config_exit(h: Harness, name: str) -> None:
    """Mark child `name` as one of ours (exit CONFIG_ERROR means a bad setting)."""
    slot = next(s for s in h.sup._slots if s.name == name)
    slot.spec = dataclasses.replace(slot.spec, config_exit=True)


def test_exit_2_of_our_child_is_never_restarted_and_stops_everything(
        caplog: pytest.LogCaptureFixture) -> None:
    """Issue 12: a monitor exiting 2 (bad setting) restarted forever behind a ready banner."""
    h = Harness()
    _with_config_exit(h, "gateway")
    assert h.sup.startup()
    h.world.current("gateway").exit(ExitCode.CONFIG_ERROR)
    h.tick(0.5, times=20)
    assert h.world.starts("gateway") == 1  # never restarted
    assert h.sup.should_exit.is_set() and h.sup.config_failed
    h.sup.shutdown()
    assert "a bad setting" in caplog.text and "not restarting it" in caplog.text


def test_exit_2_before_ready_fails_the_start_with_config_error() -> None:
    h = Harness()
    _with_config_exit(h, "gateway")
    h.world.behaviour["gateway"].exit_on_start = ExitCode.CONFIG_ERROR
    assert h.sup.run() == ExitCode.CONFIG_ERROR
    assert h.world.starts("gateway") == 1 and h.world.starts("monitor") == 0


def test_exit_2_of_a_foreign_program_is_an_ordinary_crash() -> None:
    """The IDE is not ours: its exit code 2 means whatever it means, so it is restarted."""
    h = Harness()
    assert h.sup.startup()
    h.world.current("waiide").exit(2)
    h.until_started("waiide", 2)
    assert not h.sup.should_exit.is_set()
