"""The shared-memory status record: format, writer/reader lifecycle, corruption, staleness, tearing.

Modelled on prometheus client_python's TestMmapedDict (round trip, restart, reader first,
corruption), plus a two-process torn-read stress test.
"""

from __future__ import annotations

import os
import struct
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from monitor.record import (
    FORMAT_VERSION,
    PATH_ENV,
    PAYLOAD_CAPACITY,
    RECORD_SIZE,
    ComponentStatus,
    RecordBusy,
    RecordError,
    RecordReader,
    RecordTooLarge,
    RecordWriter,
    StatusRecord,
    default_record_path,
)
from monitor.record.layout import OFF_LENGTH, OFF_MAGIC, OFF_SEQ, OFF_VERSION
from tests.procs import PYTHON, RESOURCES, ROOT, running

FULL = ComponentStatus(
    name="waiide", state="up", reason=None, url="http://127.0.0.1:8080/healthz", http_status=200,
    latency_s=0.0123, last_probe_at=1700000000.5, last_success_at=1700000000.5, liveness="alive",
    pid=4242, pid_alive=True, uptime_s=12.5, restarts=2, rss_bytes=123456789, cpu_percent=3.5,
    cpu_seconds=1.25)
RECORD = StatusRecord(overall="degraded", components=(
    FULL,
    ComponentStatus(name="singleuser", state="down", reason="no answer within 2s",
                    url="http://127.0.0.1:8090/api", latency_s=2.0, last_probe_at=1700000000.5),
    ComponentStatus(name="gateway", state="unknown"),
))


@pytest.fixture
def path(tmp_path: Path) -> Iterator[Path]:
    record = tmp_path / "status.rec"
    yield record
    record.unlink(missing_ok=True)


def _writer(path: Path, interval_s: float = 5.0) -> RecordWriter:
    """A writer to use in `with` (which opens it)."""
    return RecordWriter(path, interval_s)


def _opened(path: Path, interval_s: float = 5.0) -> RecordWriter:
    writer = RecordWriter(path, interval_s)
    writer.open()
    return writer


def _poke(path: Path, offset: int, data: bytes) -> None:
    """Overwrite bytes in place and publish them (seq += 2), as a bad writer would."""
    with path.open("r+b") as f:
        f.seek(offset)
        f.write(data)
        f.seek(OFF_SEQ)
        seq = struct.unpack("<Q", f.read(8))[0]
        f.seek(OFF_SEQ)
        f.write(struct.pack("<Q", seq + 2))


def test_round_trip(path: Path) -> None:
    with _writer(path, interval_s=2.5) as writer:
        seq = writer.write(RECORD, written_at=1700000001.0)
        reader = RecordReader(path)
        view = reader.read()
        assert view.known and view.record == RECORD
        assert (view.state, view.reason, view.seq) == ("degraded", None, seq)
        assert (view.written_at, view.interval_s, view.writer_pid) == (1700000001.0, 2.5, os.getpid())
        assert view.record is not None and view.record.component("waiide") == FULL
        assert view.record.component("monitor") is None
        # Unchanged sequence: the very same view object, nothing decoded again.
        assert reader.read() is view
        writer.write(StatusRecord(overall="healthy", components=(FULL,)))
        assert reader.read().state == "healthy"
        reader.close()


def test_file_is_fixed_size_and_private(path: Path) -> None:
    with _writer(path):
        st = path.stat()
        assert st.st_size == RECORD_SIZE
        assert st.st_mode & 0o777 == 0o600


def test_reader_before_writer(path: Path) -> None:
    reader = RecordReader(path, reopen_interval_s=0.0)
    view = reader.read()
    assert view.state == "unknown" and not view.known
    assert view.reason is not None and view.reason.startswith("no record yet")
    with _writer(path) as writer:
        assert reader.read().reason == "no record yet (monitor starting)"
        writer.write(RECORD)
        assert reader.read().record == RECORD


def test_missing_file_is_retried_at_the_next_read(path: Path) -> None:
    # Issue 12: a throttled retry let one worker say "no record yet" for up to a second after
    # another had said healthy (a hub probe saw 200, 503, 200). The first read after the
    # monitor's first write sees it, however recently the last attempt failed.
    reader = RecordReader(path, reopen_interval_s=30.0)
    now = time.monotonic()
    assert not reader.read(now).known
    with _writer(path, interval_s=60.0) as writer:
        writer.write(RECORD)
        assert reader.read(now + 0.001).record == RECORD


def test_a_deleted_record_is_recreated_and_readers_follow(path: Path) -> None:
    with _writer(path, interval_s=60.0) as writer:
        writer.write(RECORD)
        reader = RecordReader(path, reopen_interval_s=30.0)
        assert reader.read().record == RECORD
        assert not writer.relink()  # still the same file: nothing to do
        path.unlink()  # what systemd-logind's RemoveIPC does at logout
        assert writer.relink() and path.exists()
        writer.write(RECORD)
        # The old mapping was marked closed: the reader looks at the path again at once.
        assert reader.read().record == RECORD
        assert RecordReader(path).read().record == RECORD


def test_crashed_writer_restart_takes_over_the_same_file(path: Path) -> None:
    first = _opened(path)
    first.write(RECORD)
    reader = RecordReader(path)
    assert reader.read().known
    inode = path.stat().st_ino
    first.abandon()  # what a SIGKILL leaves
    with path.open("r+b") as f:  # and killed mid-write: sequence left odd
        f.seek(OFF_SEQ)
        f.write(struct.pack("<Q", 7))
    second = _opened(path)
    try:
        with path.open("rb") as f:
            f.seek(OFF_SEQ)
            assert struct.unpack("<Q", f.read(8))[0] % 2 == 0  # made even before anything else
        later = StatusRecord(overall="healthy", components=(FULL,))
        second.write(later)
        assert path.stat().st_ino == inode
        assert reader.read().record == later  # the old mapping sees the new writer
    finally:
        second.close()


def test_clean_close_then_new_writer(path: Path) -> None:
    reader = RecordReader(path, reopen_interval_s=0.0)
    first = _opened(path)
    first.write(RECORD)
    assert reader.read().known
    first.close()
    assert not path.exists()
    view = reader.read()
    assert view.state == "unknown"
    assert view.reason is not None
    assert "monitor stopped" in view.reason or "no record at" in view.reason
    assert "monitor stopped" in (reader.read().reason or "")
    with _writer(path) as second:  # a new file (new inode): the reader must remap
        second.write(RECORD)
        assert reader.read().record == RECORD


def test_second_writer_is_refused(path: Path) -> None:
    with _writer(path) as writer:
        writer.write(RECORD)
        with pytest.raises(RecordBusy):
            _opened(path)
        assert RecordReader(path).read().record == RECORD  # untouched by the refused writer


@pytest.mark.parametrize(("offset", "data", "reason"), [
    (OFF_MAGIC, b"NOTSTATS", "corrupt: bad magic b'NOTSTATS'"),
    (OFF_VERSION, struct.pack("<H", FORMAT_VERSION + 1),
     f"corrupt: format version {FORMAT_VERSION + 1}, expected {FORMAT_VERSION}"),
    (OFF_LENGTH, struct.pack("<I", PAYLOAD_CAPACITY + 1),
     f"corrupt: payload length {PAYLOAD_CAPACITY + 1} > capacity {PAYLOAD_CAPACITY}"),
    (OFF_LENGTH, struct.pack("<I", 10), "corrupt: CRC mismatch"),
    (200, b"\xff", "corrupt: CRC mismatch"),
])
def test_corruption_is_detected(path: Path, offset: int, data: bytes, reason: str) -> None:
    with _writer(path) as writer:
        writer.write(RECORD)
        reader = RecordReader(path)
        assert reader.read().known
        _poke(path, offset, data)
        view = reader.read()
        assert (view.state, view.reason, view.record) == ("unknown", reason, None)
        writer.write(RECORD)  # the next good write heals it
        assert reader.read().record == RECORD


def test_bad_payload_is_corrupt(path: Path) -> None:
    class Evil(StatusRecord):
        def to_json(self) -> bytes:
            return b'{"overall": "splendid", "components": []}'

    with _writer(path) as writer:
        writer.write(Evil(overall="healthy", components=()))
        view = RecordReader(path).read()
        assert view.state == "unknown"
        assert view.reason == "corrupt: bad payload (overall state 'splendid')"


def test_wrong_size_file_is_corrupt_and_replaced_by_the_writer(path: Path) -> None:
    path.write_bytes(b"\0" * 100)
    path.chmod(0o600)
    assert RecordReader(path).read().reason == f"corrupt: file is 100 bytes, expected {RECORD_SIZE}"
    with _writer(path) as writer:
        writer.write(RECORD)
        assert RecordReader(path).read().record == RECORD


def test_stale_record_reads_unknown(path: Path) -> None:
    with _writer(path, interval_s=5.0) as writer:
        writer.write(RECORD, written_monotonic=time.monotonic() - 17.2)
        reader = RecordReader(path)
        view = reader.read()
        assert view.state == "unknown" and view.record is None
        assert view.reason == "record is stale (age 17.2s > 3 intervals)"
        assert view.last_record == RECORD  # for display only
        writer.write(RECORD)
        assert reader.read().known
        # and it turns stale by itself once 3 intervals pass without a write
        assert reader.read(time.monotonic() + 15.5).reason is not None
        assert "stale" in (reader.read(time.monotonic() + 15.5).reason or "")


def test_max_age_override(path: Path) -> None:
    with _writer(path, interval_s=5.0) as writer:
        writer.write(RECORD, written_monotonic=time.monotonic() - 2.0)
        assert RecordReader(path).read().known
        view = RecordReader(path, max_age_s=1.0).read()
        assert view.reason == "record is stale (age 2.0s > 1.0s)"


def test_record_too_large(path: Path) -> None:
    huge = StatusRecord(overall="healthy", components=(
        ComponentStatus(name="waiide", state="up", reason="x" * PAYLOAD_CAPACITY),))
    with _writer(path) as writer, pytest.raises(RecordTooLarge):
        writer.write(huge)


def test_file_of_another_user_is_refused(path: Path) -> None:
    """/dev/shm is world-writable: a record planted by another user is neither read nor fed.

    The owner the file must have is injectable, so "another user's file" is this user's file
    checked against another uid, with or without root.
    """
    me, stranger = os.getuid(), os.getuid() + 12345
    with _writer(path) as writer:
        writer.write(RECORD)
        view = RecordReader(path, uid=stranger).read()
        assert view.state == "unknown" and f"owned by uid {me}, not {stranger}" in (view.reason or "")
        assert RecordReader(path).read().known  # the rightful owner's reader trusts it
    with pytest.raises(RecordError, match=f"owned by uid {me}, not {stranger}"):
        RecordWriter(path, 1.0, uid=stranger).open()


def test_default_record_path() -> None:
    assert default_record_path({PATH_ENV: "/tmp/x.status"}) == Path("/tmp/x.status")
    derived = default_record_path({"API_SERVER_PORT": "9123"})
    assert derived.name == f"waiide-hub-{os.getuid()}-9123.status"
    assert derived.parent == Path("/dev/shm")
    assert default_record_path({}).name == f"waiide-hub-{os.getuid()}-8091.status"
    with pytest.raises(ValueError, match="'API_SERVER_PORT' has value 'http'"):
        default_record_path({"API_SERVER_PORT": "http"})


def test_two_process_stress_never_torn(path: Path, tmp_path: Path) -> None:
    """A writer process rewrites the record flat out for 3 s; this process reads it meanwhile.

    Every record seen must be one the writer wrote whole: all components carry the same n, the
    reason's length and suffix match n, written_at == n, and n never goes backwards.
    """
    log = tmp_path / "hammer.log"
    argv = [PYTHON, str(RESOURCES / "record_hammer.py"), str(path), "3"]
    reader = RecordReader(path, reopen_interval_s=0.0)
    seen, unknown, last_n = set(), 0, 0
    with running(argv, {"PYTHONPATH": str(ROOT)}, log_path=log) as proc:
        deadline = time.monotonic() + 10.0
        while proc.poll() is None and time.monotonic() < deadline:
            view = reader.read()
            if view.record is None:
                assert view.reason is not None and not view.reason.startswith("corrupt"), view
                unknown += 1
                continue
            n = int(view.written_at or 0)
            assert n >= last_n
            last_n = n
            for comp in view.record.components:
                assert (comp.pid, comp.restarts) == (n, n)
                assert comp.reason == "x" * (n % 700) + str(n)
                assert comp.state == ("up" if n % 2 else "down")
            assert view.record.overall == ("healthy" if n % 2 else "unhealthy")
            seen.add(n)
        assert proc.wait(timeout=10) == 0
    written = int(log.read_text().split()[-1])
    assert written > 1000, f"the writer wrote only {written} records"
    assert len(seen) > 100, f"saw only {len(seen)} distinct records ({unknown} unknown reads)"

