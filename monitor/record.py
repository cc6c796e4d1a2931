"""The shared-memory status record: its data model, byte layout, writer and reader.

This module is the only place that knows the format. The monitor writes one fixed-size record
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

import fcntl
import json
import math
import mmap
import os
import struct
import sys
import tempfile
import time
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Self

PATH_ENV = "WAIIDE_HUB_STATUS_PATH"
"""The one variable that overrides where the record lives (the monitor and gateway read it)."""

API_SERVER_PORT_ENV = "API_SERVER_PORT"
DEFAULT_API_SERVER_PORT = "8091"
SHM_DIR = Path("/dev/shm")

MAGIC = b"WHUBSTAT"
FORMAT_VERSION = 1
HEADER_SIZE = 64
RECORD_SIZE = 16384
PAYLOAD_CAPACITY = RECORD_SIZE - HEADER_SIZE
STALE_INTERVALS = 3
FLAG_CLOSED = 0x1

# Byte offsets of the header fields (see RecordReader's docstring for the table).
OFF_MAGIC = 0
OFF_VERSION = 8
OFF_SEQ = 16
OFF_LENGTH = 24
OFF_CRC = 28
OFF_META = 32

_PREFIX = struct.Struct("<8sHHI")  # magic, version, header size, record size
_LEN_CRC = struct.Struct("<II")  # payload length, crc32
_META = struct.Struct("<dddII")  # written_at, written_monotonic, interval_s, writer pid, flags
_PREFIX_BYTES = _PREFIX.pack(MAGIC, FORMAT_VERSION, HEADER_SIZE, RECORD_SIZE)
_SEQ_WORD = OFF_SEQ // 8  # index of the sequence in the mapping viewed as native uint64 words
_READ_TRIES = 64
_DEFAULT_REOPEN_INTERVAL_S = 1.0
_OPEN_FLAGS = os.O_RDWR | os.O_CLOEXEC | os.O_NOFOLLOW

ComponentName = Literal["waiide", "singleuser", "gateway", "monitor"]
ComponentState = Literal["up", "down", "unknown"]
Liveness = Literal["alive", "expired", "unknown"]
OverallState = Literal["healthy", "degraded", "unhealthy"]
ViewState = Literal["healthy", "degraded", "unhealthy", "unknown"]

COMPONENT_NAMES: tuple[ComponentName, ...] = ("waiide", "singleuser", "gateway", "monitor")
_COMPONENT_STATES = frozenset(("up", "down", "unknown"))
_LIVENESS = frozenset(("alive", "expired", "unknown"))
_OVERALL = frozenset(("healthy", "degraded", "unhealthy"))


class RecordError(Exception):
    """Base class of the record's errors.

    RecordError
     ├─ RecordCorrupt    the bytes do not form a valid record (bad magic, version, length, CRC, payload)
     ├─ RecordTooLarge   the encoded record does not fit the fixed payload capacity
     └─ RecordBusy       another writer holds the record (one writer only)
    """


class RecordCorrupt(RecordError):
    """The bytes at the record path do not form a valid record."""


class RecordTooLarge(RecordError):
    """The encoded record exceeds PAYLOAD_CAPACITY."""


class RecordBusy(RecordError):
    """Another live process holds the writer lock on the record file."""


def default_record_path(environ: Mapping[str, str]) -> Path:
    """Where the monitor writes and the gateway reads the record, from the configuration.

    `WAIIDE_HUB_STATUS_PATH` wins when set. Otherwise the path is derived from the uid and the
    gateway port, so two stacks of one user (or of two users) on one host never share a record,
    while `python -m monitor` and `python -m gateway` started with the same environment agree.

    Raises:
        ValueError: API_SERVER_PORT is not a port number (named in the message).
    """
    override = environ.get(PATH_ENV, "").strip()
    if override:
        return Path(override)
    port = environ.get(API_SERVER_PORT_ENV, DEFAULT_API_SERVER_PORT).strip()
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"Config '{API_SERVER_PORT_ENV}' has value '{port}'. Not a valid port.")
    base = SHM_DIR if SHM_DIR.is_dir() else Path(tempfile.gettempdir())
    return base / f"waiide-hub-{os.getuid()}-{int(port)}.status"


# ---- data model ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ComponentStatus:
    """One component as the monitor last saw it. Times are unix seconds; None means not known.

    `reason` says why the state is not plain "up" (or carries a note, e.g. an unparseable IDE
    health body). `liveness` is the IDE's own report (code-server /healthz) and None for the
    other components. Process fields come from the supervisor's pid file plus psutil.
    """

    name: str
    state: ComponentState
    reason: str | None = None
    url: str | None = None
    http_status: int | None = None
    latency_s: float | None = None
    last_probe_at: float | None = None
    last_success_at: float | None = None
    liveness: Liveness | None = None
    pid: int | None = None
    pid_alive: bool | None = None
    uptime_s: float | None = None
    restarts: int | None = None
    rss_bytes: int | None = None
    cpu_percent: float | None = None
    cpu_seconds: float | None = None


_FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "reason": (str,), "url": (str,), "http_status": (int,), "latency_s": (float, int),
    "last_probe_at": (float, int), "last_success_at": (float, int), "pid": (int,),
    "pid_alive": (bool,), "uptime_s": (float, int), "restarts": (int,), "rss_bytes": (int,),
    "cpu_percent": (float, int), "cpu_seconds": (float, int),
}


@dataclass(frozen=True, slots=True)
class StatusRecord:
    """What the monitor publishes each tick: the overall state and every probed component.

    The write time, interval and writer pid travel in the header, not here (see StatusView).
    """

    overall: OverallState
    components: tuple[ComponentStatus, ...]

    def component(self, name: str) -> ComponentStatus | None:
        """The component called `name`, or None when it is not part of this stack."""
        for comp in self.components:
            if comp.name == name:
                return comp
        return None

    def to_json(self) -> bytes:
        """The compact JSON payload (None fields are left out to save space)."""
        comps = []
        for comp in self.components:
            item: dict[str, Any] = {"name": comp.name, "state": comp.state}
            for field in _FIELD_TYPES:
                value = getattr(comp, field)
                if value is not None:
                    item[field] = value
            if comp.liveness is not None:
                item["liveness"] = comp.liveness
            comps.append(item)
        doc = {"overall": self.overall, "components": comps}
        return json.dumps(doc, separators=(",", ":"), allow_nan=False).encode()

    @classmethod
    def from_json(cls, payload: bytes) -> StatusRecord:
        """Decode and validate a payload written by `to_json`.

        Raises:
            RecordCorrupt: not JSON, or a field has the wrong type or value.
        """
        try:
            doc = json.loads(payload)
            overall = doc["overall"]
            comps = tuple(_component_from_json(item) for item in doc["components"])
        except (ValueError, KeyError, TypeError) as exc:
            raise RecordCorrupt(f"bad payload ({exc.__class__.__name__}: {exc})") from exc
        if overall not in _OVERALL:
            raise RecordCorrupt(f"bad payload (overall state {overall!r})")
        return cls(overall=overall, components=comps)


def _component_from_json(item: dict[str, Any]) -> ComponentStatus:
    name, state = item["name"], item["state"]
    if not isinstance(name, str) or state not in _COMPONENT_STATES:
        raise ValueError(f"component {name!r} has state {state!r}")
    fields: dict[str, Any] = {}
    for field, types in _FIELD_TYPES.items():
        value = item.get(field)
        if value is None:
            continue
        # bool is an int subclass: keep it out of the numeric fields and vice versa.
        valid = isinstance(value, types) and not (isinstance(value, bool) and bool not in types)
        if not valid:
            raise ValueError(f"component {name!r} field {field!r} has value {value!r}")
        fields[field] = float(value) if float in types else value
    liveness = item.get("liveness")
    if liveness is not None and liveness not in _LIVENESS:
        raise ValueError(f"component {name!r} has liveness {liveness!r}")
    return ComponentStatus(name=name, state=state, liveness=liveness, **fields)


@dataclass(frozen=True, slots=True)
class StatusView:
    """What a reader saw: a trusted record, or "unknown" with the reason.

    `record` is set only when the record is valid and fresh (state is then the record's overall
    state). When the record is stale, `record` is None and `last_record` keeps the last good one
    for display only (last probe times, pids): never decide health from it.
    `written_at` (unix time) and `interval_s` describe the record the view was built from.
    """

    state: ViewState
    reason: str | None = None
    record: StatusRecord | None = None
    last_record: StatusRecord | None = None
    written_at: float | None = None
    interval_s: float | None = None
    seq: int = 0
    writer_pid: int | None = None

    @property
    def known(self) -> bool:
        """True when `record` is present, valid and fresh."""
        return self.record is not None


def _unknown(reason: str, **fields: Any) -> StatusView:
    return StatusView(state="unknown", reason=reason, **fields)


def _check_platform() -> None:
    # The sequence word is read and written as a native uint64 (one aligned load or store);
    # the layout is little-endian, so refuse a big-endian host rather than misread it.
    if sys.byteorder != "little":
        raise RecordError("the status record needs a little-endian host")


def _map_fd(fd: int, *, writable: bool) -> tuple[mmap.mmap, memoryview]:
    access = mmap.ACCESS_WRITE if writable else mmap.ACCESS_READ
    mm = mmap.mmap(fd, RECORD_SIZE, access=access)
    return mm, memoryview(mm).cast("Q")


def _check_owner(fd: int, path: Path, uid: int) -> os.stat_result:
    # /dev/shm is world-writable: a file planted by another user must not be trusted or fed.
    st = os.fstat(fd)
    if st.st_uid != uid:
        raise RecordError(f"{path} is owned by uid {st.st_uid}, not {uid}")
    return st


# ---- writer --------------------------------------------------------------------------------


class RecordWriter:
    """The single writer (the monitor). `open()`, then `write()` each tick, then `close()`.

    One writer is enforced with an advisory `flock` on the record file; a second writer gets
    RecordBusy. A restarted writer takes over the existing file (same inode, so mapped readers
    keep working) after making the sequence even: a crash mid-write leaves it odd. A file of the
    wrong size or version is replaced (unlink + create) rather than resized, because shrinking a
    file under a reader's mapping would raise SIGBUS in the reader.
    """

    def __init__(self, path: Path, interval_s: float, *, owner_uid: int | None = None) -> None:
        """`owner_uid`: whose file the record must be (default: this process's uid)."""
        self.path = path
        self.interval_s = interval_s
        self._owner_uid = os.getuid() if owner_uid is None else owner_uid
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
        _check_platform()
        fd = self._open_locked()
        try:
            st = _check_owner(fd, self.path, self._owner_uid)
            if st.st_size != RECORD_SIZE or os.pread(fd, _PREFIX.size, 0) != _PREFIX_BYTES:
                if st.st_size != 0:
                    os.close(fd)
                    fd = self._replace_file()
                os.ftruncate(fd, RECORD_SIZE)
                os.pwrite(fd, _PREFIX_BYTES, 0)
            self._mm, self._words = _map_fd(fd, writable=True)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        seq = self._words[_SEQ_WORD]
        self._seq = seq + 1 if seq & 1 else seq
        self._words[_SEQ_WORD] = self._seq

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
        meta = _META.pack(time.time() if written_at is None else written_at,
                          time.monotonic() if written_monotonic is None else written_monotonic,
                          self.interval_s, os.getpid(), flags)
        len_crc = _LEN_CRC.pack(len(payload), _crc(len(payload), meta, payload))
        mm, words = self._mm, self._words
        # Seqlock: odd while the bytes change. Each store is a slice assignment (one memcpy),
        # not struct.pack_into, which may write field by field (prometheus mmap_dict does the
        # same); the sequence word is one aligned 8-byte store through the uint64 view.
        # Continue from the word in the file, not a private counter, so the sequence can never
        # repeat a value a reader has cached, whatever else touched the file.
        odd = words[_SEQ_WORD] | 1
        words[_SEQ_WORD] = odd
        mm[HEADER_SIZE:HEADER_SIZE + len(payload)] = payload
        mm[OFF_META:HEADER_SIZE] = meta
        mm[0:_PREFIX.size] = _PREFIX_BYTES  # constant; rewriting it heals a damaged header
        mm[OFF_LENGTH:OFF_META] = len_crc
        self._seq = odd + 1
        words[_SEQ_WORD] = self._seq
        return self._seq

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


def _crc(length: int, meta: bytes | memoryview, payload: bytes | memoryview) -> int:
    return zlib.crc32(payload, zlib.crc32(meta, length))


# ---- reader --------------------------------------------------------------------------------


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
    """A lock-free reader of the status record; one per gateway worker. Also the format spec.

    File: exactly RECORD_SIZE (16384) bytes, little-endian, a 64-byte header then the payload.

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
    64      n     bytes   payload: compact UTF-8 JSON of StatusRecord (see `to_json`)
    ======  ====  ======  ==========================================================

    Write protocol (one writer): seq += 1 (odd); payload; bytes 32..63; bytes 24..31;
    seq += 1 (even). Read protocol: load seq s1 (retry while odd); copy header and payload;
    load seq s2; retry unless s1 == s2; then check magic, version, length and CRC. CPython
    issues no memory fences; x86-64 keeps store order but ARM64 may not, so the CRC over the
    length, metadata and payload is the second guard against a torn read.

    Cost: while the sequence is unchanged and the record fresh, `read()` is one aligned load of
    the sequence word and a comparison; the JSON is decoded once per sequence number. The file is
    opened lazily; while it is missing, a retry happens at most every `reopen_interval_s`. While
    the view is stale, closed or corrupt, the reader checks at most that often whether the file
    was replaced (a new writer after a clean stop creates a new inode) and remaps it.

    Thread use: `read()` may run concurrently in several threads (event loop and a metrics
    executor); state changes are single attribute swaps. `close()` must not race `read()`.
    """

    def __init__(self, path: Path, *, max_age_s: float | None = None,
                 reopen_interval_s: float = _DEFAULT_REOPEN_INTERVAL_S,
                 owner_uid: int | None = None) -> None:
        """
        Args:
            max_age_s: age beyond which the record reads as stale; default STALE_INTERVALS
                times the interval the writer put in the header.
            reopen_interval_s: how often to retry opening a missing file, or to look for a
                replaced file while the view is not healthy-and-fresh.
            owner_uid: whose file the record must be (default: this process's uid).
        """
        self.path = path
        self._owner_uid = os.getuid() if owner_uid is None else owner_uid
        self._max_age_s = max_age_s
        self._reopen_interval_s = reopen_interval_s
        self._mapping: _Mapping | None = None
        self._decoded: _Decoded | None = None
        # (mapping words, seq, view, valid until monotonic): the whole fast path in one tuple.
        self._fast: tuple[memoryview, int, StatusView, float] | None = None
        self._absent = _unknown(f"no record yet at {path} (monitor not started?)")
        self._recheck_at = -math.inf
        self._was_mapped = False

    def read(self, now: float | None = None) -> StatusView:
        """The current view. `now` is `time.monotonic()` (taken if not given)."""
        if now is None:
            now = time.monotonic()
        fast = self._fast
        if fast is not None and now < fast[3]:
            try:
                if fast[0][_SEQ_WORD] == fast[1]:
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
            return _unknown("record unreadable: always mid-write (writer died mid-write?)")
        self._decoded = decoded
        view = decoded.view
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
            _check_platform()
            fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
        except FileNotFoundError:
            self._absent = _unknown(
                f"no record at {self.path} (monitor stopped?)" if self._was_mapped
                else f"no record yet at {self.path} (monitor not started?)")
            return None
        except (OSError, RecordError) as exc:
            self._absent = _unknown(f"cannot open {self.path}: {exc}")
            return None
        try:
            st = _check_owner(fd, self.path, self._owner_uid)
            if st.st_size != RECORD_SIZE:
                # Size 0 is the instant between the writer's create and truncate.
                reason = ("no record yet (being created)" if st.st_size == 0 else
                          f"corrupt: file is {st.st_size} bytes, expected {RECORD_SIZE}")
                self._absent = _unknown(reason)
                return None
            mm, words = _map_fd(fd, writable=False)
        except (OSError, ValueError, RecordError) as exc:
            self._absent = _unknown(f"cannot map {self.path}: {exc}")
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
        self._recheck_at = -math.inf if current is not None else now + self._reopen_interval_s
        self._absent = _unknown(f"no record at {self.path} (monitor stopped?)")
        return True

    def _decode(self, mapping: _Mapping) -> tuple[int, _Decoded | None]:
        mm, words = mapping.mm, mapping.words
        crc_failed_at = -1
        for _ in range(_READ_TRIES):
            s1 = words[_SEQ_WORD]
            if s1 & 1:
                continue
            last = self._decoded
            if last is not None and last.seq == s1:
                return s1, last
            header = mm[0:HEADER_SIZE]
            length = _LEN_CRC.unpack_from(header, OFF_LENGTH)[0]
            payload = mm[HEADER_SIZE:HEADER_SIZE + min(length, PAYLOAD_CAPACITY)]
            if words[_SEQ_WORD] != s1:
                continue
            decoded = self._validate(s1, header, payload)
            if decoded is not None:
                return s1, decoded
            crc_failed_at = s1
        seq = words[_SEQ_WORD]
        if seq == crc_failed_at:  # the same stable bytes failed every time: not a torn read
            return seq, _Decoded(seq, _unknown("corrupt: CRC mismatch", seq=seq), -math.inf,
                                 math.inf)
        return seq, None

    def _validate(self, seq: int, header: bytes, payload: bytes) -> _Decoded | None:
        """Check a consistent copy. None means a CRC mismatch (torn on weak ordering: retry)."""
        magic, version, _, _ = _PREFIX.unpack_from(header, 0)
        length, crc = _LEN_CRC.unpack_from(header, OFF_LENGTH)
        written_at, written_mono, interval_s, pid, flags = _META.unpack_from(header, OFF_META)
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
        elif _crc(length, memoryview(header)[OFF_META:HEADER_SIZE], payload) != crc:
            return None
        elif flags & FLAG_CLOSED:
            reason = f"monitor stopped (record closed by pid {pid})"
        if reason is not None:
            return _Decoded(seq, _unknown(reason, seq=seq), -math.inf, math.inf)
        meta = {"written_at": written_at, "interval_s": interval_s, "seq": seq,
                "writer_pid": pid}
        try:
            record = StatusRecord.from_json(payload)
        except RecordCorrupt as exc:
            return _Decoded(seq, _unknown(f"corrupt: {exc}", **meta), -math.inf, math.inf)
        max_age = self._max_age_s if self._max_age_s is not None else STALE_INTERVALS * interval_s
        view = StatusView(state=record.overall, record=record, **meta)
        return _Decoded(seq, view, written_mono, max_age)


__all__ = [
    "COMPONENT_NAMES", "FORMAT_VERSION", "HEADER_SIZE", "MAGIC", "PATH_ENV", "PAYLOAD_CAPACITY",
    "RECORD_SIZE", "STALE_INTERVALS", "ComponentName", "ComponentState", "ComponentStatus",
    "Liveness", "OverallState", "RecordBusy", "RecordCorrupt", "RecordError", "RecordReader",
    "RecordTooLarge", "RecordWriter", "StatusRecord", "StatusView", "ViewState",
    "default_record_path",
]
