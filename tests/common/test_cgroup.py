"""common.cgroup: CPU and memory limits read from a fake cgroup tree (v1 and v2), and the
gateway's default worker count from them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from common.cgroup import Cgroup, CpuBudget, default_workers
from gateway.config import GatewayConfig
from tests.procs import ROOT


def _tree(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def _proc(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "proc-self-cgroup"
    path.write_text(text)
    return path


def test_v2_quota_and_memory_in_own_cgroup_and_parent(tmp_path: Path) -> None:
    root = _tree(tmp_path / "cg", {
        "cgroup.controllers": "cpu memory\n",
        "cpu.max": "max 100000\n",
        "memory.max": "max\n",
        "kubepods/pod1/cpu.max": "150000 100000\n",  # 1.5 CPUs
        "kubepods/pod1/memory.max": "4294967296\n",
        "kubepods/memory.max": "8589934592\n",
    })
    cgroup = Cgroup(root, _proc(tmp_path, "0::/kubepods/pod1\n"))
    assert cgroup.cpu_quota() == 1.5
    assert cgroup.memory_limit() == 4 << 30  # the tightest of own and parents


def test_v2_namespaced_container_sees_its_cgroup_at_the_root(tmp_path: Path) -> None:
    root = _tree(tmp_path / "cg", {"cgroup.controllers": "cpu memory\n",
                                   "cpu.max": "200000 100000\n", "memory.max": "1073741824\n"})
    cgroup = Cgroup(root, _proc(tmp_path, "0::/\n"))
    assert (cgroup.cpu_quota(), cgroup.memory_limit()) == (2.0, 1 << 30)


def test_v1_quota_and_limit(tmp_path: Path) -> None:
    root = _tree(tmp_path / "cg", {
        "cpu/docker/abc/cpu.cfs_quota_us": "50000\n", "cpu/docker/abc/cpu.cfs_period_us": "100000\n",
        "cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n",
        "memory/docker/abc/memory.limit_in_bytes": "536870912\n",
        "memory/memory.limit_in_bytes": "9223372036854771712\n",  # v1's "unlimited"
    })
    cgroup = Cgroup(root, _proc(tmp_path, "4:memory:/docker/abc\n2:cpu,cpuacct:/docker/abc\n"))
    assert cgroup.cpu_quota() == 0.5
    assert cgroup.memory_limit() == 512 << 20


def test_no_limits_anywhere(tmp_path: Path) -> None:
    root = _tree(tmp_path / "cg", {"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n",
                                   "memory/memory.limit_in_bytes": "9223372036854771712\n"})
    cgroup = Cgroup(root, _proc(tmp_path, "4:memory:/\n2:cpu:/\n"))
    assert (cgroup.cpu_quota(), cgroup.memory_limit()) == (None, None)
    missing = Cgroup(tmp_path / "nothing", tmp_path / "no-proc-file")
    assert (missing.cpu_quota(), missing.memory_limit()) == (None, None)


@pytest.mark.parametrize(("affinity", "quota", "workers"), [
    (1, None, 1), (2, None, 2), (64, None, 4), (64, 1.5, 2), (64, 0.2, 1), (3, 8.0, 3)])
def test_default_workers(affinity: int, quota: float | None, workers: int) -> None:
    assert default_workers(CpuBudget(affinity, quota)) == workers


def test_gateway_workers_default_and_override() -> None:
    config = GatewayConfig.from_env({}, cpu=CpuBudget(64, 1.5))
    assert config.workers == 2
    assert "64 CPU(s) in the affinity mask, cgroup quota 1.5 CPU" in config.workers_reason
    explicit = GatewayConfig.from_env({"GATEWAY_WORKERS": "6"}, cpu=CpuBudget(1, None))
    assert (explicit.workers, explicit.workers_reason) == (6, "GATEWAY_WORKERS")


def test_under_taskset_one_cpu_the_default_is_one_worker() -> None:
    """The real affinity mask: `taskset -c 0` gives the gateway 1 worker, whatever the host has."""
    code = ("from gateway.config import GatewayConfig; c = GatewayConfig.from_env({}); "
            "print(c.workers, c.workers_reason, sep='|')")
    out = subprocess.run(["taskset", "-c", "0", sys.executable, "-c", code], cwd=ROOT,
                         env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True,
                         text=True, timeout=60, check=True).stdout.strip()
    workers, reason = out.split("|")
    assert workers == "1", out
    assert reason.startswith("default from 1 CPU(s) in the affinity mask"), out
