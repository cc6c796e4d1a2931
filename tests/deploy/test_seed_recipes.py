"""The seed's recipes as written, against the real stack (real code-server, real Jupyter).

The seed's "Full Integration Test" runs `./scripts/entrypoint-jupyterhub.sh` with
JUPYTERHUB_USER, JUPYTERHUB_SERVICE_PREFIX and USE_ALL_COMPONENTS=true and no hub; its "Quick
Test" is `python3 scripts/test_api.py` with no arguments; its health check is
`http://container:PORT/api/status`. (HOST=127.0.0.1 and free ports keep the run on loopback and
beside other tests; HOME is a temp dir, as a user's server would have its own.)

Scenarios (one stack for the module):
 1. Full mode standalone serves under JUPYTERHUB_SERVICE_PREFIX, and every URL of its banner
    answers 200 (tokens as printed; a browser-like client keeps cookies).
 2. `python3 scripts/test_api.py`, no arguments, in the same environment: every check passes; it
    found the stack's 0600 runtime file.
 3. `GET PORT/api/status`, no prefix and no token, is the gateway's health JSON.
 4. Full mode is JupyterLab: a Python kernelspec, and the launcher lists the WAIIDE tile with its
    icon, opening {prefix}WAIIDE/.
 5. At a clean stop the runtime file is removed.
 6. The status relay, alone in a Jupyter server: a gateway that answers 503 gives 503 with its
    JSON; no gateway gives 503 with the reason, never 200.
"""

from __future__ import annotations

import http.cookiejar
import http.server
import json
import os
import re
import signal
import stat
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.procs import PYTHON, ROOT, free_port, stop_group, wait_http

pytestmark = pytest.mark.slow

ENTRYPOINT = ROOT / "scripts" / "entrypoint-jupyterhub.sh"
TEST_API = ROOT / "scripts" / "test_api.py"
PREFIX = "/user/testuser/waiide/"
HUB_HOME = Path(os.environ.get("WAIIDE_HUB_HOME", "~/.cache/waiide-hub")).expanduser()
READY_TIMEOUT_S = 150.0
HEALTHY_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 20.0
URL_RE = re.compile(r"https?://[^\s,]+")
SYSTEM_PYTHON = "/usr/bin/python3"  # the seed's `python3`: the script needs the stdlib only


@dataclass
class Stack:
    proc: subprocess.Popen[bytes]
    env: dict[str, str]
    log: Path
    runtime_file: Path

    @property
    def main(self) -> str:
        return f"http://127.0.0.1:{self.env['PORT']}"

    @property
    def gateway(self) -> str:
        return f"http://127.0.0.1:{self.env['API_SERVER_PORT']}"

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def fail(self, message: str) -> AssertionError:
        return AssertionError(f"{message}\n--- stack log tail ---\n{self.output()[-5000:]}")


def seed_env(home: Path) -> dict[str, str]:
    """The seed's variables, on free loopback ports, without any hub variable."""
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("JUPYTERHUB_", "JUPYTER_", "GATEWAY_", "WAIIDE_", "MONITOR_",
                                  "SUPERVISOR_"))
           and key not in ("PORT", "API_SERVER_PORT", "HOST", "USE_ALL_COMPONENTS")}
    env.update({
        "JUPYTERHUB_USER": "testuser",
        "JUPYTERHUB_SERVICE_PREFIX": PREFIX,
        "USE_ALL_COMPONENTS": "true",
        "HOME": str(home),
        "HOST": "127.0.0.1",
        "PORT": str(free_port()),
        "API_SERVER_PORT": str(free_port()),
        "WAIIDE_PORT": str(free_port()),
        "WAIIDE_HUB_HOME": str(HUB_HOME),
    })
    return env


def _opener() -> urllib.request.OpenerDirector:
    """A browser-like client: keeps cookies, follows redirects, ignores proxies."""
    return urllib.request.build_opener(urllib.request.ProxyHandler({}),
                                       urllib.request.HTTPCookieProcessor(
                                           http.cookiejar.CookieJar()))


def _get(url: str, opener: urllib.request.OpenerDirector | None = None,
         timeout_s: float = 15.0) -> tuple[int, bytes, str]:
    """(status, body, final URL); HTTP errors are answers too."""
    try:
        with (opener or _opener()).open(url, timeout=timeout_s) as resp:
            return int(resp.status), resp.read(), resp.url
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.read(), url


def _wait_for(check: Any, timeout_s: float, what: str, stack: Stack) -> Any:
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while time.monotonic() < deadline:
        if stack.proc.poll() is not None:
            raise stack.fail(f"the stack exited with {stack.proc.returncode} while waiting "
                             f"for {what}")
        last = check()
        if last:
            return last
        time.sleep(0.25)
    raise stack.fail(f"no {what} within {timeout_s}s (last: {last!r})")


def _healthy(url: str) -> bool:
    status, body, _ = _get(url, timeout_s=5)
    return status == 200 and json.loads(body).get("status") == "healthy"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    base = tmp_path_factory.mktemp("seed")
    home = base / "home"
    home.mkdir()
    env = seed_env(home)
    log = base / "stack.log"
    runtime_file = home / ".local/share/waiide-hub/runtime" / f"stack-{env['API_SERVER_PORT']}.json"
    with open(log, "wb") as out:
        proc = subprocess.Popen([str(ENTRYPOINT)], env=env, cwd=home, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    running = Stack(proc, env, log, runtime_file)
    try:
        _wait_for(runtime_file.exists, READY_TIMEOUT_S, "runtime file (stack ready)", running)
        _wait_for(lambda: _healthy(f"{running.gateway}/api/status"), HEALTHY_TIMEOUT_S,
                  "healthy /api/status", running)
        yield running
    finally:
        # The supervisor stops its children in order; the group kill is the backstop.
        stop_group(proc, STOP_TIMEOUT_S, leader_only=True)


def banner_urls(output: str) -> list[str]:
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if "WAIIDE Hub is ready" in line)
    urls = []
    for line in lines[start + 1:]:
        if not line.strip() or ("http" not in line and "(" not in line):
            break
        urls += [url.rstrip(".") for url in URL_RE.findall(line)]
    return urls


# ---- 1 -----------------------------------------------------------------------------------------
def test_banner_urls_answer_under_the_prefix(stack: Stack) -> None:
    urls = banner_urls(stack.output())
    assert f"{stack.main}{PREFIX}WAIIDE/?token=" in " ".join(urls), urls
    assert f"{stack.main}{PREFIX}lab?token=" in " ".join(urls), urls
    assert f"{stack.main}/api/status" in urls, urls
    for url in urls:
        status, body, final = _get(url, _opener())
        assert status == 200, f"{url} -> {status} at {final}: {body[:300]!r}"
    # Jupyter itself serves under the prefix, as the monitor and the banner expect.
    status, body, _ = _get(f"{stack.main}{PREFIX}api")
    assert status == 200 and "version" in json.loads(body)
    assert _get(f"{stack.main}/api")[0] == 404  # not at the root any more


# ---- 2 -----------------------------------------------------------------------------------------
def test_quick_test_with_no_arguments(stack: Stack) -> None:
    mode = stat.S_IMODE(stack.runtime_file.stat().st_mode)
    assert mode == 0o600, oct(mode)
    assert stat.S_IMODE(stack.runtime_file.parent.stat().st_mode) == 0o700
    info = json.loads(stack.runtime_file.read_text())
    assert info["prefix"] == PREFIX and info["mode"] == "full" and not info["under_hub"]
    assert info["gateway_token"] and info["main_token"]
    result = subprocess.run([SYSTEM_PYTHON, str(TEST_API)], env=stack.env, cwd=ROOT,
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"runtime file {stack.runtime_file}" in result.stdout
    assert "FAIL" not in result.stdout
    total = re.search(r"test_api: (\d+) of (\d+) endpoints passed", result.stdout)
    assert total and total.group(1) == total.group(2) == "10", result.stdout


# ---- 3 -----------------------------------------------------------------------------------------
def test_health_check_on_port_as_the_seed_says(stack: Stack) -> None:
    status, body, _ = _get(f"{stack.main}/api/status")
    gateway_status, gateway_body, _ = _get(f"{stack.gateway}/api/status")
    assert status == gateway_status == 200
    relayed, direct = json.loads(body), json.loads(gateway_body)
    assert relayed["status"] == direct["status"] == "healthy" and relayed["healthy"] is True
    assert set(relayed) == set(direct)
    assert set(relayed["components"]) == {"waiide", "singleuser", "gateway", "monitor"}
    # Jupyter's own status stays where it was, behind its token.
    assert _get(f"{stack.main}{PREFIX}api/status")[0] == 403


# ---- 4 -----------------------------------------------------------------------------------------
def test_jupyterlab_with_kernel_and_ide_tile(stack: Stack) -> None:
    token = json.loads(stack.runtime_file.read_text())["main_token"]
    root = f"{stack.main}{PREFIX}"
    status, body, _ = _get(f"{root}api/kernelspecs?token={token}")
    assert status == 200
    specs = json.loads(body)["kernelspecs"]
    assert "python3" in specs, specs
    status, body, _ = _get(f"{root}lab?token={token}", _opener())
    assert status == 200 and b"JupyterLab" in body
    status, body, _ = _get(f"{root}server-proxy/servers-info?token={token}")
    assert status == 200
    [entry] = [s for s in json.loads(body)["server_processes"] if s["name"] == "WAIIDE"]
    launcher = entry["launcher_entry"]
    assert launcher["enabled"] and launcher["title"] == "WAIIDE"
    assert launcher["path_info"] == "WAIIDE/" and entry["new_browser_tab"]
    status, icon, _ = _get(f"{stack.main}{launcher['icon_url']}?token={token}")
    assert status == 200 and b"<svg" in icon


# ---- 5 -----------------------------------------------------------------------------------------
def test_clean_stop_removes_the_runtime_file(stack: Stack) -> None:
    stack.proc.send_signal(signal.SIGTERM)
    assert stack.proc.wait(timeout=STOP_TIMEOUT_S) == 0, stack.output()[-3000:]
    assert not stack.runtime_file.exists()


# ---- 6 -----------------------------------------------------------------------------------------
class _FakeGateway(http.server.BaseHTTPRequestHandler):
    body = json.dumps({"status": "unhealthy", "healthy": False, "reason": "waiide: down"})

    def do_GET(self) -> None:
        data = self.body.encode()
        self.send_response(503 if self.path == "/api/status" else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


def test_status_relay_never_reports_healthy_by_itself(tmp_path: Path) -> None:
    gateway = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _FakeGateway)
    thread = threading.Thread(target=gateway.serve_forever, daemon=True)
    thread.start()
    dead_port = free_port()
    try:
        for target, expected_reason in (
                (f"http://127.0.0.1:{gateway.server_address[1]}/api/status", "waiide: down"),
                (f"http://127.0.0.1:{dead_port}/api/status", "did not answer")):
            config_dir = tmp_path / str(len(list(tmp_path.iterdir())))
            config_dir.mkdir()
            (config_dir / "jupyter_server_config.json").write_text(json.dumps({
                "ServerApp": {"jpserver_extensions": {"supervisor.jupyter_status": True}},
                "WaiideHubStatus": {"gateway_status_url": target},
            }))
            port = free_port()
            env = {**os.environ, "JUPYTER_CONFIG_PATH": str(config_dir), "HOME": str(tmp_path),
                   "JUPYTER_TOKEN": "relay-test"}
            argv = [PYTHON, "-m", "jupyter_server", "--ip=127.0.0.1", f"--port={port}",
                    "--no-browser", "--ServerApp.port_retries=0", "--allow-root"]
            proc = subprocess.Popen(argv, env=env, cwd=tmp_path, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL, start_new_session=True)
            try:
                wait_http(f"http://127.0.0.1:{port}/api", 60, proc)
                status, body, _ = _get(f"http://127.0.0.1:{port}/api/status")
                data = json.loads(body)
                assert status == 503 and data["healthy"] is False
                assert expected_reason in data["reason"], data
            finally:
                stop_group(proc, 10)
    finally:
        gateway.shutdown()
        gateway.server_close()
        thread.join(timeout=5)
