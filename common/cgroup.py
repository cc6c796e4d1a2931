"""What this process may use, from its CPU affinity and its cgroup: CPUs and memory.

A container sees the host's `os.cpu_count()` and the host's RAM; what it may use is in its
affinity mask and its cgroup (v2: `cpu.max`, `memory.max`; v1: `cpu.cfs_quota_us` /
`cpu.cfs_period_us`, `memory.limit_in_bytes`). The cgroup root is injectable so tests read a fake
tree. Reading is best-effort: a file that is missing or unreadable means "no limit there"; a
limit is never invented.

Where a process's cgroup is: `/proc/self/cgroup` gives, per hierarchy, the path relative to the
hierarchy's root. Inside a container with a cgroup namespace that path is `/` and the mount is
the container's own cgroup; without one (this machine's v1 mounts show `/process_api/...`) the
path names a sub-directory of the mount. Both are tried, the process's own directory first, and
v2 limits are read up the tree too (a parent's `memory.max` limits the child).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
PROC_SELF_CGROUP = Path("/proc/self/cgroup")
# cgroup v1 reports "no limit" as a huge page-aligned number (LONG_MAX rounded down).
_V1_UNLIMITED = 1 << 62


@dataclass(frozen=True, slots=True)
class CpuBudget:
    """The CPUs this process may use and where each bound comes from."""

    affinity: int
    quota: float | None  # CPUs' worth of time per period (cpu.max), None when unlimited

    @property
    def cpus(self) -> int:
        """Whole CPUs usable at once: the tighter of the two bounds, at least 1."""
        if self.quota is None:
            return max(1, self.affinity)
        return max(1, min(self.affinity, math.ceil(self.quota)))

    def describe(self) -> str:
        quota = "no cgroup CPU quota" if self.quota is None else f"cgroup quota {self.quota:g} CPU"
        return f"{self.affinity} CPU(s) in the affinity mask, {quota}"


def _own_paths(proc_cgroup: Path) -> dict[str, str]:
    """Controller name ('' for v2's unified hierarchy) -> this process's cgroup path."""
    paths: dict[str, str] = {}
    try:
        text = proc_cgroup.read_text(encoding="ascii", errors="replace")
    except OSError:
        return paths
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) == 3:
            for controller in parts[1].split(",") if parts[1] else [""]:
                paths[controller] = parts[2]
    return paths


def _candidates(base: Path, own: str | None) -> list[Path]:
    """Directories to read a limit from: own cgroup up to the mount root, then the root."""
    found: list[Path] = []
    if own:
        rel = Path(own.lstrip("/"))
        while rel.parts:
            found.append(base / rel)
            rel = rel.parent
    found.append(base)
    return found


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None


class Cgroup:
    """Reads this process's cgroup limits under `root` (default /sys/fs/cgroup)."""

    def __init__(self, root: Path = CGROUP_ROOT, proc_cgroup: Path = PROC_SELF_CGROUP) -> None:
        self.root = root
        self._own = _own_paths(proc_cgroup)

    def _dirs(self, controller: str) -> list[tuple[Path, int]]:
        """(directory, cgroup version): v2 first (its mount has cgroup.controllers), then v1."""
        dirs: list[tuple[Path, int]] = []
        if (self.root / "cgroup.controllers").exists():
            dirs.extend((d, 2) for d in _candidates(self.root, self._own.get("")))
        v1 = self.root / controller
        if v1.is_dir():
            dirs.extend((d, 1) for d in _candidates(v1, self._own.get(controller)))
        return dirs

    def cpu_quota(self) -> float | None:
        """The tightest CPU quota in CPUs (quota / period), None when there is none."""
        quotas = [_v2_cpu(d) if version == 2 else _v1_cpu(d) for d, version in self._dirs("cpu")]
        found = [quota for quota in quotas if quota is not None]
        return min(found) if found else None

    def memory_limit(self) -> int | None:
        """The tightest memory limit in bytes, None when there is none."""
        limits: list[int] = []
        for directory, version in self._dirs("memory"):
            name = "memory.max" if version == 2 else "memory.limit_in_bytes"
            value = _read(directory / name)
            if value is None or value == "max" or not value.isdigit():
                continue
            limit = int(value)
            if 0 < limit < _V1_UNLIMITED:
                limits.append(limit)
        return min(limits) if limits else None


def _v2_cpu(directory: Path) -> float | None:
    value = _read(directory / "cpu.max")
    if value is None:
        return None
    quota, _, period = value.partition(" ")
    if quota == "max" or not quota.isdigit() or not period.isdigit() or int(period) == 0:
        return None
    return int(quota) / int(period)


def _v1_cpu(directory: Path) -> float | None:
    quota, period = _read(directory / "cpu.cfs_quota_us"), _read(directory / "cpu.cfs_period_us")
    if quota is None or period is None or not quota.isdigit() or not period.isdigit():
        return None  # "-1" (no quota) is not all digits
    return int(quota) / int(period) if int(period) > 0 else None


def affinity_cpus() -> int:
    """CPUs in this process's affinity mask (os.cpu_count() where affinity is not supported)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def cpu_budget(cgroup: Cgroup | None = None) -> CpuBudget:
    """The affinity mask and the cgroup quota of this process."""
    return CpuBudget(affinity=affinity_cpus(), quota=(cgroup or Cgroup()).cpu_quota())


MAX_DEFAULT_WORKERS = 4  # a single user's proxy gains nothing from more (bench/README.md)


def default_workers(budget: CpuBudget) -> int:
    """GATEWAY_WORKERS' default: one per usable CPU, at most MAX_DEFAULT_WORKERS."""
    return min(MAX_DEFAULT_WORKERS, budget.cpus)
