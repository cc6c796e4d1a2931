"""Gateway configuration: every environment variable the gateway reads, validated once in main().

Nothing else in `gateway/` reads the environment. A bad value stops the start with a message that
names the variable and the value (see `ConfigError`).
"""

from __future__ import annotations

import json
import os
import pwd
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field

from common.activity_files import ENV_VAR as ACTIVITY_DIR_ENV
from common.activity_files import SECRET_ENV as ACTIVITY_SECRET_ENV
from common.activity_files import default_activity_dir
from common.auth_mode import AuthMode, resolve_auth_mode
from common.cgroup import MAX_DEFAULT_WORKERS, CpuBudget, cpu_budget, default_workers
from common.defaults import (
    DEFAULT_API_PORT,
    DEFAULT_HOST,
    DEFAULT_PORT,
    DEFAULT_WAIIDE_HOST,
    DEFAULT_WAIIDE_PORT,
    INTERNAL_SECRET_ENV,
    is_loopback,
)
from common.env import EnvReader
from common.errors import ConfigError
from monitor.record import default_record_path

__all__ = ["AuthMode", "GatewayConfig", "HubSettings"]

MIB = 1024 * 1024
# What code-server sends over plain HTTP answers at once (pages, assets, remote resources, its
# extension-gallery proxy, downloads that stream); everything long-lived (the remote agent,
# terminals, the extension host) runs over WebSockets, which this timeout does not cover. So a
# minute of silence before or inside a response means a stuck request, not a slow one; and a
# hung IDE as a whole is restarted by the supervisor's liveness probe within ~15 s, which ends
# its requests sooner. (The old 300 s held a browser's request for five minutes first.)
DEFAULT_READ_TIMEOUT_S = 60.0


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
    def from_env(cls, env: EnvReader, prefix: str, user: str) -> HubSettings | None:
        token = env.raw("JUPYTERHUB_API_TOKEN")
        if token is None:
            return None
        api_url = env.text("JUPYTERHUB_API_URL", "")
        if not api_url:
            raise ConfigError("JUPYTERHUB_API_URL", api_url,
                              "Required when JUPYTERHUB_API_TOKEN is set.")
        raw_scopes = (env.raw("JUPYTERHUB_OAUTH_ACCESS_SCOPES")
                      or env.raw("JUPYTERHUB_OAUTH_SCOPES") or "")
        server = env.text("JUPYTERHUB_SERVER_NAME", "")
        if raw_scopes:
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
            client_id=env.text("JUPYTERHUB_CLIENT_ID", client_default),
            oauth_callback_url=env.text("JUPYTERHUB_OAUTH_CALLBACK_URL",
                                        f"{prefix}oauth_callback"),
            access_scopes=tuple(scopes),
            prefix=prefix,
            server_name=server,
            activity_url=env.raw("JUPYTERHUB_ACTIVITY_URL"),
            activity_interval_s=env.seconds("JUPYTERHUB_ACTIVITY_INTERVAL", 300.0),
        )


def _multiproc_dir(env: EnvReader) -> str | None:
    # prometheus_client switches on the variable's presence: set but empty would write metric
    # files into the working directory, so an empty value is an error, not "off".
    if "PROMETHEUS_MULTIPROC_DIR" not in env.environ:
        return None
    value = env.text("PROMETHEUS_MULTIPROC_DIR", "")
    if not value or not os.path.isdir(value):
        raise ConfigError("PROMETHEUS_MULTIPROC_DIR", value,
                          "Must be an existing directory (or leave it unset).")
    return value


def _workers(env: EnvReader, cpu: CpuBudget | None) -> tuple[int, str]:
    """GATEWAY_WORKERS, or one per CPU the process may use (capped); and why, for the log."""
    if env.is_set("GATEWAY_WORKERS"):
        return env.count("GATEWAY_WORKERS", 1, minimum=1, maximum=64), "GATEWAY_WORKERS"
    budget = cpu if cpu is not None else cpu_budget()
    workers = default_workers(budget)
    return workers, f"default from {budget.describe()}, capped at {MAX_DEFAULT_WORKERS}"


def _local_user() -> str:
    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        return str(os.getuid())


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    """Everything the gateway needs, built once by `from_env` and passed down explicitly."""

    host: str = DEFAULT_HOST
    port: int = DEFAULT_API_PORT
    workers: int = 1
    workers_reason: str = ""
    waiide_host: str = "127.0.0.1"
    waiide_port: int = 8080
    waiide_socket: str | None = None
    auth: AuthMode = AuthMode.TOKEN
    token: str = field(default="", repr=False)
    token_generated: bool = False
    connect_timeout_s: float = 10.0
    # 60 s, not 300: see DEFAULT_READ_TIMEOUT_S.
    read_timeout_s: float = 60.0
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
    main_port: int = DEFAULT_PORT
    activity_dir: str = ""
    activity_secret: str = field(default="", repr=False)
    idle_busy_counts: bool = True
    waiide_memory_limit: int | None = None

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
    def from_env(cls, environ: Mapping[str, str] = os.environ,
                 cpu: CpuBudget | None = None) -> GatewayConfig:
        """Read and validate the gateway's variables (see the README's table).

        Args:
            cpu: the CPUs this process may use (default: its affinity mask and cgroup quota),
                from which GATEWAY_WORKERS' default comes.
        """
        env = EnvReader(environ)
        workers, workers_reason = _workers(env, cpu)
        waiide_host = env.text("WAIIDE_HOST", DEFAULT_WAIIDE_HOST)
        if not is_loopback(waiide_host):
            raise ConfigError("WAIIDE_HOST", waiide_host,
                              "WAIIDE must listen on loopback (127.0.0.1, ::1) or a unix socket.")
        prefix = env.prefix()
        user = env.text("JUPYTERHUB_USER", "") or _local_user()
        hub = HubSettings.from_env(env, prefix, user)
        auth = resolve_auth_mode(env, under_hub=hub is not None)
        compression = env.choice("GATEWAY_WS_COMPRESSION", "auto", ("auto", "passthrough", "off"))
        if compression == "auto":
            reports_activity = hub is not None and hub.activity_url is not None
            compression = "off" if reports_activity else "passthrough"
        token = env.text("GATEWAY_TOKEN", "")
        generated = auth is AuthMode.TOKEN and not token
        if generated:
            token = secrets.token_urlsafe(24)
        port = env.port("API_SERVER_PORT", DEFAULT_API_PORT)
        return cls(
            host=env.text("HOST", DEFAULT_HOST),
            port=port,
            workers=workers,
            workers_reason=workers_reason,
            waiide_host=waiide_host,
            waiide_port=env.port("WAIIDE_PORT", DEFAULT_WAIIDE_PORT),
            waiide_socket=env.absolute_path("WAIIDE_SOCKET"),
            auth=auth,
            token=token,
            token_generated=generated,
            connect_timeout_s=env.seconds("GATEWAY_CONNECT_TIMEOUT", 10.0),
            read_timeout_s=env.seconds("GATEWAY_READ_TIMEOUT", DEFAULT_READ_TIMEOUT_S),
            ws_max_message_bytes=env.count("GATEWAY_WS_MAX_MESSAGE_BYTES", 256 * MIB,
                                           minimum=1024),
            ws_ping_interval_s=env.seconds_or_zero("GATEWAY_WS_PING_INTERVAL", 30.0),
            max_body_bytes=env.count("GATEWAY_MAX_BODY_BYTES", 0),
            header_timeout_s=env.seconds("GATEWAY_HEADER_TIMEOUT", 20.0),
            max_header_connections=env.count("GATEWAY_MAX_HEADER_CONNECTIONS", 256, minimum=1,
                                             maximum=65536),
            upstream_pool_size=env.count("GATEWAY_UPSTREAM_POOL_SIZE", 64, maximum=4096),
            ws_compression=compression,
            multiproc_dir=_multiproc_dir(env),
            internal_secret=env.text(INTERNAL_SECRET_ENV, ""),
            record_path=str(default_record_path(environ)),
            debug=env.flag("DEBUG", False),
            user=user,
            service_prefix=prefix,
            hub=hub,
            all_components=env.flag("USE_ALL_COMPONENTS", True),
            main_port=env.port("PORT", DEFAULT_PORT),
            activity_dir=(env.absolute_path(ACTIVITY_DIR_ENV)
                          or str(default_activity_dir(os.getuid(), port))),
            activity_secret=env.text(ACTIVITY_SECRET_ENV, ""),
            idle_busy_counts=env.flag("WAIIDE_IDLE_BUSY_COUNTS", True),
            waiide_memory_limit=env.byte_size("WAIIDE_MEMORY_LIMIT"),
        )


def export_multiproc_dir(path: str | None) -> None:
    """Put PROMETHEUS_MULTIPROC_DIR into this process's environment (None: remove it).

    The one write to the environment: prometheus_client picks its mode from this variable when
    first imported, which the main process does (and its forked workers inherit), so a directory
    the main process made must be exported before that (gateway.metrics_dir).
    """
    if path is None:
        os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
    else:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = path
