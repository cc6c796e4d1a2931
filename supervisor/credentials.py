"""Credentials that survive a restart: the generated gateway token and, standalone, Jupyter's.

A token generated at every start breaks every open tab at the next restart (the gateway's
cookie is an HMAC of its token, `gateway/access/token.py`) and sends the user back to the log for
a new URL. So a token the supervisor generates is kept for this user, one file per token and
API_SERVER_PORT (two servers on one machine keep their own), and reused:

    $XDG_DATA_HOME/waiide-hub/            (~/.local/share/waiide-hub/ by default), mode 0700
        gateway-token-<API_SERVER_PORT>   mode 0600, the token and a newline
        jupyter-token-<API_SERVER_PORT>   standalone full mode only

To rotate, delete the file (or the directory) and restart. A token given in GATEWAY_TOKEN or
JUPYTER_TOKEN is used as given and never written. Under a hub nothing is stored: the hub's
credentials apply.

A file that is not a regular file owned by this user is refused (a token another user planted
would let them in); one readable by others is made 0600 again with a warning. When the directory
cannot be written the run goes on with a per-run token and says so: the user loses only the
restart convenience, never access.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import stat
from pathlib import Path

from supervisor.config import SupervisorConfig

logger = logging.getLogger(__name__)

GATEWAY_TOKEN_FILE = "gateway-token-{port}"
JUPYTER_TOKEN_FILE = "jupyter-token-{port}"


class CredentialError(OSError):
    """A stored credential cannot be used safely (wrong owner, not a regular file)."""


class CredentialStore:
    """Token files in one private directory (see the module docstring)."""

    def __init__(self, directory: Path, uid: int | None = None) -> None:
        self.directory = directory
        self._uid = os.getuid() if uid is None else uid

    def path(self, name: str) -> Path:
        return self.directory / name

    def keep(self, name: str, generated: str) -> tuple[str, bool]:
        """The stored value of `name`, or `generated` once stored; (value, reused)."""
        stored = self._load(self.path(name))
        if stored is not None:
            return stored, True
        self._save(self.path(name), generated)
        return generated, False

    def _load(self, path: Path) -> str | None:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise CredentialError(f"cannot open {path} safely: {exc}") from exc
        with os.fdopen(fd, encoding="utf-8") as handle:
            info = os.fstat(handle.fileno())
            if not stat.S_ISREG(info.st_mode) or info.st_uid != self._uid:
                raise CredentialError(f"{path} is not a regular file owned by uid {self._uid}")
            if info.st_mode & 0o077:
                logger.warning("%s was readable by others (mode %o); made it 0600",
                               path, stat.S_IMODE(info.st_mode))
                os.fchmod(handle.fileno(), 0o600)
            value = handle.read().strip()
        return value or None  # an emptied file counts as deleted: a new token is made

    def _save(self, path: Path, value: str) -> None:
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = os.lstat(self.directory)
        if not stat.S_ISDIR(info.st_mode) or info.st_uid != self._uid:
            raise CredentialError(f"{self.directory} is not a directory owned by uid {self._uid}")
        os.chmod(self.directory, 0o700)
        temp = path.with_name(f".{path.name}.{os.getpid()}")
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                     0o600)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(value + "\n")
            os.replace(temp, path)  # atomic: a crash leaves the old file or the new one
        except BaseException:
            temp.unlink(missing_ok=True)
            raise


def keep_generated_tokens(config: SupervisorConfig) -> SupervisorConfig:
    """`config` with its generated tokens replaced by the stored ones (stored if new).

    Tokens given in the environment, and everything under a hub, are left as they are.
    """
    if config.under_hub or config.credentials_dir is None:
        return config
    store = CredentialStore(Path(config.credentials_dir))
    port = config.api_port
    gateway, reused, jupyter = config.gateway_token, False, config.jupyter_token
    try:
        if config.gateway_token_generated and gateway:
            gateway, reused = store.keep(GATEWAY_TOKEN_FILE.format(port=port), gateway)
        if config.jupyter_token_generated and jupyter:
            jupyter, _ = store.keep(JUPYTER_TOKEN_FILE.format(port=port), jupyter)
    except OSError as exc:
        logger.warning("cannot keep the generated tokens in %s (%s): they last for this run only",
                       store.directory, exc)
        return config
    if config.gateway_token_generated or config.jupyter_token_generated:
        logger.info("tokens kept in %s (delete the files there to rotate them)", store.directory)
    return dataclasses.replace(config, gateway_token=gateway, gateway_token_reused=reused,
                               jupyter_token=jupyter)
