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

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from monitor.errors import ConfigError
from monitor.record import default_record_path

GATEWAY_HEALTH_PATH = "/api/healthz"
SINGLEUSER_HEALTH_SUFFIX = "api"
_WILDCARD_HOSTS = frozenset(("", "0.0.0.0", "::", "*", "[::]"))
_MAX_INTERVAL_S = 3600.0


def _get(environ: Mapping[str, str], key: str, default: str) -> str:
    return environ.get(key, default).strip()


def _bool(environ: Mapping[str, str], key: str, default: str) -> bool:
    value = _get(environ, key, default)
    lowered = value.lower()
    if lowered in ("true", "1"):
        return True
    if lowered in ("false", "0"):
        return False
    raise ConfigError(key, value, "Not a valid bool (use true/false/1/0).")


def _seconds(environ: Mapping[str, str], key: str, default: str) -> float:
    value = _get(environ, key, default)
    try:
        seconds = float(value)
    except ValueError:
        raise ConfigError(key, value, "Not a valid number of seconds.") from None
    if not math.isfinite(seconds) or not 0 < seconds <= _MAX_INTERVAL_S:
        raise ConfigError(key, value, f"Must be > 0 and <= {_MAX_INTERVAL_S:g} seconds.")
    return seconds


def _port(environ: Mapping[str, str], key: str, default: str) -> int:
    value = _get(environ, key, default)
    if not value.isdigit() or not 0 < int(value) < 65536:
        raise ConfigError(key, value, "Not a valid port (1-65535).")
    return int(value)


def _url_path(environ: Mapping[str, str], key: str, default: str) -> str:
    value = _get(environ, key, default)
    if not value.startswith("/") or any(c.isspace() for c in value):
        raise ConfigError(key, value, "Must be a URL path starting with '/'.")
    return value


def _prefix(environ: Mapping[str, str]) -> str:
    prefix = _url_path(environ, "JUPYTERHUB_SERVICE_PREFIX", "/")
    return prefix if prefix.endswith("/") else prefix + "/"


def _probe_host(environ: Mapping[str, str]) -> str:
    # The external ports listen on HOST; a wildcard listener is reached on loopback.
    host = _get(environ, "HOST", "0.0.0.0")
    if host in _WILDCARD_HOSTS:
        return "127.0.0.1"
    return host[1:-1] if host.startswith("[") and host.endswith("]") else host


def _optional_path(environ: Mapping[str, str], key: str) -> Path | None:
    value = _get(environ, key, "")
    return Path(value) if value else None


@dataclass(frozen=True, slots=True)
class MonitorConfig:
    """Everything `python -m monitor` needs; cheap and picklable (no sockets, no mmaps)."""

    interval_s: float = 5.0
    probe_timeout_s: float = 2.0
    waiide_host: str = "127.0.0.1"
    waiide_port: int = 8080
    waiide_socket: Path | None = None
    waiide_health_path: str = "/healthz"
    use_all_components: bool = True
    probe_host: str = "127.0.0.1"
    port: int = 8090
    api_server_port: int = 8091
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
        interval_s = _seconds(environ, "MONITOR_INTERVAL", "5")
        # The default deadline shrinks with a short interval; only an explicit one can be wrong.
        default_timeout = f"{min(2.0, interval_s * 0.8):g}"
        probe_timeout_s = _seconds(environ, "MONITOR_PROBE_TIMEOUT", default_timeout)
        if probe_timeout_s > interval_s:
            raise ConfigError("MONITOR_PROBE_TIMEOUT", _get(environ, "MONITOR_PROBE_TIMEOUT", ""),
                              f"Must not exceed MONITOR_INTERVAL ({interval_s:g}).")
        multiproc_dir = _optional_path(environ, "PROMETHEUS_MULTIPROC_DIR")
        if multiproc_dir is not None and not multiproc_dir.is_dir():
            raise ConfigError("PROMETHEUS_MULTIPROC_DIR", str(multiproc_dir),
                              "Not an existing directory.")
        api_server_port = _port(environ, "API_SERVER_PORT", "8091")
        record_path = default_record_path(environ)  # after the port check, so it cannot fail
        return cls(
            interval_s=interval_s,
            probe_timeout_s=probe_timeout_s,
            waiide_host=_get(environ, "WAIIDE_HOST", "127.0.0.1") or "127.0.0.1",
            waiide_port=_port(environ, "WAIIDE_PORT", "8080"),
            waiide_socket=_optional_path(environ, "WAIIDE_SOCKET"),
            waiide_health_path=_url_path(environ, "MONITOR_WAIIDE_HEALTH_PATH", "/healthz"),
            use_all_components=_bool(environ, "USE_ALL_COMPONENTS", "true"),
            probe_host=_probe_host(environ),
            port=_port(environ, "PORT", "8090"),
            api_server_port=api_server_port,
            service_prefix=_prefix(environ),
            components_file=_optional_path(environ, "MONITOR_COMPONENTS_FILE"),
            multiproc_dir=multiproc_dir,
            record_path=record_path,
            debug=_bool(environ, "DEBUG", "false"),
        )

    @property
    def waiide_url(self) -> str:
        """The IDE health URL as shown in the record (unix sockets as ``unix:<path>:<route>``)."""
        if self.waiide_socket is not None:
            return f"unix:{self.waiide_socket}:{self.waiide_health_path}"
        return f"http://{_host_in_url(self.waiide_host)}:{self.waiide_port}{self.waiide_health_path}"

    @property
    def singleuser_url(self) -> str:
        """The single-user server's unauthenticated version route, as the hub polls it."""
        return (f"http://{_host_in_url(self.probe_host)}:{self.port}"
                f"{self.service_prefix}{SINGLEUSER_HEALTH_SUFFIX}")

    @property
    def gateway_url(self) -> str:
        """The gateway's own cheap liveness route."""
        return f"http://{_host_in_url(self.probe_host)}:{self.api_server_port}{GATEWAY_HEALTH_PATH}"


def _host_in_url(host: str) -> str:
    return f"[{host}]" if ":" in host else host
