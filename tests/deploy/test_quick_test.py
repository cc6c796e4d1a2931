"""scripts/test_api.py, the seed's quick test, where the stack is missing or stuck.

(Its PASS path and its refusals against a real stack are in test_entrypoint.py, scenario 1.)

Scenarios:
 1. Nothing listens: one FAIL line per endpoint saying so, exit 1.
 2. A server that accepts and never answers: every request gives up at --timeout, exit 1.
 3. A usage error exits 2.
"""

from __future__ import annotations

import socket
import subprocess
import time

from tests.procs import PYTHON, ROOT, free_port

TEST_API = ROOT / "scripts" / "test_api.py"
RUN_TIMEOUT_S = 60


def quick_test(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PYTHON, str(TEST_API), *args], capture_output=True, text=True,
                          timeout=RUN_TIMEOUT_S, check=False, env={"PATH": "/usr/bin:/bin"})


def test_nothing_listening() -> None:
    """1. Every endpoint FAILs with the reason; the summary counts them; exit 1."""
    port = free_port()
    result = quick_test("--gateway", f"http://127.0.0.1:{port}", "--main",
                        f"http://127.0.0.1:{port}", "--prefix", "/user/alice/waiide/")
    lines = result.stdout.splitlines()
    assert result.returncode == 1
    assert sum(line.startswith("FAIL") for line in lines) == 10
    assert all("no answer" in line for line in lines if line.startswith("FAIL"))
    assert "/user/alice/waiide/WAIIDE/" in result.stdout
    assert f"{port}/api/status" in result.stdout  # the health check, without the prefix
    assert "no runtime file" in lines[0]
    assert lines[-1] == "test_api: 0 of 10 endpoints passed"


def test_stuck_server_times_out() -> None:
    """2. --timeout bounds every request."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)  # accepts connections (backlog), never answers
        port = listener.getsockname()[1]
        started = time.monotonic()
        result = quick_test("--gateway", f"http://127.0.0.1:{port}", "--no-main",
                            "--timeout", "0.5")
        elapsed = time.monotonic() - started
    assert result.returncode == 1
    assert result.stdout.count("timed out") == 6
    assert elapsed < 20


def test_usage_error() -> None:
    """3. Nothing left to check is a usage error."""
    result = quick_test("--no-gateway", "--no-main")
    assert result.returncode == 2 and "nothing to check" in result.stderr
