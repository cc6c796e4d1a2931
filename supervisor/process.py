"""A real child process: its own session, signalled by process group, output relayed.

`ChildProcess` is the production implementation of the `Process` protocol the supervision loop
talks to; tests inject fakes through `ProcessFactory` (Sanic `WorkerManager(context=...)`).

Why process groups: code-server, Jupyter and Sanic all start children of their own. Each child
starts with `start_new_session=True`, so its pid is also its process-group id, and `os.killpg`
reaches the whole tree that stayed in the group (Sanic does the same). Processes that left the
group (a terminal shell calls setsid) are remembered with psutil when the stop begins and killed
by pid if they outlive the deadline. The group is signalled only while the leader is unreaped or
right after reaping it: Linux does not reuse a pid while a group of that id still has members, so
the signal cannot reach a stranger.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import stat
import subprocess
import sys
from collections.abc import Callable
from typing import Protocol, TextIO

import psutil

from common import lifeline
from supervisor.errors import StartError
from supervisor.ownership import owns_listener
from supervisor.probe import http_probe
from supervisor.relay import Relay
from supervisor.spec import ChildSpec

logger = logging.getLogger(__name__)

RELAY_JOIN_TIMEOUT_S = 2.0


class Process(Protocol):
    """What the supervision loop needs from a child: start, probe (ready), is_alive, terminate,
    kill, wait, close."""

    @property
    def pid(self) -> int: ...

    def start(self) -> None: ...

    def poll(self) -> int | None: ...

    def is_alive(self) -> bool: ...

    def probe(self, timeout_s: float) -> bool: ...

    def terminate(self) -> None: ...

    def kill(self) -> None: ...

    def wait(self, timeout_s: float) -> int | None: ...

    def close(self) -> None: ...


ProcessFactory = Callable[[ChildSpec], Process]


def describe_exit(returncode: int) -> str:
    """`exit code 3` or `signal SIGKILL`, for the lifecycle log lines."""
    if returncode < 0:
        with contextlib.suppress(ValueError):
            return f"signal {signal.Signals(-returncode).name}"
        return f"signal {-returncode}"
    return f"exit code {returncode}"


class ChildProcess:
    """One run of one child. A restart makes a new `ChildProcess` from the same spec."""

    def __init__(self, spec: ChildSpec, stdout: TextIO | None = None,
                 stderr: TextIO | None = None) -> None:
        self.spec = spec
        self._stdout = stdout if stdout is not None else sys.stdout
        self._stderr = stderr if stderr is not None else sys.stderr
        self._popen: subprocess.Popen[bytes] | None = None
        self._relays: list[Relay] = []
        self._descendants: list[psutil.Process] = []
        self._closed = False

    @property
    def pid(self) -> int:
        """The child's pid, which is also its process-group id."""
        return self._started().pid

    def start(self) -> None:
        """Spawn the child in a new session and start relaying its output."""
        _remove_stale_sockets(self.spec.stale_sockets)
        try:
            popen = subprocess.Popen(
                list(self.spec.argv), env=dict(self.spec.env),
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                start_new_session=True, close_fds=True,
                preexec_fn=_die_with_supervisor(os.getpid()))  # noqa: PLW1509 - see below
        except OSError as exc:
            raise StartError(self.spec.name, self.spec.argv, exc, self.spec.hint) from exc
        self._popen = popen
        assert popen.stdout is not None and popen.stderr is not None
        self._relays = [Relay(self.spec.name, popen.stdout, self._stdout),
                        Relay(self.spec.name, popen.stderr, self._stderr)]
        for relay in self._relays:
            relay.start()

    def poll(self) -> int | None:
        """The exit status once the child has exited (negative: killed by that signal)."""
        return self._started().poll()

    def is_alive(self) -> bool:
        """True until the leader has exited."""
        return self.poll() is None

    def probe(self, timeout_s: float) -> bool:
        """One probe of the spec's ReadyCheck; a child without one is ready when alive."""
        check = self.spec.ready
        if check is None:
            return self.is_alive()
        if not http_probe(check, timeout_s):
            return False
        if check.owned and not owns_listener(self.pid, check):
            logger.warning("child %s [%d]: %s answered, but no process of the child holds that "
                           "socket (another program listens there)", self.spec.name, self.pid,
                           check.describe())
            return False
        return True

    def terminate(self) -> None:
        """SIGTERM to the group (or the leader, see ChildSpec), remembering descendants for kill()."""
        self._remember_descendants()
        if self.spec.term_leader_only:
            popen = self._started()
            if popen.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(popen.pid, signal.SIGTERM)
                    os.kill(popen.pid, signal.SIGCONT)
            return
        self._signal_group(signal.SIGTERM)
        # A stopped process (SIGSTOP, a debugger) only acts on SIGTERM once continued.
        self._signal_group(signal.SIGCONT)

    def kill(self) -> None:
        """SIGKILL to the group and to every descendant, also those that left the group."""
        if not self._descendants:
            self._remember_descendants()
        self._signal_group(signal.SIGKILL)
        self._kill_remembered()

    def wait(self, timeout_s: float) -> int | None:
        """Wait up to `timeout_s` for the leader; its exit status, or None if still running."""
        try:
            return self._started().wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            return None

    def close(self) -> None:
        """After the leader exited: kill what is left of its group, stop relaying, tidy up.

        Idempotent; the supervisor calls it as soon as it has seen the exit.
        """
        popen = self._started()
        if self._closed:
            return
        if popen.poll() is None:
            logger.error("child %s [%d] is still running; leaving its pipes open",
                         self.spec.name, popen.pid)
            return
        self._closed = True
        # Right after reaping the leader the group id cannot belong to anybody else yet.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(popen.pid, signal.SIGKILL)
            logger.info("child %s [%d] left processes in its group; killed them",
                        self.spec.name, popen.pid)
        self._kill_remembered()
        for relay in self._relays:
            if not relay.join(RELAY_JOIN_TIMEOUT_S):
                logger.debug("child %s [%d]: output pipe still held open by another process",
                             self.spec.name, popen.pid)
        _remove_stale_sockets(self.spec.stale_sockets)

    def _started(self) -> subprocess.Popen[bytes]:
        if self._popen is None:
            raise RuntimeError(f"child {self.spec.name} was never started")
        return self._popen

    def _signal_group(self, signum: signal.Signals) -> None:
        popen = self._started()
        if popen.returncode is not None:
            return  # reaped: close() already dealt with the group
        with contextlib.suppress(ProcessLookupError):
            os.killpg(popen.pid, signum)

    def _remember_descendants(self) -> None:
        with contextlib.suppress(psutil.Error):
            self._descendants = psutil.Process(self.pid).children(recursive=True)

    def _kill_remembered(self) -> None:
        for proc in self._descendants:
            # psutil checks the creation time too, so a reused pid is never hit.
            with contextlib.suppress(psutil.Error):
                if proc.is_running():
                    proc.kill()
        self._descendants = []


def _die_with_supervisor(supervisor_pid: int) -> Callable[[], None]:
    """The `preexec_fn` that makes the child receive SIGTERM when the supervisor dies.

    SIGTERM, not SIGKILL: the child (Sanic's main, code-server's launcher) then stops its own
    children in order; whatever survives is killed by the next supervisor (instance_lock).
    Only the kernel call runs between fork and exec (no imports, no allocation of note); the
    loop starts children from its main thread only, as PR_SET_PDEATHSIG requires.
    """
    def arm() -> None:
        lifeline.arm(signal.SIGTERM, expected_parent=supervisor_pid)
    return arm


def _remove_stale_sockets(paths: tuple[str, ...]) -> None:
    """Unlink unix sockets a dead child left behind (only sockets, never other files)."""
    for path in paths:
        with contextlib.suppress(FileNotFoundError):
            if stat.S_ISSOCK(os.lstat(path).st_mode):
                os.unlink(path)
