"""An IDE stand-in that ignores SIGTERM, as a hung or careless program may: it runs the fake
IDE (tests/resources/fake_waiide.py) as its own child, in its process group, and waits.

    python stubborn_ide.py --port N

Only SIGKILL stops it; its child keeps the port. For the test that a dead supervisor's leftovers
are cleaned up by the next one.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

from childlib import cap_lifetime

if __name__ == "__main__":
    cap_lifetime()
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    fake = Path(__file__).resolve().parent.parent / "fake_waiide.py"
    child = subprocess.Popen([sys.executable, str(fake), *sys.argv[1:]])
    child.wait()
