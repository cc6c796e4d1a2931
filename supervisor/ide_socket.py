"""Where the IDE listens: a private unix socket by default, TCP only when asked for.

code-server runs with `--auth none`: whoever reaches it has the user's shell. On TCP (even
127.0.0.1) every process on the machine reaches it, another user's included under a
local-process spawner (code-server #1228; jupyter-vscode-proxy moved to a 0600 socket for this).
So by default it listens on a unix socket (`--socket`, `--socket-mode 600`) in a directory only
this user may enter:

    $XDG_RUNTIME_DIR/waiide-hub-<API_SERVER_PORT>/waiide.sock      when XDG_RUNTIME_DIR is set
    $TMPDIR (or /tmp)/waiide-hub-<uid>-<API_SERVER_PORT>/waiide.sock   otherwise

keyed by API_SERVER_PORT so that two servers of one user do not share it. The directory is made
0700 before the IDE starts; one that exists but is not a directory owned by this user (a planted
one in /tmp) stops the start.

TCP is used only when configured: WAIIDE_HOST or WAIIDE_PORT set, or a WAIIDE_COMMAND that does
not use `{socket}` (it listens where it says). WAIIDE_SOCKET names another socket path.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

from common.env import EnvReader

SOCKET_NAME = "waiide.sock"
TCP_NOTE = ("WAIIDE listens on TCP {where} without authentication: every process on this machine "
            "can reach it. Unset WAIIDE_HOST/WAIIDE_PORT (and use {{socket}} in WAIIDE_COMMAND) "
            "for the private unix socket.")


class SocketDirError(OSError):
    """The socket's directory exists but is not a private directory of this user."""


def wants_tcp(env: EnvReader) -> bool:
    """True when the configuration asks for TCP (see the module docstring)."""
    if env.is_set("WAIIDE_HOST") or env.is_set("WAIIDE_PORT"):
        return True
    command = env.raw("WAIIDE_COMMAND")
    return command is not None and "{socket}" not in command and not env.is_set("WAIIDE_SOCKET")


def default_socket_path(env: EnvReader, uid: int, api_port: int) -> str:
    """The private socket's path (see the module docstring)."""
    runtime = env.raw("XDG_RUNTIME_DIR")
    if runtime and os.path.isabs(runtime):
        return os.path.join(runtime, f"waiide-hub-{api_port}", SOCKET_NAME)
    base = env.raw("TMPDIR") or "/tmp"
    if not os.path.isabs(base):
        base = "/tmp"
    return os.path.join(base, f"waiide-hub-{uid}-{api_port}", SOCKET_NAME)


def prepare_socket_dir(socket_path: str, uid: int | None = None) -> Path:
    """Make the socket's directory 0700 and owned by `uid` (this user), or refuse; its path."""
    owner = os.getuid() if uid is None else uid
    directory = Path(socket_path).parent
    try:
        directory.mkdir(mode=0o700, parents=True)
    except FileExistsError:
        pass
    info = os.lstat(directory)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != owner:
        raise SocketDirError(f"{directory} exists but is not a directory owned by uid {owner}; "
                             f"remove it or set WAIIDE_SOCKET")
    if stat.S_IMODE(info.st_mode) != 0o700:
        os.chmod(directory, 0o700)
    return directory


def remove_socket_dir(socket_path: str) -> None:
    """Remove the socket and its directory at exit (the directory only if empty)."""
    path = Path(socket_path)
    with contextlib.suppress(FileNotFoundError):  # the IDE removed it, or never made it
        path.unlink()
    with contextlib.suppress(OSError):  # not empty or already gone: leave it
        path.parent.rmdir()
