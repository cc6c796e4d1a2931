"""The supervisor's exceptions and the exit codes `supervisor_main.main()` turns them into.

Hierarchy:

    common.errors.WaiideHubError
     ├── common.errors.ConfigError  a variable has a bad value; nothing was started -> CONFIG_ERROR
     └── SupervisorError
          └── StartError       a child's command could not be executed at all  -> STARTUP_FAILURE
                               (at first start; later it is treated like a crash)

A child that starts but never becomes ready is not an exception: `Supervisor.run()` reports it
and returns `ExitCode.STARTUP_FAILURE` after stopping what it started.
"""

from __future__ import annotations

from collections.abc import Sequence

from common.errors import WaiideHubError


class SupervisorError(WaiideHubError):
    """Base class of everything the supervisor raises on purpose."""


class StartError(SupervisorError):
    """A child's command could not be executed (missing binary, not executable)."""

    def __init__(self, name: str, argv: Sequence[str], cause: OSError, hint: str = "") -> None:
        program = argv[0] if argv else "<empty command>"
        message = f"cannot start {name}: {program}: {cause.strerror or cause}"
        if hint:
            message += f"; {hint}"
        super().__init__(message)
        self.name = name
