"""Full mode's JupyterLab, as installed by scripts/setup.sh, never asks to fetch Jupyter news and
never checks for updates: both are requests to the internet that hang offline, and the prompt is
the first thing a user would see in Lab (issue 14, managed defaults)."""

from __future__ import annotations

import json
import os
import urllib.request
from pathlib import Path

import pytest

from tests.procs import PYTHON, ROOT, free_port, running

NOTIFICATION_PLUGIN = "@jupyterlab/apputils-extension:notification"


@pytest.mark.timeout(90)
def test_lab_serves_the_managed_news_and_update_defaults(tmp_path: Path) -> None:
    port, token = free_port(), "lab-defaults-test"
    # Only this test's own folders for the user's side: what Lab shows comes from the install.
    env = {"HOME": str(tmp_path), "JUPYTER_CONFIG_DIR": str(tmp_path / "config"),
           "JUPYTER_DATA_DIR": str(tmp_path / "data"), "JUPYTER_RUNTIME_DIR": str(tmp_path / "rt"),
           "JUPYTERLAB_SETTINGS_DIR": str(tmp_path / "lab-user"), "JUPYTER_CONFIG_PATH": ""}
    argv = [PYTHON, "-m", "jupyter_server", "--ip=127.0.0.1", f"--port={port}", "--no-browser",
            f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={tmp_path}"]
    if os.geteuid() == 0:
        argv.append("--allow-root")
    base = f"http://127.0.0.1:{port}"
    with running(argv, env, ready_url=f"{base}/api", ready_timeout_s=60,
                 log_path=tmp_path / "jupyter.log", cwd=ROOT):
        url = f"{base}/lab/api/settings/{NOTIFICATION_PLUGIN}?token={token}"
        with urllib.request.urlopen(url, timeout=20) as resp:
            plugin = json.loads(resp.read())
    defaults = {name: plugin["schema"]["properties"][name]["default"]
                for name in ("fetchNews", "checkForUpdates")}
    assert defaults == {"fetchNews": "false", "checkForUpdates": False}, (
        f"{defaults}: scripts/setup.sh did not install supervisor/jupyterlab-overrides.json")
    assert plugin["raw"] in ("", "{}"), "the user's own settings were not left empty"
