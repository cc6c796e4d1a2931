"""The monitor's configuration: one frozen dataclass, read once from the environment in `main()`.

| variable | default | meaning |
|---|---|---|
| MONITOR_INTERVAL | 5 | seconds between probe rounds (also written into the record; the record is stale after 3) |
| MONITOR_PROBE_TIMEOUT | 2 | deadline in seconds of each probe, connect to last body byte; at most MONITOR_INTERVAL |
| MONITOR_WAIIDE_HEALTH_PATH | /healthz | path probed on the IDE (code-server's JSON health route) |
| MONITOR_COMPONENTS_FILE | (unset) | JSON file the supervisor rewrites with pids, start times, restarts |
| WAIIDE_HOST / WAIIDE_PORT | 127.0.0.1 / 8080 | the IDE's address |
| WAIIDE_SOCKET | (unset) | the IDE's unix socket; when set it replaces host and port |
| USE_ALL_COMPONENTS | true | probe the single-user server too (full mode) |
| HOST | 0.0.0.0 | listen address of PORT and API_SERVER_PORT; a wildcard is probed on 127.0.0.1 |
| PORT | 8090 | the single-user server's port |
| API_SERVER_PORT | 8091 | the gateway's port (probed at /api/healthz) |
| JUPYTERHUB_SERVICE_PREFIX | / | the single-user server's prefix (probed at {prefix}api) |
| PROMETHEUS_MULTIPROC_DIR | (unset) | prometheus-client multiprocess directory; unset: no metrics exported |
| WAIIDE_HUB_STATUS_PATH | /dev/shm/waiide-hub-{uid}-{API_SERVER_PORT}.status | the status record |
| DEBUG | false | debug logging |
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from common.components_file import ENV_VAR as COMPONENTS_FILE_ENV
from common.defaults import (
    DEFAULT_API_PORT,
    DEFAULT_HOST,
    DEFAULT_PORT,
    DEFAULT_WAIIDE_HOST,
    DEFAULT_WAIIDE_PORT,
    GATEWAY_HEALTH_PATH,
    SINGLEUSER_HEALTH_SUFFIX,
    local_host,
    url_host,
)
from common.env import EnvReader
from common.errors import ConfigError
from monitor.record import default_record_path

_MAX_INTERVAL_S = 3600.0


def _optional_path(env: EnvReader, key: str) -> Path | None:
    value = env.raw(key)
    return Path(value) if value else None


@dataclass(frozen=True, slots=True)
class MonitorConfig:
    """Everything `python -m monitor` needs; cheap and picklable (no sockets, no mmaps)."""

    interval_s: float = 5.0
    probe_timeout_s: float = 2.0
    waiide_host: str = "127.0.0.1"
    waiide_port: int = DEFAULT_WAIIDE_PORT
    waiide_socket: Path | None = None
    waiide_health_path: str = "/healthz"
    use_all_components: bool = True
    probe_host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    api_server_port: int = DEFAULT_API_PORT
    service_prefix: str = "/"
    components_file: Path | None = None
    multiproc_dir: Path | None = None
    record_path: Path = Path("/dev/shm/waiide-hub.status")
    debug: bool = False

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> MonitorConfig:
        """Read and validate every setting.

        Raises:
            ConfigError: naming the first bad variable and its value.
        """
        env = EnvReader(environ)
        interval_s = env.seconds("MONITOR_INTERVAL", 5.0, maximum=_MAX_INTERVAL_S)
        # The default deadline shrinks with a short interval; only an explicit one can be wrong.
        probe_timeout_s = env.seconds("MONITOR_PROBE_TIMEOUT", min(2.0, interval_s * 0.8),
                                      maximum=_MAX_INTERVAL_S)
        if probe_timeout_s > interval_s:
            raise ConfigError("MONITOR_PROBE_TIMEOUT", env.text("MONITOR_PROBE_TIMEOUT", ""),
                              f"Must not exceed MONITOR_INTERVAL ({interval_s:g}).")
        multiproc_dir = _optional_path(env, "PROMETHEUS_MULTIPROC_DIR")
        if multiproc_dir is not None and not multiproc_dir.is_dir():
            raise ConfigError("PROMETHEUS_MULTIPROC_DIR", str(multiproc_dir),
                              "Not an existing directory.")
        if multiproc_dir is None and "PROMETHEUS_MULTIPROC_DIR" in environ:
            # prometheus_client switches on the variable's presence, not its value: set but
            # empty, it would scatter counter_<pid>.db files into the working directory.
            raise ConfigError("PROMETHEUS_MULTIPROC_DIR", "",
                              "Set but empty; unset it or name a directory.")
        api_server_port = env.port("API_SERVER_PORT", DEFAULT_API_PORT)
        record_path = default_record_path(environ)  # after the port check, so it cannot fail
        return cls(
            interval_s=interval_s,
            probe_timeout_s=probe_timeout_s,
            waiide_host=env.text("WAIIDE_HOST", DEFAULT_WAIIDE_HOST),
            waiide_port=env.port("WAIIDE_PORT", DEFAULT_WAIIDE_PORT),
            waiide_socket=_optional_path(env, "WAIIDE_SOCKET"),
            waiide_health_path=env.url_path("MONITOR_WAIIDE_HEALTH_PATH", "/healthz"),
            use_all_components=env.flag("USE_ALL_COMPONENTS", True),
            probe_host=local_host(env.text("HOST", DEFAULT_HOST)),
            port=env.port("PORT", DEFAULT_PORT),
            api_server_port=api_server_port,
            service_prefix=env.prefix(),
            components_file=_optional_path(env, COMPONENTS_FILE_ENV),
            multiproc_dir=multiproc_dir,
            record_path=record_path,
            debug=env.flag("DEBUG", False),
        )

    @property
    def waiide_url(self) -> str:
        """The IDE health URL as shown in the record (unix sockets as ``unix:<path>:<route>``)."""
        if self.waiide_socket is not None:
            return f"unix:{self.waiide_socket}:{self.waiide_health_path}"
        return f"http://{url_host(self.waiide_host)}:{self.waiide_port}{self.waiide_health_path}"

    @property
    def singleuser_url(self) -> str:
        """The single-user server's unauthenticated version route, as the hub polls it."""
        return (f"http://{url_host(self.probe_host)}:{self.port}"
                f"{self.service_prefix}{SINGLEUSER_HEALTH_SUFFIX}")

    @property
    def gateway_url(self) -> str:
        """The gateway's own cheap liveness route."""
        return f"http://{url_host(self.probe_host)}:{self.api_server_port}{GATEWAY_HEALTH_PATH}"


def export_multiproc_dir(path: Path) -> None:
    """Put PROMETHEUS_MULTIPROC_DIR into this process's environment before prometheus_client's
    first import, which reads it (a directory adopted from the gateway, see monitor.__main__)."""
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(path)
