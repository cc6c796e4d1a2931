"""What the supervisor prepares for the IDE before starting it, from the config.

- the private socket's directory (supervisor.ide_socket), when the socket is the default one;
- the managed machine settings (supervisor.ide_settings), for the default code-server;
- the IDE's environment additions: NODE_OPTIONS' heap cap from the memory limit.
"""

from __future__ import annotations

import logging
from pathlib import Path

from common.errors import ConfigError
from supervisor.config import SupervisorConfig
from supervisor.ide_settings import (
    apply_machine_settings,
    heap_mib,
    load_managed_settings,
    node_options,
)
from supervisor.ide_socket import prepare_socket_dir, remove_socket_dir

logger = logging.getLogger(__name__)


def prepare_ide(config: SupervisorConfig) -> None:
    """Make the socket directory and write the machine settings.

    Raises:
        ConfigError: WAIIDE_MACHINE_SETTINGS names a file that is not a JSON object.
        OSError: the socket directory cannot be made private (ide_socket.SocketDirError).
    """
    if config.waiide_socket and config.waiide_socket_default:
        directory = prepare_socket_dir(config.waiide_socket)
        logger.info("WAIIDE listens on the unix socket %s (directory %s, mode 0700)",
                    config.waiide_socket, directory)
    if config.waiide_user_data_dir is not None:
        _machine_settings(config, Path(config.waiide_user_data_dir))
    if config.waiide_memory_limit is not None:
        logger.info("WAIIDE memory limit %d MiB: Node heap capped at %d MiB per process",
                    config.waiide_memory_limit >> 20, heap_mib(config.waiide_memory_limit))


def cleanup_ide(config: SupervisorConfig) -> None:
    """After every child stopped: remove the private socket's directory."""
    if config.waiide_socket and config.waiide_socket_default:
        remove_socket_dir(config.waiide_socket)


def _machine_settings(config: SupervisorConfig, user_data_dir: Path) -> None:
    try:
        managed = load_managed_settings(config.machine_settings)
    except (OSError, ValueError) as exc:
        raise ConfigError("WAIIDE_MACHINE_SETTINGS", config.machine_settings or "",
                          f"Not a readable JSON object file ({exc}).") from None
    if managed is None:
        return
    try:
        added = apply_machine_settings(user_data_dir, managed)
    except OSError as exc:  # the IDE still works, with its own defaults: say so, go on
        logger.warning("cannot write the IDE's machine settings under %s: %s", user_data_dir, exc)
        return
    if added:
        logger.info("IDE machine settings: added %s", ", ".join(added))


def ide_env(config: SupervisorConfig, base: dict[str, str]) -> dict[str, str]:
    """`base` with NODE_OPTIONS capping Node's heap from the memory limit."""
    env = dict(base)
    options = node_options(env.get("NODE_OPTIONS"), config.waiide_memory_limit)
    if options:
        env["NODE_OPTIONS"] = options
    return env
