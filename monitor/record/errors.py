"""The status record's errors.

RecordError
 ├─ RecordCorrupt    the bytes do not form a valid record (bad magic, version, length, CRC, payload)
 ├─ RecordTooLarge   the encoded record does not fit the fixed payload capacity
 └─ RecordBusy       another writer holds the record (one writer only)
"""

from __future__ import annotations


class RecordError(Exception):
    """Base class of the record's errors (the tree is in the module docstring)."""


class RecordCorrupt(RecordError):
    """The bytes at the record path do not form a valid record."""


class RecordTooLarge(RecordError):
    """The encoded record exceeds PAYLOAD_CAPACITY."""


class RecordBusy(RecordError):
    """Another live process holds the writer lock on the record file."""
