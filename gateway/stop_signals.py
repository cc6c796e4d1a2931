"""SIGTERM and SIGINT in the gateway's main process, handled where they cannot hang it.

Sanic 25.12's manager handles them in the signal handler itself: it writes every worker's state
through the sync manager's connection. Python runs a handler in the main thread between two
bytecodes, also in the middle of the main thread's own call on that same connection (its loop
reads the workers' states several times a second), and the two exchanges interleave: the main
process then waits for an answer that never comes. Measured: 5 of 20 SIGTERMs sent within
0.5 s of the workers' start hung `python -m gateway` until it was SIGKILLed.

So the handler here only writes the signal's number to a pipe (no lock, no I/O on a shared
connection: a handler that takes a lock the interrupted thread holds deadlocks, see
supervisor/supervisor.py). A thread of its own (with its own connection to the sync manager)
reads the pipe and stops the workers the way Sanic does, in an order that cannot race the main
loop's clean-up: first the workers are marked and signalled, then the main loop is told to end.
While Sanic still waits for the workers' first acknowledgement (that loop would spin re-posting
the stop message) the stop waits for it. A second signal is Sanic's "kill now", as before.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import signal
import threading
from types import FrameType
from typing import Any

from sanic import Sanic
from sanic.exceptions import ServerKilled

logger = logging.getLogger(__name__)

_ACK_POLL_S = 0.05


class StopSignals:
    """Installed once in the main process, from Sanic's `main_process_ready` listener."""

    def __init__(self) -> None:
        self._manager: Any = None
        self._acked = threading.Event()
        self._read_fd = self._write_fd = -1

    def install(self, app: Sanic[Any, Any]) -> None:
        manager: Any = app.manager  # gateway.sanic_compat lists what is used of it
        self._manager = manager
        self._read_fd, self._write_fd = os.pipe()
        os.set_blocking(self._write_fd, False)
        wait_for_ack = manager.wait_for_ack

        def wait_then_let_a_stop_go() -> None:
            wait_for_ack()  # raises ServerKilled when a worker never came up
            self._acked.set()

        manager.wait_for_ack = wait_then_let_a_stop_go
        threading.Thread(target=self._run, name="stop-signals", daemon=True).start()
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        with contextlib.suppress(BlockingIOError):  # a full pipe holds enough signals already
            os.write(self._write_fd, bytes([signum]))

    def _next_signal(self, timeout_s: float | None) -> int | None:
        ready, _, _ = select.select([self._read_fd], [], [], timeout_s)
        return os.read(self._read_fd, 1)[0] if ready else None

    def _run(self) -> None:
        first = self._next_signal(None)
        assert first is not None
        manager = self._manager
        manager._shutting_down = True  # the worker keeper restarts nothing from now on
        while not self._acked.is_set():
            if self._next_signal(_ACK_POLL_S) is not None:
                self._kill()
                return
        logger.info("Received signal %s. Shutting down.", signal.Signals(first).name)
        manager.shutdown()  # marks every worker terminated and signals it
        manager.monitor_publisher.send(None)  # only then: the main loop ends and cleans up
        self._next_signal(None)
        self._kill()

    def _kill(self) -> None:
        logger.warning("Shutdown interrupted. Killing.")
        with contextlib.suppress(ServerKilled):
            self._manager.kill()
