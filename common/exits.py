"""Exit statuses, the same for `supervisor_main.py`, `python -m gateway` and `python -m monitor`.

The supervisor never restarts a child that exited with CONFIG_ERROR: a bad setting does not fix
itself, so restarting would only turn a typo into a crash loop.
"""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    """What a WAIIDE Hub process's exit status means (uvicorn also names STARTUP_FAILURE = 3)."""

    OK = 0  # clean stop after SIGTERM/SIGINT
    FAILED = 1  # a crash, or (supervisor) a second signal cut the graceful stop short
    CONFIG_ERROR = 2  # a variable has a bad value; nothing was started
    STARTUP_FAILURE = 3  # something could not be started (a port, a child, a file)
