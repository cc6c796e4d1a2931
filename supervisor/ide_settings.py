"""The IDE's managed defaults: machine settings, its data directory, Node's heap, the public path.

A laptop's defaults do not suit a managed deployment: telemetry and update checks time out
offline, the Welcome page advertises Coder, the chat panel opens (and starts a runtime) for every
user. The supervisor therefore gives code-server (the default WAIIDE_COMMAND only):

- **machine settings**: code-server reads `<user-data-dir>/Machine/settings.json` as the
  "Remote" scope, which takes precedence over the browser's User settings. The defaults are
  `supervisor/machine_settings.json`; WAIIDE_MACHINE_SETTINGS names a JSON file that replaces
  them (the image or the deployment's own policy), or `none` to write nothing. At each start
  every key of those defaults that the file does not already have is added; keys already there
  stay as they are, because a user's own "Remote" settings are saved in that same file. A file
  that is not plain JSON (VS Code allows comments) is left untouched, with a warning.
- **`--user-data-dir`**: code-server's own default ($XDG_DATA_HOME/code-server, else
  ~/.local/share/code-server, its `util.ts: getEnvPaths`), named explicitly so the supervisor
  knows where the machine settings go; WAIIDE_USER_DATA_DIR chooses another one.
- **`--abs-proxy-base-path`**: the public prefix (`{JUPYTERHUB_SERVICE_PREFIX}WAIIDE`), so a dev
  server behind `/absproxy/<port>/` sees the path the browser uses. The gateway serves that
  prefix on API_SERVER_PORT too (`gateway.http.target.strip_ide_prefix`), so one path works
  through Jupyter, the hub and :8091.
- **`--disable-getting-started-override`**: no Coder advert on Help: Getting Started.
- **NODE_OPTIONS=--max-old-space-size**: half the memory the IDE may use (WAIIDE_MEMORY_LIMIT,
  else the cgroup limit), per Node process: the IDE's server, each extension host and the pty
  host are separate Node processes that inherit it, so a single runaway one is stopped by V8
  (it fails its allocation) before the kernel's OOM killer takes the whole container. A
  NODE_OPTIONS that already says --max-old-space-size is kept as it is.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

DEFAULT_MACHINE_SETTINGS = Path(__file__).with_name("machine_settings.json")
MACHINE_SETTINGS_OFF = "none"
HEAP_FLAG = "--max-old-space-size"
MIN_HEAP_MIB = 128
MIB = 1024 * 1024


def code_server_data_dir(environ: Mapping[str, str], home: str) -> str:
    """code-server's default user data directory for this environment (see module docstring)."""
    data_home = (environ.get("XDG_DATA_HOME") or "").strip()
    if not data_home or not os.path.isabs(data_home):
        data_home = os.path.join(home, ".local", "share")
    return os.path.join(data_home, "code-server")


def public_ide_prefix(service_prefix: str) -> str:
    """The path under which the browser sees WAIIDE through Jupyter or the hub, no trailing /."""
    return f"{service_prefix}WAIIDE"


def heap_mib(memory_limit: int) -> int:
    """The V8 old-space cap for a memory limit in bytes: half of it, at least MIN_HEAP_MIB."""
    return max(MIN_HEAP_MIB, memory_limit // 2 // MIB)


def node_options(current: str | None, memory_limit: int | None) -> str | None:
    """NODE_OPTIONS for the IDE: `current` plus a heap cap when there is a limit and no cap."""
    if memory_limit is None or (current and HEAP_FLAG in current):
        return current
    flag = f"{HEAP_FLAG}={heap_mib(memory_limit)}"
    return f"{current} {flag}" if current else flag


def load_managed_settings(source: str | None) -> dict[str, Any] | None:
    """The defaults to apply: `source` (a JSON object file), the built-in ones, or None (off).

    Raises:
        ValueError: the file is not a JSON object.
        OSError: the file cannot be read.
    """
    if source == MACHINE_SETTINGS_OFF:
        return None
    path = Path(source) if source else DEFAULT_MACHINE_SETTINGS
    settings = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(settings, dict):
        raise ValueError(f"{path} is not a JSON object")  # noqa: TRY004 - bad content, not a bad argument
    return settings


def apply_machine_settings(user_data_dir: Path, managed: Mapping[str, Any]) -> list[str]:
    """Add the `managed` keys missing from `<user_data_dir>/Machine/settings.json`; the added ones.

    A file that is not a JSON object is left as it is (a warning says so) and nothing is added.
    """
    path = user_data_dir / "Machine" / "settings.json"
    current: dict[str, Any] = {}
    if path.exists():
        try:
            loaded = json.loads(path.read_text(encoding="utf-8") or "{}")
        except ValueError as exc:
            logger.warning("left %s as it is: not plain JSON (%s)", path, exc)
            return []
        if not isinstance(loaded, dict):
            logger.warning("left %s as it is: not a JSON object", path)
            return []
        current = loaded
    added = [key for key in managed if key not in current]
    if not added:
        return []
    current.update({key: managed[key] for key in added})
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".settings.json.{os.getpid()}")
    temp.write_text(json.dumps(current, indent=2) + "\n", encoding="utf-8")
    os.replace(temp, path)
    return added
