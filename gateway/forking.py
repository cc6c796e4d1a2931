"""What every process Sanic forks from the gateway's main process gets at birth.

The workers are forked, not spawned: they share the main process's imported modules copy on
write instead of importing everything again, and no multiprocessing resource tracker is started
(bench/memory.py, the whole stack but the IDE: 132 MiB PSS spawned, 97 MiB forked).

Forking brings three duties, carried out by an `os.register_at_fork` hook in each direct child:
- **Die with the main process.** The kernel's parent-death signal (`common.lifeline`) is armed
  before the child runs any of Sanic's code, so neither a worker nor Sanic's sync manager (which
  has no such signal of its own) outlives a SIGKILLed main process holding the ports.
- **Only servers hold the listening sockets.** The main process binds API_SERVER_PORT and PORT
  once, before Sanic starts (`gateway.listen`), and a fork copies every descriptor. Sanic 25.12
  forks its sync manager first and only then runs the `main_process_start` listeners and forks the
  workers; so a child forked before that event is not a server and closes its copies. Were a
  future Sanic to fork its manager later, the manager would keep copies (and still die with the
  main process); the gateway tests count the processes holding the port and would notice.
- **The sync manager lives exactly as long as the main process**: the main stops it with a
  message at the end of its own shutdown, which needs it until then, or the parent-death signal
  kills it. So it ignores SIGTERM, SIGINT and SIGHUP: a signal to the whole process group
  (Ctrl-C in a terminal, a group SIGTERM) used to kill it first and the main process's shutdown
  ended in a ConnectionResetError traceback.

A worker starts with the default SIGTERM/SIGINT actions until Sanic sets its own (the main
process's handler would stop the whole gateway from inside a worker). A child's own forks
(anything a worker might start) are left alone: the hook acts only in a
direct child of the process that installed it.
"""

from __future__ import annotations

import os
import signal
import socket
from typing import Any

from common import lifeline


class ForkedChildren:
    """Installs the at-fork hook for one main process (see the module docstring).

    Args:
        listening: the sockets bound by the main process for the workers.
    """

    def __init__(self, listening: list[socket.socket]) -> None:
        self._listening = listening
        self._owner_pid: int | None = None
        self._servers_next = False

    def install(self) -> None:
        """Register the hook; call once, in the main process, before `Sanic.serve`."""
        self._owner_pid = os.getpid()
        os.register_at_fork(after_in_child=self._after_fork_in_child)

    def servers_next(self, *_args: Any) -> None:
        """From now on a forked child is a server worker (Sanic's `main_process_start`)."""
        self._servers_next = True

    def _after_fork_in_child(self) -> None:
        owner, self._owner_pid = self._owner_pid, None  # this child's own forks are not ours
        if owner is None:
            return
        lifeline.arm(signal.SIGKILL, expected_parent=owner)
        if not self._servers_next:  # Sanic's sync manager
            for sock in self._listening:
                sock.close()
            for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                signal.signal(signum, signal.SIG_IGN)
        else:  # a worker: the main process's stop handler is not its own (Sanic sets those)
            for signum in (signal.SIGTERM, signal.SIGINT):
                signal.signal(signum, signal.SIG_DFL)
