"""Where the benchmark's external programs are: nginx, wrk, Node, configurable-http-proxy, `ws`.

scripts/setup.sh (`make setup-test`) installs them: nginx and wrk from Debian, and the npm tools
under ${WAIIDE_HUB_HOME:-~/.cache/waiide-hub}/npm-tools. The locations are resolved once, from
the environment `run.py` passes in, and `missing()` names what is absent before anything starts.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
HUB_HOME_VAR = "WAIIDE_HUB_HOME"


@dataclass(frozen=True, slots=True)
class Tools:
    """Paths of the programs the benchmark runs."""

    environ: Mapping[str, str]
    python: str
    nginx: str
    wrk: str
    node: str
    npm_modules: Path

    def env(self, **extra: str) -> dict[str, str]:
        """A child's environment: the run's own, plus `extra`."""
        return {**self.environ, **extra}

    @property
    def chp(self) -> Path:
        return self.npm_modules / ".bin" / "configurable-http-proxy"

    @property
    def ws_module(self) -> Path:
        return self.npm_modules / "ws"

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Tools:
        hub_home = Path(environ.get(HUB_HOME_VAR) or Path.home() / ".cache" / "waiide-hub")
        venv_python = ROOT / ".venv" / "bin" / "python"
        return cls(
            environ=dict(environ),
            python=str(venv_python) if venv_python.exists() else sys.executable,
            nginx=shutil.which("nginx", path=environ.get("PATH", "") + ":/usr/sbin") or "nginx",
            wrk=shutil.which("wrk", path=environ.get("PATH")) or "wrk",
            node=shutil.which("node", path=environ.get("PATH")) or "node",
            npm_modules=hub_home / "npm-tools" / "node_modules",
        )

    def missing(self) -> list[str]:
        """What the upstream and the load generators need but cannot find (empty if nothing)."""
        absent = [name for name in (self.nginx, self.wrk, self.node) if shutil.which(name) is None]
        if not self.ws_module.is_dir():
            absent.append(f"npm ws ({self.ws_module})")
        return absent
