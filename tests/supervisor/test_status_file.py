"""The components file: format, atomic replacement, no temp files left."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from common.components_file import ChildEntry
from supervisor.status_file import ComponentsFile


def test_document_format_and_replacement(tmp_path: Path) -> None:
    path = tmp_path / "components.json"
    writer = ComponentsFile(path, wall_clock=lambda: 1700000000.25)
    writer.write([ChildEntry("waiide", 123, 1699999999.5, 0, "running", False),
                  ChildEntry("gateway", None, None, 2, "flapping", True)])
    assert json.loads(path.read_text()) == {
        "components": {
            "waiide": {"pid": 123, "started_at": 1699999999.5, "restarts": 0,
                       "state": "running", "flapping": False},
            "gateway": {"pid": None, "started_at": None, "restarts": 2, "state": "flapping",
                        "flapping": True}},
        "updated_at": 1700000000.25}
    inode = path.stat().st_ino
    writer.write([ChildEntry("waiide", 124, 1.0, 1, "starting", False)])
    assert json.loads(path.read_text())["components"]["waiide"]["pid"] == 124
    assert path.stat().st_ino != inode  # replaced by rename, never rewritten in place
    assert sorted(p.name for p in tmp_path.iterdir()) == ["components.json"]


def test_write_failure_is_logged_not_raised(tmp_path: Path,
                                            caplog: pytest.LogCaptureFixture) -> None:
    writer = ComponentsFile(tmp_path / "missing-dir" / "components.json")
    writer.write([ChildEntry("monitor", 1, 1.0, 0, "running", False)])
    assert "cannot write the components file" in caplog.text
