"""The stack's runtime file: where this run answers and with which credentials, for its user only.

`python3 scripts/test_api.py` with no arguments finds it (by API_SERVER_PORT, default 8091), the
way Jupyter's own `jpserver-<pid>.json` files let tools find a running server. Written when the
stack is ready, mode 0600 in a 0700 directory, replaced atomically, removed at exit:

    $WAIIDE_HUB_RUNTIME_DIR/stack-<API_SERVER_PORT>.json
    (default ~/.local/share/waiide-hub/runtime/)

    {"pid": 1234, "mode": "full", "under_hub": false, "user": "jovyan",
     "gateway_url": "http://127.0.0.1:8091", "main_url": "http://127.0.0.1:8090",
     "prefix": "/", "gateway_token": "...", "main_token": "...", "written_at": 1733380000.0}

Tokens: standalone, the gateway's token and (full mode) Jupyter's; under a hub, the server's
`JUPYTERHUB_API_TOKEN` for both (it carries the server's access scope, which the gateway and
jupyterhub-singleuser accept). `null` where no credential is needed (`GATEWAY_AUTH=none`).
scripts/test_api.py reads the same layout without importing this package; keep them in step.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from collections.abc import Mapping
from pathlib import Path

from supervisor.config import Mode, SupervisorConfig

logger = logging.getLogger(__name__)

RUNTIME_DIR_VAR = "WAIIDE_HUB_RUNTIME_DIR"
DEFAULT_RUNTIME_DIR = Path(".local") / "share" / "waiide-hub" / "runtime"


def runtime_dir(environ: Mapping[str, str]) -> Path:
    """`WAIIDE_HUB_RUNTIME_DIR`, else ~/.local/share/waiide-hub/runtime (HOME from `environ`)."""
    named = environ.get(RUNTIME_DIR_VAR, "").strip()
    if named:
        return Path(named)
    home = environ.get("HOME", "").strip()
    return (Path(home) if home else Path.home()) / DEFAULT_RUNTIME_DIR


def stack_file(environ: Mapping[str, str], api_port: int) -> Path:
    return runtime_dir(environ) / f"stack-{api_port}.json"


def stack_info(config: SupervisorConfig, pid: int) -> dict[str, object]:
    """What the file holds for this run (see the module docstring)."""
    if config.under_hub:
        hub_token = config.environ.get("JUPYTERHUB_API_TOKEN") or None
        gateway_token, main_token = hub_token, hub_token
    else:
        gateway_token = config.gateway_token
        main_token = config.jupyter_token if config.mode is Mode.FULL else config.gateway_token
    return {
        "pid": pid,
        "mode": "full" if config.mode is Mode.FULL else "lightweight",
        "under_hub": config.under_hub,
        "user": config.environ.get("JUPYTERHUB_USER") or config.environ.get("USER"),
        "gateway_url": config.local_url(config.api_port, ""),
        "main_url": config.local_url(config.port, ""),
        "prefix": config.service_prefix,
        "gateway_token": gateway_token,
        "main_token": main_token,
        "written_at": time.time(),
    }


class RuntimeFile:
    """Publishes `stack_info` for this run and removes it again."""

    def __init__(self, config: SupervisorConfig) -> None:
        self._config = config
        self.path = stack_file(config.environ, config.api_port)

    def publish(self) -> None:
        """Write the file (0600, atomically). A failure is logged, not fatal: the stack serves
        its users either way; only the no-argument quick test needs the file."""
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump(stack_info(self._config, os.getpid()), out, indent=2)
                out.write("\n")
            os.replace(tmp, self.path)
        except OSError as exc:
            logger.warning("cannot write the runtime file %s (scripts/test_api.py will need "
                           "--token): %s", self.path, exc)
            return
        logger.info("URLs and tokens for this user: %s", self.path)

    def remove(self) -> None:
        """Remove the file if it is still this run's."""
        with contextlib.suppress(OSError, ValueError):
            if json.loads(self.path.read_text(encoding="utf-8")).get("pid") == os.getpid():
                self.path.unlink()
