"""A recording stand-in for the gateway's activity route (ide-extension/waiide-activity/CONTRACT.md).

A real HTTP server on a real loopback socket, bound before it is handed to the extension:

    with ActivityRecorder("s3cret") as recorder:
        env = {"WAIIDE_ACTIVITY_URL": recorder.url, "WAIIDE_ACTIVITY_SECRET": "s3cret"}
        ...
        recorder.reports()          # every POSTed report, in arrival order
        recorder.notice_polls       # GET <url>/notice count
        recorder.set_notice({...})  # what the next polls answer (None: 204)

`fail_next(n)` answers the next n reports with 503 (the gateway restarting, say).

Requests without the right secret header, on other paths or with a body that is not a JSON
object are answered 403/404/400 and kept in `rejected`: a test checks it stays empty.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self

SECRET_HEADER = "X-WAIIDE-Activity-Secret"
REPORT_PATH = "/api/activity/ide"
NOTICE_PATH = REPORT_PATH + "/notice"
MAX_BODY_BYTES = 64 * 1024


@dataclass(frozen=True)
class Report:
    """One POSTed report and when it arrived (time.monotonic and wall clock)."""

    received_mono: float
    received_wall: float
    body: dict[str, Any]

    @property
    def causes(self) -> list[str]:
        return list(self.body.get("causes") or [])

    @property
    def busy(self) -> list[dict[str, str]]:
        return list(self.body.get("busy") or [])


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        return  # quiet: the recorder keeps what the tests need

    def _refuse(self, status: HTTPStatus, why: str) -> None:
        self.server.recorder.reject(f"{self.command} {self.path}: {why}")
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _authorised(self) -> bool:
        if self.headers.get(SECRET_HEADER) != self.server.recorder.secret:
            self._refuse(HTTPStatus.FORBIDDEN, "missing or wrong secret")
            return False
        return True

    def do_POST(self) -> None:
        if self.path != REPORT_PATH:
            self._refuse(HTTPStatus.NOT_FOUND, "not the report path")
            return
        if not self._authorised():
            return
        if self.server.recorder.take_failure():
            self.send_response(HTTPStatus.SERVICE_UNAVAILABLE)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(min(length, MAX_BODY_BYTES))
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        if not isinstance(body, dict):
            self._refuse(HTTPStatus.BAD_REQUEST, f"not a JSON object: {raw[:200]!r}")
            return
        self.server.recorder.record(body)
        self.send_response(HTTPStatus.NO_CONTENT)
        self.end_headers()

    def do_GET(self) -> None:
        if self.path != NOTICE_PATH:
            self._refuse(HTTPStatus.NOT_FOUND, "not the notice path")
            return
        if not self._authorised():
            return
        notice = self.server.recorder.poll_notice()
        if notice is None:
            self.send_response(HTTPStatus.NO_CONTENT)
            self.end_headers()
            return
        payload = json.dumps(notice).encode()
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, sock: socket.socket, recorder: ActivityRecorder) -> None:
        super().__init__(sock.getsockname(), _Handler, bind_and_activate=False)
        self.socket.close()
        self.socket = sock
        self.recorder = recorder


class ActivityRecorder:
    """Records the extension's reports and notice polls; see the module docstring."""

    def __init__(self, secret: str) -> None:
        self.secret = secret
        self._lock = threading.Lock()
        self._reports: list[Report] = []
        self._notice: dict[str, Any] | None = None
        self.notice_polls = 0
        self.failed_reports = 0
        self._failures_left = 0
        self.rejected: list[str] = []
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        self._server = _Server(sock, self)
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.1}, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.socket.getsockname()[:2]
        return f"http://{host}:{port}{REPORT_PATH}"

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def record(self, body: dict[str, Any]) -> None:
        with self._lock:
            self._reports.append(Report(time.monotonic(), time.time(), body))

    def fail_next(self, count: int) -> None:
        """Answer the next `count` reports with 503 (not recorded)."""
        with self._lock:
            self._failures_left = count

    def take_failure(self) -> bool:
        with self._lock:
            if self._failures_left <= 0:
                return False
            self._failures_left -= 1
            self.failed_reports += 1
            return True

    def reject(self, why: str) -> None:
        with self._lock:
            self.rejected.append(why)

    def poll_notice(self) -> dict[str, Any] | None:
        with self._lock:
            self.notice_polls += 1
            return self._notice

    def set_notice(self, notice: dict[str, Any] | None) -> None:
        """What GET <url>/notice answers from now on (None: 204, no notice)."""
        with self._lock:
            self._notice = notice

    def reports(self, since_mono: float = 0.0) -> list[Report]:
        """The reports received at or after `since_mono` (time.monotonic), oldest first."""
        with self._lock:
            return [r for r in self._reports if r.received_mono >= since_mono]

    def with_cause(self, cause: str, since_mono: float = 0.0) -> list[Report]:
        """The reports since `since_mono` that carry `cause`."""
        return [r for r in self.reports(since_mono) if cause in r.causes]
