"""Shared fixtures: a real fake WAIIDE and real gateway processes on loopback."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

from tests.procs import PYTHON, RESOURCES, ROOT, free_port, running, wait_unix_socket


@dataclass
class Server:
    """A process of ours listening on 127.0.0.1:port."""

    port: int
    pid: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def tree(self) -> list[psutil.Process]:
        proc = psutil.Process(self.pid)
        return [proc, *proc.children(recursive=True)]

    def rss(self) -> int:
        """Resident memory of the whole process tree, in bytes."""
        total = 0
        for proc in self.tree():
            with contextlib.suppress(psutil.Error):
                total += proc.memory_info().rss
        return total

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


@contextlib.contextmanager
def fake_waiide(tmp: Path, *, socket_path: str | None = None) -> Iterator[Server]:
    port = free_port()
    log = tmp / f"fake-waiide-{port}.log"
    args = ["--socket", socket_path] if socket_path else ["--port", str(port)]
    ready = None if socket_path else f"http://127.0.0.1:{port}/healthz"
    with running([PYTHON, str(RESOURCES / "fake_waiide.py"), *args], ready_url=ready,
                 log_path=log) as proc:
        if socket_path:
            wait_unix_socket(socket_path, 30)
        yield Server(port, proc.pid, log)


@contextlib.contextmanager
def gateway_process(tmp: Path, upstream_port: int, env: Mapping[str, str] | None = None,
                    *, workers: int = 2) -> Iterator[Server]:
    """`python -m gateway` with 2 workers in front of `upstream_port`; stopped whatever happens."""
    port = free_port()
    log = tmp / f"gateway-{port}.log"
    full_env = {
        "HOST": "127.0.0.1",
        "API_SERVER_PORT": str(port),
        "WAIIDE_HOST": "127.0.0.1",
        "WAIIDE_PORT": str(upstream_port),
        "GATEWAY_WORKERS": str(workers),
        "GATEWAY_AUTH": "none",
        "PYTHONPATH": str(ROOT),
    }
    full_env.update(env or {})
    with running([PYTHON, "-m", "gateway"], full_env, ready_url=f"http://127.0.0.1:{port}/api",
                 log_path=log, cwd=ROOT, term_leader_only=True) as proc:
        server = Server(port, proc.pid, log)
        # /api answers as soon as one worker is up; wait for all of them, so a test never races
        # a worker that is still importing.
        deadline = time.monotonic() + 60
        while server.log_text().count("Worker ready") < workers:
            if time.monotonic() > deadline:
                raise TimeoutError(f"not all {workers} gateway workers ready:\n"
                                   f"{server.log_text()[-2000:]}")
            time.sleep(0.05)
        yield server


@pytest.fixture(scope="session")
def session_tmp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("servers")


@pytest.fixture(scope="session")
def upstream(session_tmp: Path) -> Iterator[Server]:
    with fake_waiide(session_tmp) as server:
        yield server


@pytest.fixture(scope="session")
def gateway(session_tmp: Path, upstream: Server) -> Iterator[Server]:
    """An open gateway (GATEWAY_AUTH=none) with default limits."""
    with gateway_process(session_tmp, upstream.port) as server:
        yield server


TEST_TOKEN = "s3cret-test-token"


@pytest.fixture(scope="session")
def token_gateway(session_tmp: Path, upstream: Server) -> Iterator[Server]:
    """A gateway that requires TEST_TOKEN."""
    with gateway_process(session_tmp, upstream.port,
                         {"GATEWAY_AUTH": "token", "GATEWAY_TOKEN": TEST_TOKEN}) as server:
        yield server


@pytest.fixture(scope="session")
def tight_gateway(session_tmp: Path, upstream: Server) -> Iterator[Server]:
    """Short deadlines and small limits, to make timeouts and caps observable quickly."""
    env = {"GATEWAY_READ_TIMEOUT": "1", "GATEWAY_WS_MAX_MESSAGE_BYTES": "65536",
           "GATEWAY_WS_PING_INTERVAL": "0.3", "GATEWAY_MAX_BODY_BYTES": "100000"}
    with gateway_process(session_tmp, upstream.port, env) as server:
        yield server


@pytest.fixture(scope="session")
def dead_port() -> int:
    """A port nothing listens on (WAIIDE down)."""
    return free_port()


def pytest_configure(config: pytest.Config) -> None:
    os.environ.setdefault("PYTHONDONTWRITEBYTECODE", "1")
