"""supervisor.ide_settings / ide_setup / ide_socket: machine settings, heap cap, socket directory."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from common.errors import ConfigError
from supervisor.config import SupervisorConfig
from supervisor.ide_settings import (
    DEFAULT_MACHINE_SETTINGS,
    apply_machine_settings,
    load_managed_settings,
    node_options,
)
from supervisor.ide_setup import prepare_ide
from supervisor.ide_socket import SocketDirError, prepare_socket_dir

MANAGED = load_managed_settings(None) or {}


def test_built_in_defaults_are_a_managed_deployments() -> None:
    assert MANAGED["telemetry.telemetryLevel"] == "off"
    assert MANAGED["update.mode"] == "none"
    assert MANAGED["extensions.autoCheckUpdates"] is False
    assert MANAGED["workbench.startupEditor"] == "none"
    assert MANAGED["workbench.secondarySideBar.defaultVisibility"] == "hidden"
    assert DEFAULT_MACHINE_SETTINGS.is_file()


def test_missing_keys_are_added_and_the_users_kept(tmp_path: Path) -> None:
    path = tmp_path / "Machine" / "settings.json"
    path.parent.mkdir()
    path.write_text(json.dumps({"telemetry.telemetryLevel": "error", "editor.fontSize": 15}))
    added = apply_machine_settings(tmp_path, MANAGED)
    written = json.loads(path.read_text())
    assert written["telemetry.telemetryLevel"] == "error" and written["editor.fontSize"] == 15
    assert written["update.mode"] == "none" and "telemetry.telemetryLevel" not in added
    assert apply_machine_settings(tmp_path, MANAGED) == []  # idempotent


def test_a_file_with_comments_is_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "Machine" / "settings.json"
    path.parent.mkdir()
    path.write_text('{\n  // mine\n  "a": 1\n}\n')
    assert apply_machine_settings(tmp_path, MANAGED) == []
    assert "// mine" in path.read_text()


def _config(tmp_path: Path, **env: str) -> SupervisorConfig:
    base = {"HOME": str(tmp_path / "home"), "XDG_RUNTIME_DIR": str(tmp_path / "run")}
    (tmp_path / "run").mkdir(exist_ok=True)
    return SupervisorConfig.from_env({**base, **env}, euid=1000, python="/py")


def test_prepare_makes_the_socket_dir_private_and_writes_settings(tmp_path: Path) -> None:
    config = _config(tmp_path)
    prepare_ide(config)
    assert config.waiide_socket is not None
    directory = Path(config.waiide_socket).parent
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    settings = tmp_path / "home/.local/share/code-server/Machine/settings.json"
    assert json.loads(settings.read_text())["update.mode"] == "none"


def test_deployment_replaces_or_switches_off_the_defaults(tmp_path: Path) -> None:
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps({"chat.disableAIFeatures": True}))
    prepare_ide(_config(tmp_path, WAIIDE_MACHINE_SETTINGS=str(policy)))
    settings = tmp_path / "home/.local/share/code-server/Machine/settings.json"
    assert json.loads(settings.read_text()) == {"chat.disableAIFeatures": True}
    settings.unlink()
    prepare_ide(_config(tmp_path, WAIIDE_MACHINE_SETTINGS="none"))
    assert not settings.exists()
    policy.write_text("[1, 2]")
    with pytest.raises(ConfigError, match="WAIIDE_MACHINE_SETTINGS"):
        prepare_ide(_config(tmp_path, WAIIDE_MACHINE_SETTINGS=str(policy)))


def test_socket_dir_that_is_not_ours_is_refused(tmp_path: Path) -> None:
    (tmp_path / "link-target").mkdir()
    (tmp_path / "planted").symlink_to(tmp_path / "link-target")
    with pytest.raises(SocketDirError):
        prepare_socket_dir(str(tmp_path / "planted" / "waiide.sock"))
    (tmp_path / "loose").mkdir(mode=0o755)
    os.chmod(tmp_path / "loose", 0o755)
    prepare_socket_dir(str(tmp_path / "loose" / "waiide.sock"))
    assert stat.S_IMODE((tmp_path / "loose").stat().st_mode) == 0o700
    with pytest.raises(SocketDirError, match="owned by uid"):
        prepare_socket_dir(str(tmp_path / "loose" / "waiide.sock"), uid=os.getuid() + 1)


@pytest.mark.parametrize(("current", "limit", "expected"), [
    (None, None, None),
    (None, 4 << 30, "--max-old-space-size=2048"),
    ("--enable-source-maps", 1 << 30, "--enable-source-maps --max-old-space-size=512"),
    ("--max-old-space-size=300", 4 << 30, "--max-old-space-size=300"),
    (None, 100 << 20, "--max-old-space-size=128"),
])
def test_node_heap_cap(current: str | None, limit: int | None, expected: str | None) -> None:
    assert node_options(current, limit) == expected
