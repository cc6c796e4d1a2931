"""One probe against a real stand-in server: TCP, unix socket, refused, hung, any status."""

from __future__ import annotations

import http.server
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from supervisor.probe import http_probe
from supervisor.spec import ReadyCheck
from tests.procs import PYTHON, RESOURCES, free_port, running, wait_port

CHILDREN = RESOURCES / "children"


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    # AF_UNIX paths must stay under 108 bytes; pytest's tmp_path can be longer.
    with tempfile.TemporaryDirectory(prefix="sv-") as tmp:
        yield Path(tmp)


def test_tcp_answer_refused_and_any_status() -> None:
    port = free_port()
    assert not http_probe(ReadyCheck(f"http://127.0.0.1:{port}/healthz"), 1.0)

    class NotFound(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_error(404)

        def log_message(self, *_args: object) -> None:
            pass

    with socket.create_server(("127.0.0.1", 0)) as sock:
        server = http.server.HTTPServer(sock.getsockname(), NotFound, bind_and_activate=False)
        server.socket.close()
        server.socket = sock
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            assert http_probe(ReadyCheck(f"http://127.0.0.1:{sock.getsockname()[1]}/x"), 1.0)
        finally:
            server.shutdown()
            thread.join(5)


def test_unix_socket(short_tmp: Path) -> None:
    path = short_tmp / "ide.sock"
    check = ReadyCheck("http://localhost/healthz", str(path))
    assert not http_probe(check, 1.0)
    with running([PYTHON, str(CHILDREN / "http_server.py"), "--socket", str(path)]) as proc:
        deadline = time.monotonic() + 20
        while not http_probe(check, 1.0):
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)


def test_hung_server_times_out() -> None:
    port = free_port()
    argv = [PYTHON, str(CHILDREN / "http_server.py"), "--port", str(port), "--hang-after", "0"]
    with running(argv):
        wait_port("127.0.0.1", port, 20)
        began = time.monotonic()
        assert not http_probe(ReadyCheck(f"http://127.0.0.1:{port}/api/healthz"), 0.3)
        assert time.monotonic() - began < 2.0
