"""Processes for the real-IDE tests: code-server's isolated environment, the supervised stack,
and a `running()` that also reaps descendants which leave the process group.

- `ide_env(base, code_server)`: HOME and XDG folders under `base`, so code-server's state
  (settings, extensions, shell history) is fresh and the real home is not written; the test
  user settings of `workbench.py` are written there.
- `supervised_stack(base, code_server)`: `supervisor_main.py` in lightweight mode (the real
  code-server, the gateway with GATEWAY_TOKEN, the monitor) on free loopback ports.
- `running_tree(argv, env, ...)`: `tests.procs.running`, then SIGKILLs the process groups of
  descendants that outlived the stop and fails the test naming them. code-server's terminals
  run in sessions of their own, so its process group is not all of it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped]

from tests.browser.workbench import write_user_settings
from tests.procs import PYTHON, ROOT, free_port, running

TOKEN = "browser-test-token"
WORKSPACE_FILE = "hello.txt"
WORKSPACE_TEXT = "hello from the WAIIDE workspace\n"
IDE_PATH = "WAIIDE"  # gateway/mount.py IDE_NAME; spelled out: tests do not trust the code
STACK_READY_TIMEOUT_S = 90.0  # code-server ~5 s, gateway ~3 s here; generous for busy CI cores
STOP_TIMEOUT_S = 20.0  # the supervisor stops its children one by one with 5 s deadlines
_XDG_DIRS = {"XDG_DATA_HOME": "xdg-data", "XDG_CONFIG_HOME": "xdg-config",
             "XDG_CACHE_HOME": "xdg-cache"}


def ide_env(base: Path, code_server: Path, user_settings: bool = True) -> dict[str, str]:
    """HOME and XDG folders under `base`, with the test user settings written (`user_settings`).

    WAIIDE_HUB_HOME is set explicitly because the supervisor derives its default from HOME.
    code-server keeps its user data in `$XDG_DATA_HOME/code-server`.
    """
    env = {"HOME": str(base / "home"),
           # <hub home>/code-server/bin/code-server
           "WAIIDE_HUB_HOME": str(code_server.parent.parent.parent)}
    env.update({key: str(base / name) for key, name in _XDG_DIRS.items()})
    for key in ("HOME", *_XDG_DIRS):
        Path(env[key]).mkdir(parents=True, exist_ok=True)
    if user_settings:
        write_user_settings(Path(env["XDG_DATA_HOME"]))
    return env


def make_workspace(base: Path) -> Path:
    """`base/workspace` holding WORKSPACE_FILE."""
    workspace = base / "workspace"
    workspace.mkdir(parents=True, exist_ok=True)
    (workspace / WORKSPACE_FILE).write_text(WORKSPACE_TEXT)
    return workspace


def _descendants(pid: int) -> list[psutil.Process]:
    # The process may already be gone (it failed to start); then it has no descendants.
    with contextlib.suppress(psutil.Error):
        return list(psutil.Process(pid).children(recursive=True))
    return []


def _alive(proc: psutil.Process) -> bool:
    with contextlib.suppress(psutil.Error):  # gone between the listing and this check
        return bool(proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE)
    return False


def _describe(proc: psutil.Process) -> str:
    with contextlib.suppress(psutil.Error):  # gone: the pid is all there is
        return f"{proc.pid} {' '.join(proc.cmdline())[:160]}"
    return str(proc.pid)


def _reap(survivors: list[psutil.Process]) -> None:
    """SIGKILL the process group of each survivor, never our own group."""
    own_group = os.getpgid(0)
    for survivor in survivors:
        with contextlib.suppress(ProcessLookupError):  # it exited since; its group with it
            group = os.getpgid(survivor.pid)
            if group != own_group:
                os.killpg(group, signal.SIGKILL)


@contextlib.contextmanager
def running_tree(argv: Sequence[str], env: Mapping[str, str], **options: Any,
                 ) -> Iterator[subprocess.Popen[bytes]]:
    """`running(argv, env, **options)` that also leaves no descendant behind.

    The descendants are listed just before the group stop; those still alive after it are
    killed by their own process group and, unless the body already failed, reported.
    """
    listed: list[psutil.Process] = []
    body_ok = False
    with running(argv, env, **options) as proc:
        try:
            yield proc
            body_ok = True
        finally:
            listed = _descendants(proc.pid)
    survivors = [p for p in listed if _alive(p)]
    described = [_describe(p) for p in survivors]
    _reap(survivors)
    if described and body_ok:
        raise AssertionError(f"processes outlived the stop of {argv[0]}: {described}")


@dataclass(frozen=True)
class Stack:
    """The supervisor with the real code-server and the gateway (token auth) on loopback."""

    gateway_port: int  # API_SERVER_PORT: WAIIDE at the root
    port: int  # PORT: in lightweight mode the gateway serves WAIIDE at /WAIIDE/ here too
    token: str
    workspace: Path
    log: Path
    pid: int = 0  # the supervisor's
    env: Mapping[str, str] | None = None

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.gateway_port}"

    @property
    def token_url(self) -> str:
        """The banner's "WAIIDE via the gateway" URL: the gateway's root with `?token=`."""
        return f"{self.origin}/?token={self.token}"

    @property
    def port_token_url(self) -> str:
        """The banner's "WAIIDE via the gateway on PORT" URL: a sub-path, as under a hub."""
        return f"http://127.0.0.1:{self.port}/{IDE_PATH}/?token={self.token}"


@contextlib.contextmanager
def supervised_stack(base: Path, code_server: Path, *, full: bool = False,
                     token: str | None = TOKEN, user_settings: bool = True,
                     ports: tuple[int, int] | None = None,
                     log_name: str = "supervisor.log") -> Iterator[Stack]:
    """`supervisor_main.py`, as `make run` starts it, on free ports (or `ports`: gateway, PORT).

    The IDE is on its default private unix socket (no WAIIDE_PORT). Lightweight mode unless
    `full`; `token=None` lets the supervisor generate (and keep) the gateway's token, which is
    then read from the file it keeps under XDG_DATA_HOME; `user_settings=False` leaves the IDE
    with only the supervisor's managed machine settings.
    """
    workspace = make_workspace(base)
    gateway_port, port = ports or (free_port(), free_port())
    env = ide_env(base, code_server, user_settings)
    env.update({
        "USE_ALL_COMPONENTS": "true" if full else "false", "HOST": "127.0.0.1",
        "PORT": str(port), "API_SERVER_PORT": str(gateway_port),
        "WAIIDE_WORKSPACE": str(workspace), "GATEWAY_WORKERS": "2",
        "XDG_RUNTIME_DIR": str(base / "run"),
        "WAIIDE_HUB_STATUS_PATH": str(base / "status.json"), "PYTHONPATH": str(ROOT),
    })
    (base / "run").mkdir(mode=0o700, exist_ok=True)
    if token is not None:
        env["GATEWAY_TOKEN"] = token
    log = base / log_name
    with running_tree([PYTHON, str(ROOT / "supervisor_main.py")], env, cwd=ROOT, log_path=log,
                      ready_url=f"http://127.0.0.1:{gateway_port}/api/healthz",
                      ready_timeout_s=STACK_READY_TIMEOUT_S, stop_timeout_s=STOP_TIMEOUT_S) as proc:
        kept = Path(env["XDG_DATA_HOME"]) / "waiide-hub" / f"gateway-token-{gateway_port}"
        yield Stack(gateway_port, port, token or kept.read_text().strip(), workspace, log,
                    proc.pid, env)
