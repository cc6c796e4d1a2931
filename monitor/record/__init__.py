"""The shared-memory status record: its data model, byte layout, writer and reader.

This package is the only place that knows the format:

    model     StatusRecord, ComponentStatus (what the monitor writes), StatusView (what a reader saw)
    layout    the byte layout (its docstring is the format spec), constants, checks
    writer    RecordWriter: the single writer (the monitor)
    reader    RecordReader: the lock-free reader (every gateway worker)
    paths     default_record_path: where the record lives
    errors    RecordError and its subclasses
 The monitor writes one fixed-size record
per probe tick; every gateway worker reads it on every status request, with no lock, no I/O and
no system call while the record is mapped and fresh. It is stdlib-only so that the gateway may
import it (the one `monitor` module it may import) without pulling in the monitor's dependencies.

Why a file under /dev/shm plus `mmap`, and not `multiprocessing.shared_memory`: on Python < 3.13
every `SharedMemory` attach registers the segment with that process's resource tracker, which
unlinks it when the process exits (CPython gh-82300), so a gateway worker exiting would delete
the monitor's segment. A plain file has no tracker.

Reading rules, in order of precedence (a reader is never "healthy" by default):
missing file -> unknown "no record yet"; corrupt header or payload -> unknown "corrupt: ...";
writer closed it -> unknown "monitor stopped"; older than 3 intervals -> unknown "record is stale".
"""

from __future__ import annotations

from monitor.record.errors import RecordBusy, RecordCorrupt, RecordError, RecordTooLarge
from monitor.record.layout import (
    FORMAT_VERSION,
    HEADER_SIZE,
    MAGIC,
    PAYLOAD_CAPACITY,
    RECORD_SIZE,
    STALE_INTERVALS,
)
from monitor.record.model import (
    COMPONENT_NAMES,
    ComponentName,
    ComponentState,
    ComponentStatus,
    Liveness,
    OverallState,
    StatusRecord,
    StatusView,
    ViewState,
)
from monitor.record.paths import PATH_ENV, default_record_path
from monitor.record.reader import RecordReader
from monitor.record.writer import RecordWriter

__all__ = [
    "COMPONENT_NAMES", "FORMAT_VERSION", "HEADER_SIZE", "MAGIC", "PATH_ENV", "PAYLOAD_CAPACITY",
    "RECORD_SIZE", "STALE_INTERVALS", "ComponentName", "ComponentState", "ComponentStatus",
    "Liveness", "OverallState", "RecordBusy", "RecordCorrupt", "RecordError", "RecordReader",
    "RecordTooLarge", "RecordWriter", "StatusRecord", "StatusView", "ViewState",
    "default_record_path",
]
