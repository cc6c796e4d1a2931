"""The supervision loop: start the children in order, keep them alive, stop them in reverse order.

Shape from uvicorn `supervisors/multiprocess.py`: signal handlers only append to `signal_queue`;
the main thread runs `while not should_exit.wait(TICK_S): handle_signals(); keep_children_alive()`
and dispatches to `handle_term` / `handle_int` / `handle_hup`. Added here: readiness gating at
start, restart backoff and flap detection (`supervisor.restart`), liveness probes, stop deadlines,
and a second SIGTERM/SIGINT that turns the graceful stop into SIGKILL for every child (uvicorn
`force_exit`, Sanic "Shutdown interrupted. Killing.").

The handlers do not even set an Event: `Event.set()` takes the lock that the interrupted main
thread may be holding inside `Event.wait()`, which would deadlock. Waits that must react to a
signal quickly (readiness, stop deadlines) poll the queue every SIGNAL_POLL_S instead.

Time comes from the injected `clock`/`sleep`, processes from the injected factory, so the unit
tests run this policy on a fake clock with fake processes.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import shlex
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from types import FrameType

from common.components_file import ChildEntry
from common.exits import ExitCode
from supervisor.errors import StartError
from supervisor.lifecycle import WAITING_STATES, ChildRecord, ChildState
from supervisor.process import Process, ProcessFactory, describe_exit
from supervisor.restart import RestartDecision, RestartTracker
from supervisor.spec import ChildSpec

logger = logging.getLogger(__name__)

TICK_S = 0.5
SIGNAL_POLL_S = 0.05
READY_FIRST_WAIT_S = 0.01  # capped doubling waits between readiness probes (simpervisor)
READY_MAX_WAIT_S = 1.0
READY_PROBE_TIMEOUT_S = 1.0
KILL_WAIT_S = 5.0
# A child restarted as hung gets this long (at most its stop_timeout_s) between SIGTERM+SIGCONT
# and SIGKILL: it already failed several probes, so a long graceful stop would only add downtime.
HUNG_STOP_S = 1.0
HANDLED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def _fields(slot: ChildRecord, action: str) -> dict[str, object]:
    """Stable structured fields of every lifecycle log line (simpervisor's `action` key)."""
    return {"component": slot.name, "pid": slot.pid, "action": action}


def _ignore(_components: Sequence[ChildEntry]) -> None:
    """Default `on_change`: nobody listens."""


def _nothing() -> None:
    """Default `on_ready`: no banner."""


def _carry_on() -> bool:
    """Default `should_stop`: never asks to stop."""
    return False


class Supervisor:
    """Runs `specs` in order until SIGTERM/SIGINT, restarting whatever dies.

    Args:
        specs: the children in start order.
        process_factory: makes an unstarted `Process` for a spec (ChildProcess in production).
        on_change: receives the state of every child after each lifecycle event.
        on_ready: called once when every child has started and passed its readiness probe.
        should_stop: asked every tick while supervising; True stops everything cleanly (exit 0),
            as SIGTERM does (the idle self-shutdown, `supervisor.idle`).
        clock, wall_clock, sleep: monotonic time, unix time and sleeping, injectable for tests.
    """

    def __init__(self, specs: Sequence[ChildSpec], process_factory: ProcessFactory, *,
                 on_change: Callable[[Sequence[ChildEntry]], None] = _ignore,
                 on_ready: Callable[[], None] = _nothing,
                 should_stop: Callable[[], bool] = _carry_on,
                 clock: Callable[[], float] = time.monotonic,
                 wall_clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.should_exit = threading.Event()
        self.force_exit = False
        self.config_failed = False
        self.signal_queue: collections.deque[int] = collections.deque()
        self._slots = [ChildRecord(spec, RestartTracker(spec.restart)) for spec in specs]
        self._factory = process_factory
        self._on_change = on_change
        self._on_ready = on_ready
        self._should_stop = should_stop
        self._clock = clock
        self._wall_clock = wall_clock
        self._sleep = sleep
        self._looping = False

    # ---- signals -------------------------------------------------------------------------

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        """Route SIGINT/SIGTERM/SIGHUP into `signal_queue` (main thread only), then restore."""
        previous = {sig: signal.signal(sig, self._on_signal) for sig in HANDLED_SIGNALS}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        self.signal_queue.append(signum)  # only enqueue; see the module docstring

    def handle_signals(self) -> None:
        """Dispatch every queued signal to `handle_<name>`."""
        while self.signal_queue:
            signum = self.signal_queue.popleft()
            name = signal.Signals(signum).name
            getattr(self, f"handle_{name[3:].lower()}")()

    def handle_term(self) -> None:
        self._request_exit("SIGTERM")

    def handle_int(self) -> None:
        self._request_exit("SIGINT")

    def handle_hup(self) -> None:
        if self._looping and not self.should_exit.is_set():
            logger.info("received SIGHUP: restarting every child")
            self.restart_all()

    def _request_exit(self, name: str) -> None:
        if not self.should_exit.is_set():
            logger.info("received %s: stopping the children in reverse start order", name)
            self.should_exit.set()
        elif not self.force_exit:
            logger.warning("received %s again: shutdown interrupted, killing every child", name)
            self.force_exit = True

    # ---- phases --------------------------------------------------------------------------

    def run(self) -> ExitCode:
        """Start everything, supervise until asked to stop, stop everything; the exit code."""
        started = self.startup()
        if started:
            self._on_ready()
            self.main_loop()
        self.shutdown()
        if self.config_failed:
            return ExitCode.CONFIG_ERROR
        if self.force_exit:
            return ExitCode.FAILED  # forced: a second signal cut the graceful stop short
        if not started and not self.should_exit.is_set():
            return ExitCode.STARTUP_FAILURE
        return ExitCode.OK

    def startup(self) -> bool:
        """Start each child and wait for its readiness before the next; False on failure."""
        for slot in self._slots:
            self.handle_signals()
            if self.should_exit.is_set() or not self._start(slot, at_startup=True):
                return False
            if slot.state is ChildState.STARTING and not self._await_ready(slot):
                return False
        return True

    def main_loop(self) -> None:
        """Supervise until `should_exit` (uvicorn Multiprocess shape)."""
        self._looping = True
        try:
            while not self.should_exit.wait(TICK_S):
                self.handle_signals()
                self.keep_children_alive()
                if not self.should_exit.is_set() and self._should_stop():
                    logger.info("stopping the children in reverse start order")
                    self.should_exit.set()
        finally:
            self._looping = False

    def shutdown(self) -> None:
        """Stop the children in reverse start order; a second signal kills the rest at once."""
        for slot in reversed(self._slots):
            if self.force_exit:
                break
            self._stop(slot, watch_signals=True)
        if self.force_exit:
            self._kill_all()
        for slot in self._slots:
            self._close(slot)
            if slot.state is not ChildState.PENDING:
                self._transition(slot, ChildState.STOPPED)
        self._publish()

    # ---- keeping children alive ----------------------------------------------------------

    def keep_children_alive(self) -> None:
        """Restart due children, notice exits, probe the starting and the probed ones."""
        for slot in self._slots:
            if self.should_exit.is_set():
                return  # never respawn during shutdown
            now = self._clock()
            if slot.state in WAITING_STATES:
                if now >= slot.restart_at_s:
                    self._start(slot)
                continue
            if slot.state not in (ChildState.STARTING, ChildState.RUNNING):
                continue
            assert slot.process is not None
            returncode = slot.process.poll()
            if returncode is not None:
                self._on_exit(slot, returncode, now)
            elif slot.state is ChildState.STARTING:
                self._check_starting(slot, now)
            else:
                self._check_running(slot, now)

    def restart_all(self) -> None:
        """Stop every child (reverse order), then start them in order, each awaiting readiness.

        A child that fails to start or to become ready here is left to the usual backoff; the
        ones after it still start (they would have been restarted around it anyway).
        """
        for slot in reversed(self._slots):
            self._stop(slot, watch_signals=False)
            self._close(slot)
        for slot in self._slots:
            slot.tracker.reset()
            slot.flapping = False
            self._transition(slot, ChildState.BACKOFF)
        self._publish()
        for slot in self._slots:
            if self.should_exit.is_set():
                return
            slot.restart_at_s = self._clock()
            if not self._start(slot):
                continue
            ready = slot.state is not ChildState.STARTING or self._await_ready(slot)
            if not ready and not self.should_exit.is_set():
                self._restart_unhealthy(slot)

    def _start(self, slot: ChildRecord, at_startup: bool = False) -> bool:
        process = self._factory(slot.spec)
        try:
            process.start()
        except StartError as exc:
            logger.error("%s", exc)
            if not at_startup:
                now = self._clock()
                decision = slot.tracker.record_exit(now, 0.0)
                logger.warning("child %s could not start; restart in %.1fs", slot.name,
                               decision.delay_s, extra=_fields(slot, "start-failed"))
                self._schedule_restart(slot, decision, now)
            return False
        slot.process, slot.closed = process, False
        slot.starts += 1
        slot.started_at_s = slot.next_probe_at_s = self._clock()
        slot.started_wall = self._wall_clock()
        slot.failed_probes = 0
        logger.info("child %s [%d] started%s", slot.name, process.pid,
                    f" (restart {slot.starts - 1})" if slot.starts > 1 else "",
                    extra=_fields(slot, "start"))
        logger.debug("child %s [%d] argv: %s", slot.name, process.pid, shlex.join(slot.spec.argv))
        ready = slot.spec.ready is None
        self._transition(slot, ChildState.RUNNING if ready else ChildState.STARTING)
        self._publish()
        return True

    def _await_ready(self, slot: ChildRecord) -> bool:
        """Probe with capped doubling waits until an answer, an exit, the deadline or a signal."""
        process, spec = slot.process, slot.spec
        assert process is not None and spec.ready is not None
        deadline = slot.started_at_s + spec.ready_timeout_s
        delay = READY_FIRST_WAIT_S
        while True:
            returncode = process.poll()
            if returncode is not None:
                logger.error("child %s [%d] exited with %s before it was ready", slot.name,
                             slot.pid, describe_exit(returncode),
                             extra=_fields(slot, "exit-before-ready"))
                self._is_config_exit(slot, returncode)
                return False
            if process.probe(max(0.01, min(READY_PROBE_TIMEOUT_S, deadline - self._clock()))):
                self._mark_ready(slot)
                return True
            remaining = deadline - self._clock()
            if remaining <= 0:
                logger.error("child %s [%d] did not answer %s within %.1fs", slot.name,
                             slot.pid, spec.ready.describe(), spec.ready_timeout_s,
                             extra=_fields(slot, "not-ready"))
                return False
            if self._pause(min(delay, remaining)):
                self.handle_signals()
                if self.should_exit.is_set():
                    return False
            delay = min(delay * 2, READY_MAX_WAIT_S)

    def _mark_ready(self, slot: ChildRecord) -> None:
        now = self._clock()
        logger.info("child %s [%d] is ready after %.1fs", slot.name, slot.pid,
                    now - slot.started_at_s, extra=_fields(slot, "ready"))
        if slot.spec.liveness is not None:
            slot.next_probe_at_s = now + slot.spec.liveness.interval_s
        self._transition(slot, ChildState.RUNNING)
        self._publish()

    def _check_starting(self, slot: ChildRecord, now: float) -> None:
        """A restarted child: probe each tick until it answers or its ready deadline passes."""
        assert slot.process is not None
        if now < slot.next_probe_at_s:
            return
        slot.next_probe_at_s = now + TICK_S
        if slot.process.probe(READY_PROBE_TIMEOUT_S):
            self._mark_ready(slot)
        elif now - slot.started_at_s >= slot.spec.ready_timeout_s:
            logger.error("child %s [%d] not ready within %.1fs; restarting it", slot.name,
                         slot.pid, slot.spec.ready_timeout_s, extra=_fields(slot, "not-ready"))
            self._restart_unhealthy(slot)

    def _check_running(self, slot: ChildRecord, now: float) -> None:
        assert slot.process is not None
        if slot.flapping and slot.tracker.is_stable(now - slot.started_at_s):
            slot.flapping = False
            logger.info("child %s [%d] has stayed up; no longer flapping", slot.name, slot.pid,
                        extra=_fields(slot, "stable"))
            self._publish()
        live, ready = slot.spec.liveness, slot.spec.ready
        if live is None or ready is None or now < slot.next_probe_at_s:
            return
        slot.next_probe_at_s = now + live.interval_s
        # Inline like uvicorn's ping of its workers: blocks the loop at most timeout_s
        # (per connect and per read), once per interval; signals wait in the queue meanwhile.
        if slot.process.probe(live.timeout_s):
            slot.failed_probes = 0
            return
        slot.failed_probes += 1
        logger.warning("child %s [%d] did not answer %s (%d/%d)", slot.name, slot.pid,
                       ready.describe(), slot.failed_probes, live.failures,
                       extra=_fields(slot, "probe-failed"))
        if slot.failed_probes >= live.failures:
            logger.error("child %s [%d] is alive but hung (%d probes failed in a row); "
                         "restarting it", slot.name, slot.pid, slot.failed_probes,
                         extra=_fields(slot, "hung"))
            self._restart_unhealthy(slot)

    def _restart_unhealthy(self, slot: ChildRecord) -> None:
        assert slot.process is not None
        self._stop(slot, watch_signals=False, timeout_s=min(HUNG_STOP_S, slot.spec.stop_timeout_s))
        returncode = slot.process.poll()
        self._on_exit(slot, -signal.SIGKILL if returncode is None else returncode, self._clock())

    def _on_exit(self, slot: ChildRecord, returncode: int, now: float) -> None:
        self._close(slot)
        if self._is_config_exit(slot, returncode):
            self._transition(slot, ChildState.STOPPED)
            self._publish()
            return
        decision = slot.tracker.record_exit(now, now - slot.started_at_s)
        logger.warning("child %s [%d] exited with %s; restart in %.1fs", slot.name, slot.pid,
                       describe_exit(returncode), decision.delay_s, extra=_fields(slot, "exit"))
        self._schedule_restart(slot, decision, now)

    def _is_config_exit(self, slot: ChildRecord, returncode: int) -> bool:
        """A child of ours exited CONFIG_ERROR: never restart it; stop everything, exit 2."""
        if not slot.spec.config_exit or returncode != ExitCode.CONFIG_ERROR:
            return False
        if not self.config_failed:
            logger.error("child %s [%d] exited with %s: a bad setting (its message is above); "
                         "not restarting it, stopping everything", slot.name, slot.pid,
                         describe_exit(returncode), extra=_fields(slot, "config-error"))
        self.config_failed = True
        self.should_exit.set()
        return True

    def _schedule_restart(self, slot: ChildRecord, decision: RestartDecision, now: float) -> None:
        slot.restart_at_s = now + decision.delay_s
        if decision.flapping and not slot.flapping:
            logger.error("child %s is FLAPPING: %d exits within %.0fs; restarting it only every "
                         "%.1fs until it stays up %.0fs", slot.name, decision.recent_exits,
                         slot.spec.restart.flap_window_s, decision.delay_s,
                         slot.spec.restart.stable_uptime_s, extra=_fields(slot, "flapping"))
        slot.flapping = decision.flapping
        self._transition(slot, ChildState.FLAPPING if slot.flapping else ChildState.BACKOFF)
        self._publish()

    # ---- stopping ------------------------------------------------------------------------

    def _stop(self, slot: ChildRecord, watch_signals: bool,
              timeout_s: float | None = None) -> None:
        """SIGTERM the group, wait `timeout_s` (default: the spec's), then SIGKILL."""
        process = slot.process
        if process is None or slot.closed or process.poll() is not None:
            return
        timeout_s = slot.spec.stop_timeout_s if timeout_s is None else timeout_s
        self._transition(slot, ChildState.STOPPING)
        self._publish()
        logger.info("stopping child %s [%d]: SIGTERM to its group, SIGKILL after %.1fs",
                    slot.name, slot.pid, timeout_s, extra=_fields(slot, "stop"))
        process.terminate()
        if self._wait_exit(process, timeout_s, watch_signals):
            logger.info("child %s [%d] stopped with %s", slot.name, slot.pid,
                        describe_exit(process.poll() or 0), extra=_fields(slot, "stopped"))
            return
        if not self.force_exit:
            logger.warning("child %s [%d] did not stop within %.1fs; SIGKILL", slot.name,
                           slot.pid, timeout_s, extra=_fields(slot, "kill"))
        process.kill()
        if process.wait(KILL_WAIT_S) is None:
            logger.error("child %s [%d] survived SIGKILL for %.1fs", slot.name, slot.pid,
                         KILL_WAIT_S, extra=_fields(slot, "kill-failed"))

    def _wait_exit(self, process: Process, timeout_s: float, watch_signals: bool) -> bool:
        deadline = self._clock() + timeout_s
        while True:
            remaining = deadline - self._clock()
            if process.wait(max(0.0, min(SIGNAL_POLL_S, remaining))) is not None:
                return True
            if watch_signals:
                self.handle_signals()
                if self.force_exit:
                    return False
            if self._clock() >= deadline:
                return False

    def _kill_all(self) -> None:
        alive = [slot for slot in self._slots
                 if slot.process is not None and not slot.closed and slot.process.is_alive()]
        for slot in alive:
            logger.warning("killing child %s [%d]", slot.name, slot.pid,
                           extra=_fields(slot, "kill"))
            assert slot.process is not None
            slot.process.kill()
        for slot in alive:
            assert slot.process is not None
            if slot.process.wait(KILL_WAIT_S) is None:
                logger.error("child %s [%d] survived SIGKILL for %.1fs", slot.name, slot.pid,
                             KILL_WAIT_S, extra=_fields(slot, "kill-failed"))

    def _close(self, slot: ChildRecord) -> None:
        if slot.process is not None and not slot.closed:
            slot.process.close()
            slot.closed = True

    # ---- bookkeeping ---------------------------------------------------------------------

    def _pause(self, delay_s: float) -> bool:
        """Sleep up to `delay_s`; True as soon as a signal is queued."""
        deadline = self._clock() + delay_s
        while not self.signal_queue:
            remaining = deadline - self._clock()
            if remaining <= 0:
                return False
            self._sleep(min(remaining, SIGNAL_POLL_S))
        return True

    def _transition(self, slot: ChildRecord, state: ChildState) -> None:
        if slot.state is not state:
            logger.debug("child %s [%d] %s -> %s", slot.name, slot.pid, slot.state.value,
                         state.value, extra=_fields(slot, "transition"))
            slot.state = state

    def _publish(self) -> None:
        self._on_change([slot.status() for slot in self._slots])
