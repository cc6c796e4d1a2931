"""Fake processes and a fake clock for unit tests of the supervision loop.

`World` plays the operating system: it makes `FakeProcess`es for the supervisor's factory,
records every call as (event, child name) in `events`, and lets a test script each child's
behaviour (slow readiness, hung, ignores SIGTERM, cannot be executed). Waiting on a fake
process advances the fake clock, as a real wait would let real time pass.
"""

from __future__ import annotations

import collections
import errno
import os
from collections.abc import Callable
from dataclasses import dataclass

from supervisor.errors import StartError
from supervisor.spec import ChildSpec, LivenessPolicy, ReadyCheck, RestartPolicy

NAMES = ("waiide", "singleuser", "gateway", "monitor")
POLICY = RestartPolicy(backoff_initial_s=1.0, backoff_max_s=16.0, stable_uptime_s=30.0,
                       flap_restarts=4, flap_window_s=60.0)
LIVENESS = LivenessPolicy(interval_s=5.0, timeout_s=1.0, failures=3)


class FakeClock:
    """Monotonic time that moves only when told to (or when something sleeps or waits)."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds

    advance = sleep


@dataclass
class Behaviour:
    """How one child's fake processes behave; a test may change it while the loop runs."""

    failed_probes_before_ready: int = 0
    healthy: bool = True
    ignore_term: bool = False
    exit_on_start: int | None = None
    not_executable: bool = False


class FakeProcess:
    """Implements supervisor.process.Process without an operating system."""

    def __init__(self, world: World, spec: ChildSpec, pid: int) -> None:
        self.world = world
        self.spec = spec
        self._pid = pid
        self.returncode: int | None = None
        self.probes = 0
        self.closed = False

    @property
    def pid(self) -> int:
        return self._pid

    @property
    def behaviour(self) -> Behaviour:
        return self.world.behaviour[self.spec.name]

    def start(self) -> None:
        if self.behaviour.not_executable:
            raise StartError(self.spec.name, self.spec.argv,
                             FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT)),
                             self.spec.hint)
        self.world.record("start", self)
        self.returncode = self.behaviour.exit_on_start

    def poll(self) -> int | None:
        return self.returncode

    def is_alive(self) -> bool:
        return self.returncode is None

    def probe(self, timeout_s: float) -> bool:
        self.world.record("probe", self)
        self.probes += 1
        if self.world.on_probe is not None:
            self.world.on_probe(self)
        if self.probes <= self.behaviour.failed_probes_before_ready:
            return False
        return self.behaviour.healthy

    def terminate(self) -> None:
        self.world.record("term", self)
        if not self.behaviour.ignore_term and self.returncode is None:
            self.returncode = -15

    def kill(self) -> None:
        self.world.record("kill", self)
        if self.returncode is None:
            self.returncode = -9

    def wait(self, timeout_s: float) -> int | None:
        if self.returncode is None:
            self.world.clock.advance(timeout_s)
        return self.returncode

    def close(self) -> None:
        self.world.record("close", self)
        self.closed = True

    def exit(self, code: int) -> None:
        """Test helper: the process dies on its own."""
        self.returncode = code


class World:
    """Factory, event log and behaviour table for the fake processes."""

    def __init__(self, clock: FakeClock | None = None) -> None:
        self.clock = clock or FakeClock()
        self.events: list[tuple[str, str]] = []
        self.behaviour: dict[str, Behaviour] = collections.defaultdict(Behaviour)
        self.processes: dict[str, list[FakeProcess]] = collections.defaultdict(list)
        self._next_pid = 100
        self.on_probe: Callable[[FakeProcess], None] | None = None

    def factory(self, spec: ChildSpec) -> FakeProcess:
        self._next_pid += 1
        process = FakeProcess(self, spec, self._next_pid)
        self.processes[spec.name].append(process)
        return process

    def record(self, event: str, process: FakeProcess) -> None:
        self.events.append((event, process.spec.name))

    def current(self, name: str) -> FakeProcess:
        return self.processes[name][-1]

    def starts(self, name: str) -> int:
        return sum(1 for event, who in self.events if event == "start" and who == name)

    def of(self, event: str) -> list[str]:
        """Children in the order `event` happened to them."""
        return [who for what, who in self.events if what == event]


def make_specs(names: tuple[str, ...] = NAMES, policy: RestartPolicy = POLICY,
               stop_timeout_s: float = 5.0, ready_timeout_s: float = 20.0) -> list[ChildSpec]:
    """Specs shaped like the real ones: all but the monitor have a ready URL, the gateway is
    probed while it runs."""
    specs = []
    for name in names:
        has_url = name != "monitor"
        specs.append(ChildSpec(
            name=name, argv=(f"/bin/{name}",), env={},
            ready=ReadyCheck(f"http://127.0.0.1:1/{name}") if has_url else None,
            ready_timeout_s=ready_timeout_s, stop_timeout_s=stop_timeout_s, restart=policy,
            liveness=LIVENESS if name == "gateway" else None))
    return specs
