"""`RecordReader`: the lock-free reader of the status record, one per gateway worker."""

from __future__ import annotations

import math
import mmap
import os
import time
from pathlib import Path

from monitor.record.errors import RecordCorrupt, RecordError
from monitor.record.layout import (
    FLAG_CLOSED,
    FORMAT_VERSION,
    HEADER_SIZE,
    LEN_CRC,
    MAGIC,
    META,
    OFF_LENGTH,
    OFF_META,
    PAYLOAD_CAPACITY,
    PREFIX,
    RECORD_SIZE,
    SEQ_WORD,
    STALE_INTERVALS,
    check_owner,
    check_platform,
    map_fd,
    payload_crc,
)
from monitor.record.model import StatusRecord, StatusView, unknown_view

_READ_TRIES = 64
_DEFAULT_REOPEN_INTERVAL_S = 1.0


class _Decoded:
    """A record decoded from one sequence number, kept so the same seq is never decoded twice."""

    __slots__ = ("max_age_s", "seq", "view", "written_monotonic")

    def __init__(self, seq: int, view: StatusView, written_monotonic: float,
                 max_age_s: float) -> None:
        self.seq = seq
        self.view = view
        self.written_monotonic = written_monotonic
        self.max_age_s = max_age_s


class _Mapping:
    __slots__ = ("inode", "mm", "words")

    def __init__(self, mm: mmap.mmap, words: memoryview, inode: tuple[int, int]) -> None:
        self.mm = mm
        self.words = words
        self.inode = inode


class RecordReader:
    """A lock-free reader of the status record; one per gateway worker.

    The byte layout and the read protocol are `monitor.record.layout`'s docstring.

    Cost: while the sequence is unchanged and the record fresh, `read()` is one aligned load of
    the sequence word and a comparison; the JSON is decoded once per sequence number. The file is
    opened lazily and, while it is missing, again at every read (a failed open is cheap, and a
    throttled retry would let workers disagree right after the monitor's first write). While
    the view is stale, closed or corrupt, the reader checks at most that often whether the file
    was replaced (a new writer after a clean stop creates a new inode) and remaps it.

    Thread use: `read()` may run concurrently in several threads (event loop and a metrics
    executor); state changes are single attribute swaps. `close()` must not race `read()`.
    """

    def __init__(self, path: Path, *, max_age_s: float | None = None,
                 reopen_interval_s: float = _DEFAULT_REOPEN_INTERVAL_S,
                 uid: int | None = None) -> None:
        """
        Args:
            uid: the owner the file must have (default: this process's uid).
            max_age_s: age beyond which the record reads as stale; default STALE_INTERVALS
                times the interval the writer put in the header.
            reopen_interval_s: how often to retry opening a missing file, or to look for a
                replaced file while the view is not healthy-and-fresh.
        """
        self.path = path
        self._uid = os.getuid() if uid is None else uid
        self._max_age_s = max_age_s
        self._reopen_interval_s = reopen_interval_s
        self._mapping: _Mapping | None = None
        self._decoded: _Decoded | None = None
        # (mapping words, seq, view, valid until monotonic): the whole fast path in one tuple.
        self._fast: tuple[memoryview, int, StatusView, float] | None = None
        self._absent = unknown_view(f"no record yet at {path} (monitor not started?)")
        self._recheck_at = -math.inf
        self._was_mapped = False

    def read(self, now: float | None = None) -> StatusView:
        """The current view. `now` is `time.monotonic()` (taken if not given)."""
        if now is None:
            now = time.monotonic()
        fast = self._fast
        if fast is not None and now < fast[3]:
            try:
                if fast[0][SEQ_WORD] == fast[1]:
                    return fast[2]
            except ValueError:  # the mapping was released by close(); fall through
                pass
        return self._read_slow(now)

    def close(self) -> None:
        """Unmap the record (at worker shutdown)."""
        mapping, self._mapping, self._fast, self._decoded = self._mapping, None, None, None
        if mapping is not None:
            mapping.words.release()
            mapping.mm.close()

    # -- slow path: open, decode, staleness ------------------------------------------------

    def _read_slow(self, now: float) -> StatusView:
        mapping = self._mapping
        if mapping is None:
            if now < self._recheck_at:
                return self._absent
            mapping = self._open(now)
            if mapping is None:
                return self._absent
        elif now >= self._recheck_at and self._replaced(mapping, now):
            return self._read_slow(now)
        seq, decoded = self._decode(mapping)
        if decoded is None:  # the writer kept it busy for all tries: keep the last good view
            last = self._decoded
            if last is not None and last.view.known and now - last.written_monotonic <= last.max_age_s:
                return last.view
            return unknown_view("record unreadable: always mid-write (writer died mid-write?)")
        self._decoded = decoded
        view = decoded.view
        if not view.known and self._replaced(mapping, now):
            # Closed or broken: a monitor may already have re-created the record under the
            # same path (RecordWriter.relink, a restart); a stat per read while not healthy.
            return self._read_slow(now)
        if not view.known:
            self._fast = (mapping.words, seq, view, now + self._reopen_interval_s)
            return view
        age = now - decoded.written_monotonic
        if age <= decoded.max_age_s:
            self._fast = (mapping.words, seq, view, decoded.written_monotonic + decoded.max_age_s)
            return view
        if now >= self._recheck_at and self._replaced(mapping, now):
            return self._read_slow(now)
        stale = StatusView(
            state="unknown",
            reason=(f"record is stale (age {age:.1f}s > {STALE_INTERVALS} intervals)"
                    if self._max_age_s is None
                    else f"record is stale (age {age:.1f}s > {decoded.max_age_s:.1f}s)"),
            last_record=view.record, written_at=view.written_at, interval_s=view.interval_s,
            seq=view.seq, writer_pid=view.writer_pid)
        self._fast = (mapping.words, seq, stale, now + min(self._reopen_interval_s, 0.1))
        return stale

    def _open(self, now: float) -> _Mapping | None:
        self._recheck_at = now + self._reopen_interval_s
        try:
            check_platform()
            fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
        except FileNotFoundError:
            self._absent = unknown_view(
                f"no record at {self.path} (monitor stopped?)" if self._was_mapped
                else f"no record yet at {self.path} (monitor not started?)")
            # Look again at the next read: a failed open costs a microsecond, and waiting a
            # whole interval would let one worker say "no record" after another said healthy.
            self._recheck_at = now
            return None
        except (OSError, RecordError) as exc:
            self._absent = unknown_view(f"cannot open {self.path}: {exc}")
            return None
        try:
            st = check_owner(fd, self.path, self._uid)
            if st.st_size != RECORD_SIZE:
                # Size 0 is the instant between the writer's create and truncate.
                reason = ("no record yet (being created)" if st.st_size == 0 else
                          f"corrupt: file is {st.st_size} bytes, expected {RECORD_SIZE}")
                self._absent = unknown_view(reason)
                if st.st_size == 0:
                    self._recheck_at = now  # the writer is between create and truncate
                return None
            mm, words = map_fd(fd, writable=False)
        except (OSError, ValueError, RecordError) as exc:
            self._absent = unknown_view(f"cannot map {self.path}: {exc}")
            return None
        finally:
            os.close(fd)  # the mapping stays valid after the descriptor is closed
        self._mapping = _Mapping(mm, words, (st.st_dev, st.st_ino))
        self._decoded, self._fast, self._was_mapped = None, None, True
        return self._mapping

    def _replaced(self, mapping: _Mapping, now: float) -> bool:
        """True (and the old mapping dropped) when the path now names another file or none."""
        self._recheck_at = now + self._reopen_interval_s
        try:
            st = os.stat(self.path, follow_symlinks=False)
            current: tuple[int, int] | None = (st.st_dev, st.st_ino)
        except OSError:
            current = None
        if current == mapping.inode:
            return False
        # Dropping the references unmaps it once no other thread still holds this mapping.
        self._mapping, self._fast, self._decoded = None, None, None
        self._recheck_at = -math.inf if current is not None else now
        self._absent = unknown_view(f"no record at {self.path} (monitor stopped?)")
        return True

    def _decode(self, mapping: _Mapping) -> tuple[int, _Decoded | None]:
        mm, words = mapping.mm, mapping.words
        crc_failed_at = -1
        for _ in range(_READ_TRIES):
            s1 = words[SEQ_WORD]
            if s1 & 1:
                continue
            last = self._decoded
            if last is not None and last.seq == s1:
                return s1, last
            header = mm[0:HEADER_SIZE]
            length = LEN_CRC.unpack_from(header, OFF_LENGTH)[0]
            payload = mm[HEADER_SIZE:HEADER_SIZE + min(length, PAYLOAD_CAPACITY)]
            if words[SEQ_WORD] != s1:
                continue
            decoded = self._validate(s1, header, payload)
            if decoded is not None:
                return s1, decoded
            crc_failed_at = s1
        seq = words[SEQ_WORD]
        if seq == crc_failed_at:  # the same stable bytes failed every time: not a torn read
            return seq, _Decoded(seq, unknown_view("corrupt: CRC mismatch", seq=seq), -math.inf,
                                 math.inf)
        return seq, None

    def _validate(self, seq: int, header: bytes, payload: bytes) -> _Decoded | None:
        """Check a consistent copy. None means a CRC mismatch (torn on weak ordering: retry)."""
        magic, version, _, _ = PREFIX.unpack_from(header, 0)
        length, crc = LEN_CRC.unpack_from(header, OFF_LENGTH)
        written_at, written_mono, interval_s, pid, flags = META.unpack_from(header, OFF_META)
        reason = None
        if magic != MAGIC:
            reason = ("no record yet (being initialized)" if magic == bytes(8)
                      else f"corrupt: bad magic {magic!r}")
        elif version != FORMAT_VERSION:
            reason = f"corrupt: format version {version}, expected {FORMAT_VERSION}"
        elif length > PAYLOAD_CAPACITY:
            reason = f"corrupt: payload length {length} > capacity {PAYLOAD_CAPACITY}"
        elif seq == 0 and length == 0:
            reason = "no record yet (monitor starting)"
        elif payload_crc(length, memoryview(header)[OFF_META:HEADER_SIZE], payload) != crc:
            return None
        elif flags & FLAG_CLOSED:
            reason = f"monitor stopped (record closed by pid {pid})"
        if reason is not None:
            return _Decoded(seq, unknown_view(reason, seq=seq), -math.inf, math.inf)
        meta = {"written_at": written_at, "interval_s": interval_s, "seq": seq,
                "writer_pid": pid}
        try:
            record = StatusRecord.from_json(payload)
        except RecordCorrupt as exc:
            return _Decoded(seq, unknown_view(f"corrupt: {exc}", **meta), -math.inf, math.inf)
        max_age = self._max_age_s if self._max_age_s is not None else STALE_INTERVALS * interval_s
        view = StatusView(state=record.overall, record=record, **meta)
        return _Decoded(seq, view, written_mono, max_age)
