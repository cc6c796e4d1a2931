"""SIGTERM and SIGINT in the gateway's main process, handled where they cannot hang it.

Sanic 25.12's manager handles them in the signal handler itself: it writes every worker's state
through the sync manager's connection. Python runs a handler in the main thread between two
bytecodes, also in the middle of the main thread's own call on that same connection (its loop
reads the workers' states several times a second), and the two exchanges interleave: the main
process then waits for an answer that never comes. Seen as a `python -m gateway` that, stopped
right after its workers started, hung until it was SIGKILLed (every time, in the group-signal
test), and possible at any stop.

So the handler installed here does no I/O: it hands the stop to a thread of its own (a thread
gets its own connection to the sync manager), and while Sanic still waits for the workers'
first acknowledgement, when a stop would leave that loop spinning on the stop message it keeps
re-posting, it holds the stop back until the wait ends.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType
from typing import Any

from sanic import Sanic


class StopSignals:
    """Installed once in the main process, from Sanic's `main_process_ready` listener."""

    def __init__(self) -> None:
        self._manager: Any = None
        self._workers_acked = False
        self._held: int | None = None

    def install(self, app: Sanic[Any, Any]) -> None:
        manager: Any = app.manager  # gateway.sanic_compat lists what is used of it
        self._manager = manager
        wait_for_ack = manager.wait_for_ack

        def wait_then_stop_if_asked() -> None:
            wait_for_ack()  # raises ServerKilled when a worker never came up: no stop then
            self._workers_acked = True
            if self._held is not None:
                self._stop(self._held)

        manager.wait_for_ack = wait_then_stop_if_asked
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        if not self._workers_acked:
            self._held = signum
            return
        self._stop(signum)

    def _stop(self, signum: int) -> None:
        # Sanic's own handler, run where it has a connection of its own; a second signal is
        # Sanic's "kill now", as before.
        threading.Thread(target=self._manager.shutdown_signal, args=(signum, None),
                         name=f"stop-on-{signal.Signals(signum).name}", daemon=True).start()
