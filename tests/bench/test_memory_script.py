"""bench/memory.py runs end to end and reports every process (the figure is recorded, not asserted:
speed and size are measured by benchmarks, never by assertions in tests)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.procs import PYTHON, ROOT

pytestmark = pytest.mark.slow


@pytest.mark.timeout(240)
def test_memory_script_reports_the_stack_and_jupyter(tmp_path: Path) -> None:
    out = tmp_path / "memory.json"
    run = subprocess.run([PYTHON, str(ROOT / "bench" / "memory.py"), "--settle-s", "1",
                          "--json", str(out)], cwd=ROOT, capture_output=True, text=True,
                         timeout=200, check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "budget:" in run.stdout and "MiB PSS without the IDE" in run.stdout
    report = json.loads(out.read_text())
    roles = [p["role"] for p in report["stack"]]
    assert roles.count("gateway worker") == report["workers"], roles
    for role in ("supervisor", "gateway main", "Sanic sync manager", "monitor"):
        assert role in roles, roles
    assert any(not p["in_budget"] for p in report["stack"]), "the IDE is shown apart"
    assert all(p["pss"] > 0 and p["rss"] >= p["pss"] for p in report["stack"] + report["jupyter"])
    assert report["jupyter"][0]["role"] == "jupyter server"
    assert report["total_pss_mib"] > 0
