"""Prints each fault's measured recovery time at the end of the session (for the issue's note)."""

from __future__ import annotations

import pytest

from tests.faults.stack import RECOVERY


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not RECOVERY:
        return
    terminalreporter.section("fault recovery times (this run)")
    for name, seconds in RECOVERY.items():
        terminalreporter.write_line(f"{name:<60} {seconds:7.2f} s")
