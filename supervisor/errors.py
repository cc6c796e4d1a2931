"""The supervisor's exceptions and the exit codes `supervisor_main.main()` turns them into.

Hierarchy:

    SupervisorError
     ├── ConfigError      a variable has a bad value; nothing was started  -> CONFIG_ERROR
     └── StartError       a child's command could not be executed at all  -> STARTUP_FAILURE
                          (at first start; later it is treated like a crash)

A child that starts but never becomes ready is not an exception: `Supervisor.run()` reports it
and returns `ExitCode.STARTUP_FAILURE` after stopping what it started.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence


class ExitCode(enum.IntEnum):
    """Exit statuses of `python supervisor_main.py` (uvicorn also names STARTUP_FAILURE = 3)."""

    OK = 0  # clean stop after SIGTERM/SIGINT
    FORCED_STOP = 1  # a second signal cut the graceful stop short; children were SIGKILLed
    CONFIG_ERROR = 2  # a variable has a bad value
    STARTUP_FAILURE = 3  # a child could not be started or did not become ready in time


class SupervisorError(Exception):
    """Base class of everything the supervisor raises on purpose."""


class ConfigError(SupervisorError):
    """A configuration variable has a value the supervisor cannot use (starlette wording)."""

    def __init__(self, key: str, value: str, reason: str) -> None:
        super().__init__(f"Config '{key}' has value '{value}'. {reason}")
        self.key = key
        self.value = value


class StartError(SupervisorError):
    """A child's command could not be executed (missing binary, not executable)."""

    def __init__(self, name: str, argv: Sequence[str], cause: OSError, hint: str = "") -> None:
        program = argv[0] if argv else "<empty command>"
        message = f"cannot start {name}: {program}: {cause.strerror or cause}"
        if hint:
            message += f"; {hint}"
        super().__init__(message)
        self.name = name
