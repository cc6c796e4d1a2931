"""Gateway configuration: every environment variable the gateway reads, validated once in main().

Nothing else in `gateway/` reads the environment. A bad value stops the start with a message that
names the variable and the value (see `ConfigError`).
"""

from __future__ import annotations

import enum
import ipaddress
import json
import os
import pwd
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

from gateway.errors import ConfigError
from monitor.record import default_record_path

T = TypeVar("T")

MIB = 1024 * 1024
LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


class AuthMode(enum.Enum):
    """Who may use what the gateway proxies."""

    TOKEN = "token"  # standalone: a shared secret, generated and printed when not given
    HUB = "hub"  # under JupyterHub: hub tokens with access to this server (gateway.hubauth)
    NONE = "none"  # explicitly open (behind another authenticating proxy, or benchmarks)


@dataclass(frozen=True, slots=True)
class HubSettings:
    """What JupyterHub told this server about itself (Spawner.get_env)."""

    api_url: str
    api_token: str = field(repr=False)
    client_id: str = ""
    oauth_callback_url: str = ""
    access_scopes: tuple[str, ...] = ()
    prefix: str = "/"
    server_name: str = ""
    activity_url: str | None = None
    activity_interval_s: float = 300.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str], prefix: str, user: str) -> HubSettings | None:
        token = _text(environ, "JUPYTERHUB_API_TOKEN", "")
        if not token:
            return None
        api_url = _text(environ, "JUPYTERHUB_API_URL", "")
        if not api_url:
            raise ConfigError("JUPYTERHUB_API_URL", api_url,
                              "Required when JUPYTERHUB_API_TOKEN is set.")
        raw_scopes = (environ.get("JUPYTERHUB_OAUTH_ACCESS_SCOPES")
                      or environ.get("JUPYTERHUB_OAUTH_SCOPES") or "")
        server = _text(environ, "JUPYTERHUB_SERVER_NAME", "")
        if raw_scopes.strip():
            try:
                scopes = json.loads(raw_scopes)
            except ValueError:
                raise ConfigError("JUPYTERHUB_OAUTH_ACCESS_SCOPES", raw_scopes,
                                  "Not a JSON list of scopes.") from None
            if not isinstance(scopes, list) or not all(isinstance(x, str) for x in scopes):
                raise ConfigError("JUPYTERHUB_OAUTH_ACCESS_SCOPES", raw_scopes,
                                  "Not a JSON list of scopes.")
        else:  # what the hub grants a server's own users (jupyterhub roles.py)
            scopes = [f"access:servers!server={user}/{server}", f"access:servers!user={user}"]
        client_default = f"jupyterhub-user-{user}" + (f"-{server}" if server else "")
        return cls(
            api_url=api_url.rstrip("/"),
            api_token=token,
            client_id=_text(environ, "JUPYTERHUB_CLIENT_ID", client_default),
            oauth_callback_url=_text(environ, "JUPYTERHUB_OAUTH_CALLBACK_URL",
                                     f"{prefix}oauth_callback"),
            access_scopes=tuple(scopes),
            prefix=prefix,
            server_name=server,
            activity_url=_text(environ, "JUPYTERHUB_ACTIVITY_URL", "") or None,
            activity_interval_s=_positive_float(environ, "JUPYTERHUB_ACTIVITY_INTERVAL", 300.0),
        )


def _text(environ: Mapping[str, str], key: str, default: str) -> str:
    return environ.get(key, default).strip()


def _cast(environ: Mapping[str, str], key: str, default: T, cast: Callable[[str], T],
          what: str, check: Callable[[T], bool] = lambda _v: True) -> T:
    raw = environ.get(key)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = cast(raw.strip())
    except ValueError:
        raise ConfigError(key, raw, f"Not a valid {what}.") from None
    if not check(value):
        raise ConfigError(key, raw, f"Not a valid {what}.")
    return value


def _bool(environ: Mapping[str, str], key: str, default: bool) -> bool:
    raw = environ.get(key)
    if raw is None or raw.strip() == "":
        return default
    lowered = raw.strip().lower()
    if lowered in ("true", "1"):
        return True
    if lowered in ("false", "0"):
        return False
    raise ConfigError(key, raw, "Use true, false, 1 or 0.")


def _choice(environ: Mapping[str, str], key: str, default: str, allowed: tuple[str, ...]) -> str:
    value = _text(environ, key, default).lower()
    if value not in allowed:
        raise ConfigError(key, value, f"Use one of: {', '.join(allowed)}.")
    return value


def _multiproc_dir(environ: Mapping[str, str]) -> str | None:
    # prometheus_client switches on the variable's presence: set but empty would write metric
    # files into the working directory, so an empty value is an error, not "off".
    if "PROMETHEUS_MULTIPROC_DIR" not in environ:
        return None
    value = environ["PROMETHEUS_MULTIPROC_DIR"].strip()
    if not value or not os.path.isdir(value):
        raise ConfigError("PROMETHEUS_MULTIPROC_DIR", value,
                          "Must be an existing directory (or leave it unset).")
    return value


def _port(environ: Mapping[str, str], key: str, default: int) -> int:
    return _cast(environ, key, default, int, "TCP port (1-65535)", lambda p: 0 < p < 65536)


def _positive_float(environ: Mapping[str, str], key: str, default: float) -> float:
    return _cast(environ, key, default, float, "number of seconds > 0", lambda v: v > 0)


def _non_negative_float(environ: Mapping[str, str], key: str, default: float) -> float:
    return _cast(environ, key, default, float, "number of seconds >= 0", lambda v: v >= 0)


def is_loopback_host(host: str) -> bool:
    """True for names and addresses that can only reach this machine."""
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _local_user() -> str:
    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        return str(os.getuid())


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    """Everything the gateway needs, built once by `from_env` and passed down explicitly."""

    host: str = "0.0.0.0"
    port: int = 8091
    workers: int = 1
    waiide_host: str = "127.0.0.1"
    waiide_port: int = 8080
    waiide_socket: str | None = None
    auth: AuthMode = AuthMode.TOKEN
    token: str = field(default="", repr=False)
    token_generated: bool = False
    connect_timeout_s: float = 10.0
    read_timeout_s: float = 300.0
    ws_max_message_bytes: int = 256 * MIB
    ws_ping_interval_s: float = 30.0
    max_body_bytes: int = 0
    header_timeout_s: float = 20.0
    max_header_connections: int = 256
    upstream_pool_size: int = 64
    multiproc_dir: str | None = None
    internal_secret: str = field(default="", repr=False)
    record_path: str = ""
    ws_compression: str = "passthrough"
    debug: bool = False
    user: str = field(default_factory=_local_user)
    service_prefix: str = "/"
    hub: HubSettings | None = None
    all_components: bool = True
    main_port: int = 8090

    @property
    def upstream_label(self) -> str:
        """How error pages and logs name WAIIDE."""
        if self.waiide_socket:
            return f"unix:{self.waiide_socket}"
        host = f"[{self.waiide_host}]" if ":" in self.waiide_host else self.waiide_host
        return f"{host}:{self.waiide_port}"

    @property
    def under_hub(self) -> bool:
        return self.hub is not None

    @property
    def serves_main_port(self) -> bool:
        """Lightweight mode: the gateway is also the single-user endpoint on PORT."""
        return not self.all_components

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> GatewayConfig:
        """Read and validate the gateway's variables (see the README's table)."""
        waiide_host = _text(environ, "WAIIDE_HOST", "127.0.0.1")
        if not is_loopback_host(waiide_host):
            raise ConfigError("WAIIDE_HOST", waiide_host,
                              "WAIIDE must listen on loopback (127.0.0.1, ::1) or a unix socket.")
        socket_path = _text(environ, "WAIIDE_SOCKET", "") or None
        if socket_path is not None and not os.path.isabs(socket_path):
            raise ConfigError("WAIIDE_SOCKET", socket_path, "Use an absolute path.")
        prefix = _text(environ, "JUPYTERHUB_SERVICE_PREFIX", "/") or "/"
        if not prefix.startswith("/"):
            raise ConfigError("JUPYTERHUB_SERVICE_PREFIX", prefix, "Must start with '/'.")
        if not prefix.endswith("/"):
            prefix += "/"
        user = _text(environ, "JUPYTERHUB_USER", "") or _local_user()
        hub = HubSettings.from_env(environ, prefix, user)
        auth_raw = _text(environ, "GATEWAY_AUTH", "auto").lower()
        if auth_raw == "auto":
            auth = AuthMode.HUB if hub is not None else AuthMode.TOKEN
        else:
            try:
                auth = AuthMode(auth_raw)
            except ValueError:
                raise ConfigError("GATEWAY_AUTH", auth_raw,
                                  "Use auto, token, hub or none.") from None
        if auth is AuthMode.HUB and hub is None:
            raise ConfigError("GATEWAY_AUTH", auth_raw, "Hub auth needs JUPYTERHUB_API_TOKEN.")
        compression = _choice(environ, "GATEWAY_WS_COMPRESSION", "auto",
                              ("auto", "passthrough", "off"))
        if compression == "auto":
            reports_activity = hub is not None and hub.activity_url is not None
            compression = "off" if reports_activity else "passthrough"
        token = _text(environ, "GATEWAY_TOKEN", "")
        generated = auth is AuthMode.TOKEN and not token
        if generated:
            token = secrets.token_urlsafe(24)
        return cls(
            host=_text(environ, "HOST", "0.0.0.0"),
            port=_port(environ, "API_SERVER_PORT", 8091),
            workers=_cast(environ, "GATEWAY_WORKERS", os.cpu_count() or 1, int,
                          "worker count (1-64)", lambda n: 1 <= n <= 64),
            waiide_host=waiide_host,
            waiide_port=_port(environ, "WAIIDE_PORT", 8080),
            waiide_socket=socket_path,
            auth=auth,
            token=token,
            token_generated=generated,
            connect_timeout_s=_positive_float(environ, "GATEWAY_CONNECT_TIMEOUT", 10.0),
            read_timeout_s=_positive_float(environ, "GATEWAY_READ_TIMEOUT", 300.0),
            ws_max_message_bytes=_cast(environ, "GATEWAY_WS_MAX_MESSAGE_BYTES", 256 * MIB, int,
                                       "byte count >= 1024", lambda n: n >= 1024),
            ws_ping_interval_s=_non_negative_float(environ, "GATEWAY_WS_PING_INTERVAL", 30.0),
            max_body_bytes=_cast(environ, "GATEWAY_MAX_BODY_BYTES", 0, int,
                                 "byte count (0 = unlimited)", lambda n: n >= 0),
            header_timeout_s=_positive_float(environ, "GATEWAY_HEADER_TIMEOUT", 20.0),
            max_header_connections=_cast(environ, "GATEWAY_MAX_HEADER_CONNECTIONS", 256, int,
                                         "connection count (1-65536)",
                                         lambda n: 1 <= n <= 65536),
            upstream_pool_size=_cast(environ, "GATEWAY_UPSTREAM_POOL_SIZE", 64, int,
                                     "connection count (0-4096)", lambda n: 0 <= n <= 4096),
            ws_compression=compression,
            multiproc_dir=_multiproc_dir(environ),
            internal_secret=_text(environ, "GATEWAY_INTERNAL_SECRET", ""),
            record_path=str(default_record_path(environ)),
            debug=_bool(environ, "DEBUG", False),
            user=user,
            service_prefix=prefix,
            hub=hub,
            all_components=_bool(environ, "USE_ALL_COMPONENTS", True),
            main_port=_port(environ, "PORT", 8090),
        )
