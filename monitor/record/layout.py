"""The record's byte layout, in one place: the file is exactly RECORD_SIZE (16384) bytes,
little-endian, a 64-byte header then the payload.

======  ====  ======  ==========================================================
offset  size  type    field
======  ====  ======  ==========================================================
0       8     8s      magic ``b"WHUBSTAT"``
8       2     u16     format version (1); any other value reads as corrupt
10      2     u16     header size (64)
12      4     u32     record size (16384)
16      8     u64     sequence: even = stable, odd = a write is in progress
24      4     u32     payload length n (0 <= n <= 16320)
28      4     u32     CRC-32 over the length, the metadata and the payload:
                      ``zlib.crc32(payload, zlib.crc32(bytes[32:64], n))``
32      8     f64     written_at: unix time of the write (for display)
40      8     f64     written_monotonic: CLOCK_MONOTONIC of the write (for staleness;
                      system-wide on Linux, so comparable across processes)
48      8     f64     interval_s: the writer's probe interval
56      4     u32     writer pid
60      4     u32     flags: bit 0 = closed (the writer stopped cleanly)
64      n     bytes   payload: compact UTF-8 JSON of StatusRecord (see `StatusRecord.to_json`)
======  ====  ======  ==========================================================

Write protocol (one writer): seq += 1 (odd); payload; bytes 32..63; bytes 24..31;
seq += 1 (even). Read protocol: load seq s1 (retry while odd); copy header and payload;
load seq s2; retry unless s1 == s2; then check magic, version, length and CRC. CPython
issues no memory fences; x86-64 keeps store order but ARM64 may not, so the CRC over the
length, metadata and payload is the second guard against a torn read.
"""

from __future__ import annotations

import mmap
import os
import struct
import sys
import zlib
from pathlib import Path

from monitor.record.errors import RecordError

MAGIC = b"WHUBSTAT"
FORMAT_VERSION = 1
HEADER_SIZE = 64
RECORD_SIZE = 16384
PAYLOAD_CAPACITY = RECORD_SIZE - HEADER_SIZE
STALE_INTERVALS = 3
FLAG_CLOSED = 0x1

# Byte offsets of the header fields (the table above).
OFF_MAGIC = 0
OFF_VERSION = 8
OFF_SEQ = 16
OFF_LENGTH = 24
OFF_CRC = 28
OFF_META = 32

PREFIX = struct.Struct("<8sHHI")  # magic, version, header size, record size
LEN_CRC = struct.Struct("<II")  # payload length, crc32
META = struct.Struct("<dddII")  # written_at, written_monotonic, interval_s, writer pid, flags
PREFIX_BYTES = PREFIX.pack(MAGIC, FORMAT_VERSION, HEADER_SIZE, RECORD_SIZE)
SEQ_WORD = OFF_SEQ // 8  # index of the sequence in the mapping viewed as native uint64 words


def payload_crc(length: int, meta: bytes | memoryview, payload: bytes | memoryview) -> int:
    return zlib.crc32(payload, zlib.crc32(meta, length))


def check_platform() -> None:
    # The sequence word is read and written as a native uint64 (one aligned load or store);
    # the layout is little-endian, so refuse a big-endian host rather than misread it.
    if sys.byteorder != "little":
        raise RecordError("the status record needs a little-endian host")


def map_fd(fd: int, *, writable: bool) -> tuple[mmap.mmap, memoryview]:
    access = mmap.ACCESS_WRITE if writable else mmap.ACCESS_READ
    mm = mmap.mmap(fd, RECORD_SIZE, access=access)
    return mm, memoryview(mm).cast("Q")


def check_owner(fd: int, path: Path, uid: int) -> os.stat_result:
    # /dev/shm is world-writable: a file planted by another user must not be trusted or fed.
    st = os.fstat(fd)
    if st.st_uid != uid:
        raise RecordError(f"{path} is owned by uid {st.st_uid}, not {uid}")
    return st
