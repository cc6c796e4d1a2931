"""A process dies with its parent: Linux's PR_SET_PDEATHSIG, set through libc's prctl.

The supervisor sets it in each child between fork and exec (`preexec_fn`), and every gateway
worker sets it for itself: when the parent dies, even by SIGKILL (an OOM kill, a hard kill by a
local-process spawner), the kernel sends the child the signal, so no child outlives its
supervisor holding the ports (prctl(2)).

Caveats, from prctl(2): the signal fires when the parent *thread* that forked the child exits,
so only the main thread may start children; and a parent that died before the call is missed,
which `arm()` checks afterwards (the orphan is then re-parented, so getppid() changed).
Stdlib only; a no-op (returning False) where prctl does not exist.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import sys

PR_SET_PDEATHSIG = 1  # linux/prctl.h


def _libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    name = ctypes.util.find_library("c") or "libc.so.6"
    try:
        return ctypes.CDLL(name, use_errno=True)
    except OSError:
        return None


_LIBC = _libc()  # loaded once, before any fork: preexec_fn must not load libraries


def arm(signum: int = signal.SIGKILL, expected_parent: int | None = None) -> bool:
    """Ask the kernel to send `signum` to this process when its parent dies.

    Args:
        expected_parent: the parent's pid as the parent saw it before forking; if the parent is
            already gone (getppid() differs), the signal is raised at once.
    Returns:
        False where the call is not available (not Linux, or prctl failed).
    """
    if _LIBC is None:
        return False
    if _LIBC.prctl(PR_SET_PDEATHSIG, signum, 0, 0, 0) != 0:
        return False
    if expected_parent is not None and os.getppid() != expected_parent:
        os.kill(os.getpid(), signum)  # the parent died before the call: follow it now
    return True
