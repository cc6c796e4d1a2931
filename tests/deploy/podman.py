"""The image in the tests: podman on this machine, the image built once per set of inputs.

`scripts/image.sh` does the work (packages, containers.conf, the stand-in base image, the build,
skipped when an image labelled with the hash of the build inputs exists); this module calls it
with deadlines and turns every way it cannot run into a failure that says why (never a skip).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tests.procs import ROOT

IMAGE_SH = ROOT / "scripts" / "image.sh"
IMAGE_TAG = "localhost/waiide-hub:test"
ARTIFACTS = ROOT / "test-artifacts" / "image"
SETUP_TIMEOUT_S = 900.0
BUILD_TIMEOUT_S = 1800.0
PODMAN_TIMEOUT_S = 120.0
# The build and the tests use the same JupyterHub version: the Dockerfile's default.
JUPYTERHUB_VERSION_DEFAULT = "5.4.6"


class PodmanUnavailable(AssertionError):
    """podman/buildah cannot do what the test needs here; the message says why."""


def containers_env() -> dict[str, str]:
    """The environment podman needs on this machine (scripts/image.sh writes the conf)."""
    conf = subprocess.run(["bash", str(IMAGE_SH), "conf"], capture_output=True, text=True,
                          timeout=30, check=True).stdout.strip()
    return {**os.environ, "CONTAINERS_CONF": conf}


def podman(*args: str, timeout_s: float = PODMAN_TIMEOUT_S,
           check: bool = True) -> subprocess.CompletedProcess[str]:
    if shutil.which("podman") is None:
        raise PodmanUnavailable("podman is not installed: run `scripts/setup.sh test` "
                                "(it runs `scripts/image.sh setup`)")
    result = subprocess.run(["podman", *args], capture_output=True, text=True,
                            timeout=timeout_s, check=False, env=containers_env())
    if check and result.returncode != 0:
        raise PodmanUnavailable(f"podman {' '.join(args)} failed ({result.returncode}): "
                                f"{result.stderr.strip()[-2000:]}")
    return result


@dataclass(frozen=True)
class BuiltImage:
    tag: str
    image_id: str
    size_bytes: int
    build_s: float
    cached: bool


def _run_script(args: Sequence[str], timeout_s: float, log: Path) -> None:
    log.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "IMAGE_BUILD_LOG": str(log.with_suffix(".build.log"))}
    try:
        result = subprocess.run(["bash", str(IMAGE_SH), *args], capture_output=True, text=True,
                                timeout=timeout_s, check=False, env=env)
    except subprocess.TimeoutExpired as exc:
        raise PodmanUnavailable(f"scripts/image.sh {' '.join(args)} took over {timeout_s}s") from exc
    log.write_text(result.stdout + result.stderr)
    if result.returncode != 0:
        build_log = log.with_suffix(".build.log")
        tail = build_log.read_text(errors="replace")[-3000:] if build_log.exists() else ""
        raise PodmanUnavailable(f"scripts/image.sh {' '.join(args)} failed "
                                f"({result.returncode}):\n{result.stderr[-3000:]}\n{tail}")


def build_image(tag: str = IMAGE_TAG) -> BuiltImage:
    """Build `tag` (or reuse the image built from the same inputs); what it took."""
    started = time.monotonic()
    _run_script(["build", tag], BUILD_TIMEOUT_S, ARTIFACTS / "build.txt")
    elapsed = time.monotonic() - started
    cached = "already built from these inputs" in (ARTIFACTS / "build.txt").read_text()
    info = json.loads(podman("image", "inspect", tag).stdout)[0]
    built = BuiltImage(tag, info["Id"][:12], int(info["Size"]), elapsed, cached)
    (ARTIFACTS / "build.json").write_text(json.dumps(built.__dict__, indent=2) + "\n")
    return built


def hub_python() -> Path:
    """The Python of the test hub's venv (JupyterHub as in the image, DockerSpawner)."""
    _run_script(["hub-venv"], SETUP_TIMEOUT_S, ARTIFACTS / "hub-venv.txt")
    path = subprocess.run(["bash", str(IMAGE_SH), "hub-python"], capture_output=True,
                          text=True, timeout=30, check=True).stdout.strip()
    return Path(path)
