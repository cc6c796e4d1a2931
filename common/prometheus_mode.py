"""Whether prometheus_client runs in multiprocess mode in this process.

prometheus_client decides at import time, from PROMETHEUS_MULTIPROC_DIR's presence, which value
class every metric uses. This is checked without importing it (this package is stdlib-only):
if it was never imported, nothing was decided yet.
"""

from __future__ import annotations

import sys


def multiprocess_active() -> bool:
    """True when prometheus_client was imported with PROMETHEUS_MULTIPROC_DIR set."""
    values = sys.modules.get("prometheus_client.values")
    if values is None:
        return False
    return bool(getattr(values, "ValueClass", None) is not getattr(values, "MutexValue", None))
