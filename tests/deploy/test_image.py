"""The image, built and run with podman/buildah (scripts/image.sh; Docker is not used here).

The build is skipped when an image labelled with the hash of the build inputs exists, so only
the first run after a change to what the Dockerfile copies pays for it (test-artifacts/image/
build.json says which). If podman cannot run, these tests fail with the reason.

Scenarios:
 1. The image is at most 1.0 GB and carries the JupyterHub version the README recommends.
 2. `podman run` with ports published on 127.0.0.1: `/api/status` answers 200 healthy on the
    gateway's port and on PORT (no prefix, no token), the banner is in the log, the user is
    jovyan (uid 1000), and JupyterLab has a Python kernel.
 3. `podman stop` stops it cleanly (exit code 0, well before the stop timeout) and nothing of it
    is left running.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.deploy.podman import (
    JUPYTERHUB_VERSION_DEFAULT,
    BuiltImage,
    PodmanUnavailable,
    build_image,
    podman,
)
from tests.procs import ROOT, free_port

pytestmark = [pytest.mark.slow, pytest.mark.timeout(2400)]

MAX_IMAGE_BYTES = 1_000_000_000
CONTAINER = "waiide-hub-image-test"
HEALTHY_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 20


@dataclass
class Container:
    name: str
    main_port: int
    api_port: int
    started_at: float

    def logs(self) -> str:
        result = podman("logs", self.name, check=False)
        return result.stdout + result.stderr


def _get(url: str) -> tuple[int, bytes]:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=5) as resp:
            return int(resp.status), resp.read()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.read()


@pytest.fixture(scope="module")
def image() -> BuiltImage:
    try:
        return build_image()
    except PodmanUnavailable as exc:
        pytest.fail(f"the image cannot be built here: {exc}", pytrace=False)


@pytest.fixture(scope="module")
def container(image: BuiltImage) -> Iterator[Container]:
    podman("rm", "-f", CONTAINER, check=False)  # a leftover of an interrupted run
    main_port, api_port = free_port(), free_port()
    started = time.monotonic()
    podman("run", "-d", "--name", CONTAINER, "--health-interval", "disable",
           "-p", f"127.0.0.1:{main_port}:8090", "-p", f"127.0.0.1:{api_port}:8091", image.tag)
    running = Container(CONTAINER, main_port, api_port, started)
    try:
        yield running
    finally:
        podman("rm", "-f", "-t", "5", CONTAINER, check=False)


def _wait_healthy(container: Container) -> float:
    deadline = time.monotonic() + HEALTHY_TIMEOUT_S
    last: object = None
    while time.monotonic() < deadline:
        try:
            status, body = _get(f"http://127.0.0.1:{container.api_port}/api/status")
        except OSError as exc:
            last = exc
        else:
            if status == 200:
                return time.monotonic() - container.started_at
            last = (status, body[:300])
        time.sleep(0.5)
    raise AssertionError(f"/api/status not 200 within {HEALTHY_TIMEOUT_S}s: {last}\n"
                         f"{container.logs()[-4000:]}")


# ---- 1 -----------------------------------------------------------------------------------------
def test_image_size_and_versions(image: BuiltImage) -> None:
    assert image.size_bytes <= MAX_IMAGE_BYTES, f"{image.size_bytes / 1e9:.2f} GB"
    labels = json.loads(podman("image", "inspect", image.tag).stdout)[0]["Labels"]
    assert labels["org.jupyter.jupyterhub.version"] == JUPYTERHUB_VERSION_DEFAULT
    assert f"JUPYTERHUB_VERSION={JUPYTERHUB_VERSION_DEFAULT}" in (ROOT / "README.md").read_text()
    result = podman("run", "--rm", "--network", "none", "--health-interval", "disable",
                    "--entrypoint", "/srv/waiide-hub/.venv/bin/python", image.tag, "-c",
                    "import jupyterhub, jupyterlab; print(jupyterhub.__version__)")
    assert result.stdout.strip() == JUPYTERHUB_VERSION_DEFAULT


# ---- 2 -----------------------------------------------------------------------------------------
def test_container_serves_health_on_both_ports(container: Container) -> None:
    ready_s = _wait_healthy(container)
    status, body = _get(f"http://127.0.0.1:{container.main_port}/api/status")
    assert status == 200, body[:500]
    data = json.loads(body)
    assert data["status"] == "healthy"
    assert set(data["components"]) == {"waiide", "singleuser", "gateway", "monitor"}
    logs = container.logs()
    assert "WAIIDE Hub is ready (full mode, standalone). Open:" in logs, logs[-3000:]
    assert "JupyterLab (IDE tile)" in logs
    who = podman("exec", container.name, "sh", "-c", "id -u; id -un").stdout.split()
    assert who == ["1000", "jovyan"]
    kernels = podman("exec", container.name, "/srv/waiide-hub/.venv/bin/jupyter",
                     "kernelspec", "list", "--json").stdout
    assert "python3" in json.loads(kernels)["kernelspecs"]
    # Lab's managed defaults (no news prompt, no update check) are installed in the image too.
    lab_defaults = podman("exec", container.name, "cat", "/srv/waiide-hub/.venv/share/jupyter/"
                          "lab/settings/overrides.d/waiide-hub.json", check=False)
    assert lab_defaults.returncode == 0, lab_defaults.stderr
    assert json.loads(lab_defaults.stdout) == json.loads(
        (ROOT / "supervisor" / "jupyterlab-overrides.json").read_text())
    # The seed's quick test, inside the container as a user in a terminal would run it.
    quick = podman("exec", container.name, "python3", "/srv/waiide-hub/scripts/test_api.py",
                   check=False)
    assert quick.returncode == 0, quick.stdout + quick.stderr
    print(f"container start -> /api/status 200: {ready_s:.1f} s")


# ---- 3 -----------------------------------------------------------------------------------------
def test_clean_stop(container: Container) -> None:
    _wait_healthy(container)
    started = time.monotonic()
    podman("stop", "-t", str(STOP_TIMEOUT_S), container.name, timeout_s=STOP_TIMEOUT_S + 30)
    took = time.monotonic() - started
    state = json.loads(podman("inspect", container.name).stdout)[0]["State"]
    assert state["Status"] == "exited"
    assert state["ExitCode"] == 0, container.logs()[-3000:]
    assert took < STOP_TIMEOUT_S, f"stop took {took:.1f}s: the stack ignored SIGTERM"
    assert "exiting with 0" in container.logs()
    print(f"podman stop: {took:.1f} s")
