"""`RecordWriter`: the record's single writer (the monitor). Layout: `monitor.record.layout`."""

from __future__ import annotations

import fcntl
import mmap
import os
import time
from pathlib import Path
from typing import Self

from monitor.record.errors import RecordBusy, RecordError, RecordTooLarge
from monitor.record.layout import (
    FLAG_CLOSED,
    HEADER_SIZE,
    LEN_CRC,
    META,
    OFF_LENGTH,
    OFF_META,
    PAYLOAD_CAPACITY,
    PREFIX,
    PREFIX_BYTES,
    RECORD_SIZE,
    SEQ_WORD,
    check_owner,
    check_platform,
    map_fd,
    payload_crc,
)
from monitor.record.model import StatusRecord

_OPEN_FLAGS = os.O_RDWR | os.O_CLOEXEC | os.O_NOFOLLOW


class RecordWriter:
    """The single writer (the monitor). `open()`, then `write()` each tick, then `close()`.

    One writer is enforced with an advisory `flock` on the record file; a second writer gets
    RecordBusy. A restarted writer takes over the existing file (same inode, so mapped readers
    keep working) after making the sequence even: a crash mid-write leaves it odd. A file of the
    wrong size or version is replaced (unlink + create) rather than resized, because shrinking a
    file under a reader's mapping would raise SIGBUS in the reader.
    """

    def __init__(self, path: Path, interval_s: float, *, uid: int | None = None) -> None:
        """
        Args:
            uid: the owner the file must have (default: this process's uid).
        """
        self.path = path
        self.interval_s = interval_s
        self._uid = os.getuid() if uid is None else uid
        self._fd: int | None = None
        self._mm: mmap.mmap | None = None
        self._words: memoryview | None = None
        self._seq = 0

    def open(self) -> None:
        """Create or take over the record file and map it.

        Raises:
            RecordBusy: another writer holds it.
            RecordError: it belongs to another user, or the host is big-endian.
            OSError: the directory is missing or not writable.
        """
        check_platform()
        fd = self._open_locked()
        try:
            st = check_owner(fd, self.path, self._uid)
            if st.st_size != RECORD_SIZE or os.pread(fd, PREFIX.size, 0) != PREFIX_BYTES:
                if st.st_size != 0:
                    os.close(fd)
                    fd = self._replace_file()
                os.ftruncate(fd, RECORD_SIZE)
                os.pwrite(fd, PREFIX_BYTES, 0)
            self._mm, self._words = map_fd(fd, writable=True)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        seq = self._words[SEQ_WORD]
        self._seq = seq + 1 if seq & 1 else seq
        self._words[SEQ_WORD] = self._seq

    def _open_locked(self) -> int:
        fd = os.open(self.path, _OPEN_FLAGS | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            os.close(fd)
            raise RecordBusy(f"another writer holds {self.path}") from exc
        return fd

    def _replace_file(self) -> int:
        self.path.unlink(missing_ok=True)
        try:
            fd = os.open(self.path, _OPEN_FLAGS | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError as exc:
            raise RecordBusy(f"another writer re-created {self.path} meanwhile") from exc
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return fd

    def write(self, record: StatusRecord, *, written_at: float | None = None,
              written_monotonic: float | None = None) -> int:
        """Publish `record`; returns the new (even) sequence number.

        Raises:
            RecordTooLarge: the encoded record does not fit.
        """
        payload = record.to_json()
        return self._publish(payload, 0, written_at, written_monotonic)

    def _publish(self, payload: bytes, flags: int, written_at: float | None,
                 written_monotonic: float | None) -> int:
        if self._mm is None or self._words is None:
            raise RecordError("writer is not open")
        if len(payload) > PAYLOAD_CAPACITY:
            raise RecordTooLarge(f"record is {len(payload)} bytes, capacity {PAYLOAD_CAPACITY}")
        meta = META.pack(time.time() if written_at is None else written_at,
                          time.monotonic() if written_monotonic is None else written_monotonic,
                          self.interval_s, os.getpid(), flags)
        len_crc = LEN_CRC.pack(len(payload), payload_crc(len(payload), meta, payload))
        mm, words = self._mm, self._words
        # Seqlock: odd while the bytes change. Each store is a slice assignment (one memcpy),
        # not struct.pack_into, which may write field by field (prometheus mmap_dict does the
        # same); the sequence word is one aligned 8-byte store through the uint64 view.
        # Continue from the word in the file, not a private counter, so the sequence can never
        # repeat a value a reader has cached, whatever else touched the file.
        odd = words[SEQ_WORD] | 1
        words[SEQ_WORD] = odd
        mm[HEADER_SIZE:HEADER_SIZE + len(payload)] = payload
        mm[OFF_META:HEADER_SIZE] = meta
        mm[0:PREFIX.size] = PREFIX_BYTES  # constant; rewriting it heals a damaged header
        mm[OFF_LENGTH:OFF_META] = len_crc
        self._seq = odd + 1
        words[SEQ_WORD] = self._seq
        return self._seq

    def relink(self) -> bool:
        """Re-create the record if its path no longer names the mapped file; True if it did.

        Something may delete the file under a running monitor: systemd-logind's RemoveIPC
        empties /dev/shm of a user's files at logout on many distributions. The writer would go
        on writing an unlinked inode nobody can open. Called every tick: a stat and an fstat.
        The old mapping is marked closed afterwards, so readers still mapping it look again
        at the path at once (`RecordReader`) and find the new file.

        Raises:
            RecordBusy, RecordError, OSError: as `open()`; the old file stays in use.
        """
        fd = self._fd
        if fd is None or _names(self.path, fd):
            return False
        old = (self._fd, self._mm, self._words, self._seq)
        self._fd, self._mm, self._words = None, None, None
        try:
            self.open()
        except BaseException:
            self._fd, self._mm, self._words, self._seq = old
            raise
        new = (self._fd, self._mm, self._words, self._seq)
        self._fd, self._mm, self._words, self._seq = old
        self._publish(b"", FLAG_CLOSED, None, None)
        self._release()
        self._fd, self._mm, self._words, self._seq = new
        return True

    def close(self, *, unlink: bool = True) -> None:
        """Mark the record closed (readers report "monitor stopped"), unmap, and unlink it."""
        if self._mm is None or self._fd is None:
            return
        self._publish(b"", FLAG_CLOSED, None, None)
        if unlink:
            self.path.unlink(missing_ok=True)
        self._release()

    def abandon(self) -> None:
        """Unmap and drop the lock without touching the file (what a crash leaves; for tests)."""
        self._release()

    def _release(self) -> None:
        if self._words is not None:
            self._words.release()
        if self._mm is not None:
            self._mm.close()
        if self._fd is not None:
            os.close(self._fd)
        self._words, self._mm, self._fd = None, None, None

    def __enter__(self) -> Self:
        self.open()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _names(path: Path, fd: int) -> bool:
    """True while `path` names the file open as `fd`."""
    try:
        st = os.stat(path, follow_symlinks=False)
    except OSError:
        return False
    own = os.fstat(fd)
    return (st.st_dev, st.st_ino) == (own.st_dev, own.st_ino)
