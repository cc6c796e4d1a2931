"""What the supervisor knows about a child before it runs: command, environment, readiness, policy.

Everything here is immutable and cheap; `supervisor.components` builds these from the config and
`supervisor.supervisor.Supervisor` runs them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class ReadyCheck:
    """An HTTP GET whose any response means "the child is serving" (JSP `_http_ready_func`).

    `url` names host, port and path; with `unix_socket` the request goes over that socket and
    only the path of `url` is used.
    """

    url: str
    unix_socket: str | None = None
    # The listener that answered must belong to the child's own process tree
    # (supervisor.ownership); off for a check that dials another child (the monitor's).
    owned: bool = True
    # The answer must be the gateway's /api/status JSON with a known "status": the monitor has
    # written its first record and the gateway reads it.
    known_status: bool = False

    def describe(self) -> str:
        """The probe target as it appears in logs."""
        return f"{self.url} via {self.unix_socket}" if self.unix_socket else self.url


@dataclass(frozen=True, slots=True)
class RestartPolicy:
    """Capped exponential backoff with a reset after a stable uptime, plus flap detection.

    The n-th consecutive quick exit waits `backoff_initial_s * 2**(n-1)`, capped at
    `backoff_max_s`. A child that ran `stable_uptime_s` or longer starts again from the initial
    delay. `flap_restarts` exits within `flap_window_s` mark it flapping: it is reported loudly
    and restarted only every `backoff_max_s` until it stays up.
    """

    backoff_initial_s: float = 1.0
    backoff_max_s: float = 30.0
    stable_uptime_s: float = 30.0
    flap_restarts: int = 5
    flap_window_s: float = 60.0


@dataclass(frozen=True, slots=True)
class LivenessPolicy:
    """Periodic probes of a running child; `failures` consecutive misses restart it.

    Sanic does not respawn dead workers (sanic#3062), so for the gateway this probe is the
    backstop: a gateway that stops answering while its process lives is restarted.
    """

    interval_s: float = 5.0
    timeout_s: float = 2.0
    failures: int = 3


@dataclass(frozen=True, slots=True)
class ChildSpec:
    """One supervised child.

    Args:
        name: the component name used in logs, output prefixes and the components file.
        argv: the full command; argv[0] is executed directly (no shell).
        env: the complete environment of the child (built explicitly, never the supervisor's own).
        ready: the readiness probe, or None when the child has nothing to probe.
        ready_timeout_s: deadline for the first answer after each start.
        stop_timeout_s: time between SIGTERM to the group and SIGKILL.
        restart: backoff and flap detection.
        liveness: probes while running (None: only the process's own exit counts).
        hint: appended to the error when argv[0] cannot be executed.
        stale_sockets: unix socket files the child binds; removed before each start and at stop.
        term_leader_only: SIGTERM goes to the leader alone, which stops its own children in order
            (Sanic's main process: signalling its whole group kills its manager process first,
            and the main then fails with a BrokenPipe traceback); SIGKILL still takes the group.
        check_argv: a command that validates the child's settings with `env` and exits 0, or
            CONFIG_ERROR with one message (supervisor.preflight); empty: nothing to check.
        config_exit: the child follows `common.exits`: exit code CONFIG_ERROR means a bad
            setting, so the supervisor stops everything instead of restarting it.
    """

    name: str
    argv: tuple[str, ...]
    env: Mapping[str, str]
    ready: ReadyCheck | None = None
    ready_timeout_s: float = 60.0
    stop_timeout_s: float = 5.0
    restart: RestartPolicy = field(default_factory=RestartPolicy)
    liveness: LivenessPolicy | None = None
    hint: str = ""
    stale_sockets: tuple[str, ...] = ()
    term_leader_only: bool = False
    check_argv: tuple[str, ...] = ()
    config_exit: bool = False
