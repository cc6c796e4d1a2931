"""ChildProcess and the Supervisor with real child scripts (tests/resources/children).

Scenarios:
 1. A crashing child: exit status seen, both pipes relayed line by line with `[name] `.
 2. A child ignoring SIGTERM survives terminate() and is SIGKILLed with its whole group,
    including a grandchild in the group and an escapee that left it with setsid.
 3. A missing program raises StartError with the hint.
 4. A late server answers the probe only once it listens.
 5. Stale unix sockets are removed before a start; other files are never touched.
 6. The real loop restarts a child that exits 0 and reports it flapping, with real backoff.
"""

from __future__ import annotations

import io
import json
import signal
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped]
import pytest

from common.exits import ExitCode
from supervisor.config import SETUP_HINT
from supervisor.errors import StartError
from supervisor.process import ChildProcess, describe_exit
from supervisor.spec import ChildSpec, ReadyCheck, RestartPolicy
from supervisor.supervisor import Supervisor
from tests.procs import PYTHON, RESOURCES, free_port, group_pids

CHILDREN = RESOURCES / "children"


def script(name: str, *args: str) -> tuple[str, ...]:
    return (PYTHON, str(CHILDREN / name), *args)


def spec(name: str, argv: tuple[str, ...], **options: Any) -> ChildSpec:
    return ChildSpec(name=name, argv=argv, env={"PATH": "/usr/bin:/bin"}, **options)


def records(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def wait_until(predicate: object, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.02)


def gone(pid: int) -> bool:
    try:
        return bool(psutil.Process(pid).status() == psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return True


@pytest.fixture
def children() -> Iterator[list[ChildProcess]]:
    """Every ChildProcess a test starts; killed by process group in teardown whatever happens."""
    started: list[ChildProcess] = []
    yield started
    for child in started:
        child.kill()
        child.wait(5.0)
        child.close()


def test_crash_is_seen_and_output_relayed(children: list[ChildProcess]) -> None:
    """1."""
    out, err = io.StringIO(), io.StringIO()
    child = ChildProcess(spec("crashy", script("crash.py", "--code", "3")), out, err)
    children.append(child)
    child.start()
    assert child.wait(20.0) == 3
    child.close()
    assert f"[crashy] crash.py [{child.pid}] exiting with 3 in 0.0s\n" in out.getvalue()
    assert err.getvalue() == "[crashy] crash.py on stderr\n"
    assert describe_exit(3) == "exit code 3"
    assert describe_exit(-9) == "signal SIGKILL"


def test_sigterm_ignored_then_whole_tree_killed(children: list[ChildProcess],
                                                tmp_path: Path) -> None:
    """2."""
    record = tmp_path / "start.jsonl"
    argv = script("ignore_sigterm.py", "--grandchild", "--escapee", "--record", str(record))
    child = ChildProcess(spec("stubborn", argv), io.StringIO(), io.StringIO())
    children.append(child)
    child.start()
    wait_until(lambda: records(record))
    started = records(record)[0]
    grandchild, escapee = int(started["grandchild"]), int(started["escapee"])
    assert started["pgid"] == child.pid
    assert len(group_pids(child.pid)) == 2
    child.terminate()
    assert child.wait(0.5) is None and child.is_alive()
    child.kill()
    assert child.wait(5.0) == -signal.SIGKILL
    child.close()
    wait_until(lambda: gone(grandchild) and gone(escapee), 5.0)
    assert group_pids(child.pid) == []


def test_missing_program_raises_start_error_with_hint() -> None:
    """3."""
    child = ChildProcess(spec("waiide", ("/nonexistent/code-server", "--auth", "none"),
                              hint=SETUP_HINT))
    with pytest.raises(StartError) as info:
        child.start()
    assert str(info.value) == ("cannot start waiide: /nonexistent/code-server: No such file or "
                               f"directory; {SETUP_HINT}")


def test_late_server_is_ready_only_once_listening(children: list[ChildProcess]) -> None:
    """4."""
    port = free_port()
    argv = script("http_server.py", "--port", str(port), "--ready-after", "0.5")
    child = ChildProcess(spec("late", argv, ready=ReadyCheck(f"http://127.0.0.1:{port}/healthz")),
                         io.StringIO(), io.StringIO())
    children.append(child)
    child.start()
    assert not child.probe(0.2)
    wait_until(lambda: child.probe(0.5))


def test_stale_socket_is_removed_other_files_are_not(children: list[ChildProcess]) -> None:
    """5."""
    with tempfile.TemporaryDirectory(prefix="sv-") as tmp:
        stale = Path(tmp, "ide.sock")
        with socket.socket(socket.AF_UNIX) as sock:
            sock.bind(str(stale))  # closed without unlink: what a killed server leaves
        argv = script("http_server.py", "--socket", str(stale))
        child = ChildProcess(spec("sock", argv, stale_sockets=(str(stale),),
                                  ready=ReadyCheck("http://localhost/", str(stale))),
                             io.StringIO(), io.StringIO())
        children.append(child)
        child.start()
        wait_until(lambda: child.probe(0.5))
        child.terminate()
        assert child.wait(10.0) == -signal.SIGTERM
        child.close()
        assert not stale.exists()
        regular = Path(tmp, "notes.txt")
        regular.write_text("keep me")
        other = ChildProcess(spec("true", ("/bin/true",), stale_sockets=(str(regular),)),
                             io.StringIO(), io.StringIO())
        children.append(other)
        other.start()
        assert other.wait(10.0) == 0
        assert regular.read_text() == "keep me"


def test_real_loop_restarts_clean_exits_and_reports_flapping(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """6. A child that exits 0 at once, backoff 0.05 s doubling to 0.2 s, flapping after 3
    exits in 10 s: it keeps coming back, never faster than the policy allows."""
    record = tmp_path / "starts.jsonl"
    policy = RestartPolicy(backoff_initial_s=0.05, backoff_max_s=0.2, stable_uptime_s=5.0,
                           flap_restarts=3, flap_window_s=10.0)
    child_spec = spec("quitter", script("exit_zero.py", str(record)), restart=policy)
    sup = Supervisor([child_spec], lambda s: ChildProcess(s, io.StringIO(), io.StringIO()))
    result: list[ExitCode] = []
    thread = threading.Thread(target=lambda: result.append(sup.run()), daemon=True)
    began = time.monotonic()
    thread.start()
    try:
        wait_until(lambda: len(records(record)) >= 4)
    finally:
        sup.signal_queue.append(signal.SIGTERM)
        thread.join(10.0)
    assert result == [ExitCode.OK]
    starts = len(records(record))
    # the loop ticks every 0.5 s and waits >= 0.2 s once flapping: no tight loop
    assert starts <= (time.monotonic() - began) / 0.2 + 2
    assert "exited with exit code 0; restart in 0.1s" in caplog.text
    assert "child quitter is FLAPPING: 3 exits within 10s" in caplog.text
