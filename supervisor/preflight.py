"""Every child's settings validated before any child starts, in one place.

The supervisor may not import the gateway or the monitor (tests/test_layering.py), and their
settings are theirs to judge. So each of our own children is asked: its command plus
`--check-config`, run with exactly the environment it will get, reads its `Config.from_env`,
prints nothing and exits 0, or prints one message naming the variable and exits CONFIG_ERROR.
All checks run at once (a Python start each, ~0.2 s in parallel) before the first child starts:
a typo in MONITOR_INTERVAL stops the start with that message, instead of a ready banner followed
by a monitor that exits and restarts forever.
"""

from __future__ import annotations

import logging
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass

from common.exits import ExitCode
from supervisor.spec import ChildSpec

logger = logging.getLogger(__name__)

CHECK_TIMEOUT_S = 30.0


@dataclass(frozen=True, slots=True)
class PreflightFailure:
    """The first child whose settings are bad, and its message."""

    name: str
    exit_code: int
    message: str


def check_settings(specs: Sequence[ChildSpec]) -> PreflightFailure | None:
    """Run each spec's `check_argv` with its env; the first failure in start order, or None."""
    running = []
    for spec in specs:
        if not spec.check_argv:
            continue
        try:
            proc = subprocess.Popen(list(spec.check_argv), env=dict(spec.env),
                                    stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT)
        except OSError as exc:
            return PreflightFailure(spec.name, ExitCode.STARTUP_FAILURE,
                                    f"cannot run {spec.check_argv[0]}: {exc.strerror or exc}")
        running.append((spec, proc))
    failure = None
    for spec, proc in running:
        try:
            out, _ = proc.communicate(timeout=CHECK_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
            code: int = ExitCode.STARTUP_FAILURE
            message = f"its settings check did not finish within {CHECK_TIMEOUT_S:.0f}s"
        else:
            code = proc.returncode
            message = out.decode(errors="replace").strip()
        if code != 0 and failure is None:
            failure = PreflightFailure(spec.name, code, message or f"exit code {code}")
    return failure
