"""The image spawned by a real DockerSpawner, through a real JupyterHub, in Chromium.

JupyterHub (the version the image carries, with DockerSpawner, in a venv of its own) loads the
README's DockerSpawner example (tests/e2e/dockerspawner_config.py adds only this machine's and
the test's settings) and talks to podman's Docker-compatible API (`podman system service` on a
unix socket); containers publish their port on 127.0.0.1 only. If podman cannot run, the test
fails with the reason.

One scenario, in order, as a user and an admin would live it:
 1. alice logs in with the hub's form in Chromium; the hub starts her (default) server and she
    lands in the IDE at /user/alice/WAIIDE/, connected (the Explorer lists her home). The time
    from the login to a connected IDE is the spawn-to-IDE time (test-artifacts/dockerspawner/).
    The container's port is published on 127.0.0.1 only, and `python3 scripts/test_api.py` in
    the server (its environment, no arguments) passes.
 2. /user/alice/lab is JupyterLab, whose launcher shows the WAIIDE tile; the tile opens the IDE
    in a new tab.
 3. A file saved in her home through the server, then the server stopped through the hub: the
    container is gone (DockerSpawner `remove = True`).
 4. Started again, the new container has her file: the home is the volume waiide-home-alice.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page

from tests.browser.workbench import chromium_page, screenshot, wait_connected
from tests.deploy.podman import (
    BuiltImage,
    PodmanUnavailable,
    build_image,
    containers_env,
    hub_python,
    podman,
)
from tests.e2e.hub import HUB_HOME
from tests.procs import ROOT, free_port, stop_group, wait_unix_socket

pytestmark = [pytest.mark.slow, pytest.mark.timeout(3000)]

CONFIG = Path(__file__).resolve().parent / "dockerspawner_config.py"
CHP = HUB_HOME / "npm-tools" / "node_modules" / ".bin" / "configurable-http-proxy"
ARTIFACTS = ROOT / "test-artifacts" / "dockerspawner"
USER = "alice"
VOLUME = f"waiide-home-{USER}"  # the example's volume template
HUB_HEALTH_TIMEOUT_S = 60.0
SPAWN_TIMEOUT_S = 300.0
LAB_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 60.0
PERSISTED = "persisted-by-the-volume.txt"


@dataclass
class Hub:
    url: str
    token: str
    proc: subprocess.Popen[bytes]
    log: Path
    containers: set[str] = field(default_factory=set)

    def api(self, method: str, path: str, body: Any = None,
            token: str | None = None, timeout_s: float = 30.0) -> tuple[int, Any]:
        return _request(method, f"{self.url}/hub/api{path}", token or self.token, body, timeout_s)

    def server(self) -> dict[str, Any] | None:
        status, user = self.api("GET", f"/users/{USER}")
        assert status == 200, (status, user)
        model = user["servers"].get("")
        return dict(model) if model else None

    def fail(self, message: str) -> AssertionError:
        tail = self.log.read_text(errors="replace")[-6000:]
        return AssertionError(f"{message}\n--- hub log tail ({self.log}) ---\n{tail}")


def _request(method: str, url: str, token: str, body: Any = None,
             timeout_s: float = 30.0) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Authorization": f"token {token}",
                                          "Content-Type": "application/json"})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(req, timeout=timeout_s) as resp:
            status, raw = int(resp.status), resp.read()
    except urllib.error.HTTPError as exc:
        with exc:
            status, raw = exc.code, exc.read()
    except OSError as exc:  # not listening (yet): no HTTP status
        return 0, str(exc)
    try:
        return status, (json.loads(raw) if raw.strip() else None)
    except ValueError:
        return status, raw[:500]


def _wait(check: Any, timeout_s: float, what: str, hub: Hub) -> Any:
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while time.monotonic() < deadline:
        if hub.proc.poll() is not None:
            raise hub.fail(f"jupyterhub exited with {hub.proc.returncode} waiting for {what}")
        last = check()
        if last:
            return last
        time.sleep(0.5)
    raise hub.fail(f"no {what} within {timeout_s}s (last: {last!r})")


def _container_exists(container_id: str) -> bool:
    return podman("container", "exists", container_id, check=False).returncode == 0


@pytest.fixture(scope="module")
def image() -> BuiltImage:
    try:
        return build_image()
    except PodmanUnavailable as exc:
        pytest.fail(f"the image cannot be built here: {exc}", pytrace=False)


@contextlib.contextmanager
def podman_service(run_dir: Path) -> Iterator[Path]:
    """`podman system service` on a unix socket in `run_dir`: the Docker API for the hub."""
    sock = run_dir / "podman.sock"
    log = open(run_dir / "podman-service.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(["podman", "system", "service", "--time=0", f"unix://{sock}"],
                            env=containers_env(), stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        try:
            wait_unix_socket(str(sock), 30)
        except TimeoutError as exc:
            raise PodmanUnavailable(f"podman system service did not open {sock}: "
                                    f"{(run_dir / 'podman-service.log').read_text()[-2000:]}"
                                    ) from exc
        yield sock
    finally:
        stop_group(proc, 10)
        log.close()


@pytest.fixture(scope="module")
def hub(image: BuiltImage, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    run_dir = tmp_path_factory.mktemp("dockerspawner")
    if not os.access(CHP, os.X_OK):
        pytest.fail(f"configurable-http-proxy is not at {CHP}: run scripts/setup.sh test",
                    pytrace=False)
    try:
        python = hub_python()
        # A home left by an interrupted run would hide the test's own file.
        podman("volume", "rm", "-f", VOLUME, check=False)
        service = podman_service(run_dir)
        sock = service.__enter__()
    except PodmanUnavailable as exc:
        pytest.fail(f"DockerSpawner cannot run here: {exc}", pytrace=False)
    port, token = free_port(), secrets.token_hex(24)
    env = {**containers_env(),
           "DOCKER_HOST": f"unix://{sock}", "WAIIDE_IMAGE": image.tag,
           "JH_RUN_DIR": str(run_dir), "JH_PORT": str(port), "JH_HUB_PORT": str(free_port()),
           "JH_PROXY_API_PORT": str(free_port()), "JH_CHP": str(CHP), "JH_TEST_TOKEN": token}
    log = run_dir / "jupyterhub.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([str(python), "-m", "jupyterhub", "-f", str(CONFIG)], env=env,
                                cwd=run_dir, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    running = Hub(f"http://127.0.0.1:{port}", token, proc, log)
    try:
        _wait(lambda: _request("GET", f"{running.url}/hub/health", token)[0] == 200,
              HUB_HEALTH_TIMEOUT_S, "/hub/health 200", running)
        yield running
    finally:
        with contextlib.suppress(Exception):
            running.api("DELETE", f"/users/{USER}/server", timeout_s=STOP_TIMEOUT_S)
        stop_group(proc, 30, leader_only=True)  # the hub stops CHP (cleanup_proxy)
        for container in running.containers:
            podman("rm", "-f", "-t", "5", container, check=False)
        podman("volume", "rm", "-f", VOLUME, check=False)
        service.__exit__(None, None, None)


def _login(page: Page, hub: Hub) -> None:
    page.goto(f"{hub.url}/hub/login", wait_until="domcontentloaded")
    page.fill("#username_input", USER)
    page.fill("#password_input", "any password")
    page.click("#login_submit")


def _track_container(hub: Hub) -> str:
    model = _wait(lambda: (hub.server() or {}).get("ready") and hub.server(), SPAWN_TIMEOUT_S,
                  "ready server", hub)
    container = str(model["state"]["object_id"])  # DockerSpawner's container id
    hub.containers.add(container)
    return container


def test_dockerspawner_end_to_end(hub: Hub, tmp_path: Path) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    with chromium_page(tmp_path / "chromium") as page:
        # ---- 1: login -> spawn -> the IDE (the example's default_url) -------------------------
        started = time.monotonic()
        _login(page, hub)
        page.wait_for_url(f"{hub.url}/user/{USER}/WAIIDE/**", timeout=SPAWN_TIMEOUT_S * 1000)
        page.locator(".monaco-workbench").wait_for(state="visible", timeout=120_000)
        wait_connected(page, timeout_s=120)
        timings["login_to_connected_ide_s"] = round(time.monotonic() - started, 1)
        screenshot(page, "ide-through-hub", ARTIFACTS)
        container = _track_container(hub)
        bindings = json.loads(podman("inspect", container).stdout)[0]["HostConfig"]["PortBindings"]
        assert [b["HostIp"] for b in bindings["8090/tcp"]] == ["127.0.0.1"], bindings
        # The seed's quick test, in a terminal of the server (its environment, no arguments).
        quick = podman("exec", container, "python3", "/srv/waiide-hub/scripts/test_api.py",
                       check=False)
        assert quick.returncode == 0, quick.stdout + quick.stderr
        assert "under JupyterHub" in quick.stdout

        # ---- 2: Lab with the WAIIDE tile, which opens the IDE -------------------------------
        started = time.monotonic()
        page.goto(f"{hub.url}/user/{USER}/lab", wait_until="domcontentloaded")
        tile = page.locator(".jp-LauncherCard", has_text="WAIIDE")
        tile.first.wait_for(state="visible", timeout=LAB_TIMEOUT_S * 1000)
        timings["lab_launcher_s"] = round(time.monotonic() - started, 1)
        assert tile.first.locator("svg, img").count() >= 1  # the tile's icon
        screenshot(page, "lab-with-waiide-tile", ARTIFACTS)
        with page.context.expect_page(timeout=30_000) as opened:
            tile.first.click()
        ide = opened.value
        ide.wait_for_url(f"{hub.url}/user/{USER}/WAIIDE/**", timeout=60_000)
        ide.locator(".monaco-workbench").wait_for(state="visible", timeout=120_000)
        wait_connected(ide, timeout_s=120)
        ide.close()

    # ---- 3: a file in the home, then stop: the container is removed ------------------------
    status, reply = hub.api("POST", f"/users/{USER}/tokens", {"note": "e2e", "expires_in": 3600})
    assert status == 201, (status, reply)
    user_token = reply["token"]
    content = f"written before the stop {secrets.token_hex(8)}"
    contents_url = f"{hub.url}/user/{USER}/api/contents/{PERSISTED}"
    status, reply = _request("PUT", contents_url, user_token,
                             {"type": "file", "format": "text", "content": content})
    assert status in (200, 201), (status, reply)
    status, reply = hub.api("DELETE", f"/users/{USER}/server", timeout_s=STOP_TIMEOUT_S)
    assert status in (202, 204), (status, reply)
    _wait(lambda: hub.server() is None, STOP_TIMEOUT_S, "stopped server", hub)
    _wait(lambda: not _container_exists(container), STOP_TIMEOUT_S, "container removed", hub)

    # ---- 4: start again: a new container, the same home -----------------------------------
    started = time.monotonic()
    status, reply = hub.api("POST", f"/users/{USER}/server", {})
    assert status in (201, 202), (status, reply)
    second = _track_container(hub)
    timings["api_spawn_to_ready_s"] = round(time.monotonic() - started, 1)
    assert second != container
    status, reply = _request("GET", contents_url, user_token)
    assert status == 200, (status, reply)
    assert reply["content"] == content
    (ARTIFACTS / "timings.json").write_text(json.dumps(timings, indent=2) + "\n")
    print(f"DockerSpawner timings: {timings}")
