"""Supervisor configuration: every environment variable the supervisor reads, validated once.

`SupervisorConfig.from_env()` is called once in `supervisor_main.main()`; nothing else in the
supervisor reads the environment. A bad value raises `ConfigError` naming the variable and the
value (starlette `Config` wording), and `main()` exits with `ExitCode.CONFIG_ERROR`. The table
of variables is `supervisor_main`'s docstring (`python supervisor_main.py --help`).

The children's own variables (GATEWAY_*, MONITOR_*, ...) pass through untouched in `environ`;
the supervisor only reads the few it must act on (GATEWAY_AUTH/GATEWAY_TOKEN to generate and
print the gateway's token, JUPYTER_TOKEN for the standalone Jupyter server).
"""

from __future__ import annotations

import enum
import ipaddress
import os
import pwd
import re
import secrets
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from common.auth_mode import AuthMode, resolve_auth_mode
from common.cgroup import Cgroup
from common.defaults import (
    DEFAULT_API_PORT,
    DEFAULT_HOST,
    DEFAULT_PORT,
    DEFAULT_WAIIDE_HOST,
    DEFAULT_WAIIDE_PORT,
    is_loopback,
    local_host,
    url_host,
)
from common.env import EnvReader
from common.errors import ConfigError
from supervisor.ide_settings import code_server_data_dir, public_ide_prefix
from supervisor.ide_socket import TCP_NOTE, default_socket_path, wants_tcp
from supervisor.idle import IdlePolicy
from supervisor.spec import LivenessPolicy, RestartPolicy

DEFAULT_READY_PATH = "/healthz"
DEFAULT_WAIIDE_READY_TIMEOUT_S = 120.0
DEFAULT_READY_TIMEOUT_S = 60.0
DEFAULT_STOP_TIMEOUT_S = 5.0
CODE_SERVER_FLAGS = ("--auth", "none", "--disable-telemetry", "--disable-update-check",
                     "--disable-workspace-trust", "--disable-getting-started-override")
SETUP_HINT = "is the IDE installed? Run `make setup-run` (scripts/setup.sh run) first"
# AF_UNIX paths are limited to 108 bytes including the terminating NUL (unix(7)).
MAX_SOCKET_PATH_BYTES = 107
_HOSTNAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$")


class Mode(enum.Enum):
    """Which children run (USE_ALL_COMPONENTS)."""

    FULL = "full"  # WAIIDE, singleuser (or jupyter server), gateway, monitor
    LIGHTWEIGHT = "lightweight"  # WAIIDE, gateway (also serving PORT), monitor


def _valid_listen_host(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return bool(_HOSTNAME.match(host))
    return True


def _home(environ: Mapping[str, str]) -> str:
    home = (environ.get("HOME") or "").strip()
    return home or pwd.getpwuid(os.getuid()).pw_dir


@dataclass(frozen=True, slots=True)
class _MainAddress:
    host: str
    port: int
    note: str | None


def _main_address(env: EnvReader, service_url: str | None) -> _MainAddress:
    """HOST/PORT, falling back to the hub's JUPYTERHUB_SERVICE_URL, then to 0.0.0.0:8090.

    Under a hub the spawner decides where it will look for the server (DockerSpawner: port 8888
    unless `c.DockerSpawner.port` says otherwise; local spawners: a random port) and says so in
    JUPYTERHUB_SERVICE_URL. Explicit HOST/PORT still win, with a note if they disagree.
    """
    service_host: str | None = None
    url_port: int | None = None
    if service_url is not None:
        try:
            parts = urlsplit(service_url)
            service_host, url_port = parts.hostname, parts.port
        except ValueError:
            raise ConfigError("JUPYTERHUB_SERVICE_URL", service_url, "Not a valid URL.") from None
    host = env.text("HOST", service_host or DEFAULT_HOST)
    if not _valid_listen_host(host):
        raise ConfigError("HOST", host, "Not a valid IP address or host name.")
    port = env.port("PORT", url_port or DEFAULT_PORT)
    note = None
    if url_port is not None and port != url_port:
        note = (f"PORT={port} but the hub expects the server on port {url_port} "
                f"(JUPYTERHUB_SERVICE_URL={service_url})")
    return _MainAddress(host, port, note)


@dataclass(frozen=True, slots=True)
class _Waiide:
    argv: tuple[str, ...]
    is_default: bool
    host: str
    port: int
    socket: str | None
    socket_is_default: bool
    workspace: str
    user_data_dir: str | None


def _waiide_socket(env: EnvReader, api_port: int) -> tuple[str | None, bool]:
    """(socket path or None for TCP, whether it is the default private one): supervisor.ide_socket."""
    sock = env.absolute_path("WAIIDE_SOCKET")
    if sock is not None or wants_tcp(env):
        return sock, False
    return default_socket_path(env, os.getuid(), api_port), True


def _waiide(env: EnvReader, debug: bool, api_port: int) -> _Waiide:
    """WAIIDE_HOST/PORT/SOCKET and the IDE command with `{host}`, `{port}`, `{socket}` filled."""
    host = env.text("WAIIDE_HOST", DEFAULT_WAIIDE_HOST)
    if not is_loopback(host):
        raise ConfigError("WAIIDE_HOST", host,
                          "WAIIDE must listen on loopback (127.x, ::1, localhost) "
                          "or on a unix socket (WAIIDE_SOCKET).")
    port = env.port("WAIIDE_PORT", DEFAULT_WAIIDE_PORT)
    sock, sock_default = _waiide_socket(env, api_port)
    if sock is not None and len(os.fsencode(sock)) > MAX_SOCKET_PATH_BYTES:
        raise ConfigError("WAIIDE_SOCKET", sock,
                          f"Unix socket paths are limited to {MAX_SOCKET_PATH_BYTES} bytes.")
    template = env.command("WAIIDE_COMMAND", ())
    is_default = not template
    workspace = env.text("WAIIDE_WORKSPACE", _home(env.environ))
    data_dir = None
    if is_default:
        data_dir = env.absolute_path("WAIIDE_USER_DATA_DIR") or code_server_data_dir(
            env.environ, _home(env.environ))
        template = _default_waiide_command(env, sock is not None, debug, workspace, data_dir)
    raw = env.raw("WAIIDE_COMMAND") or ""
    if sock is None and any("{socket}" in arg for arg in template):
        raise ConfigError("WAIIDE_COMMAND", raw, "It uses {socket} but WAIIDE_SOCKET is not set.")
    values = {"{host}": url_host(host), "{port}": str(port), "{socket}": sock or ""}
    argv = tuple(_substitute(arg, values) for arg in template)
    return _Waiide(argv, is_default, host, port, sock, sock_default, workspace, data_dir)


def _substitute(arg: str, values: Mapping[str, str]) -> str:
    # str.replace, not str.format: other braces in an argument (JSON, globs) stay as they are.
    for placeholder, value in values.items():
        arg = arg.replace(placeholder, value)
    return arg


def _default_waiide_command(env: EnvReader, use_socket: bool, debug: bool, workspace: str,
                            data_dir: str) -> tuple[str, ...]:
    """The code-server that scripts/setup.sh installs, on {host}:{port} or {socket}, with the
    managed flags of supervisor.ide_settings."""
    home = _home(env.environ)
    hub_home = env.text("WAIIDE_HUB_HOME", os.path.join(home, ".cache", "waiide-hub"))
    binary = os.path.join(os.path.expanduser(hub_home), "code-server", "bin", "code-server")
    listen = (("--socket", "{socket}", "--socket-mode", "600") if use_socket
              else ("--bind-addr", "{host}:{port}"))
    managed = ("--user-data-dir", data_dir,
               "--abs-proxy-base-path", public_ide_prefix(env.prefix()))
    log = ("--log", "debug") if debug else ()
    return (binary, *listen, *CODE_SERVER_FLAGS, *managed, *log, workspace)


@dataclass(frozen=True, slots=True)
class _Tokens:
    gateway: str | None
    gateway_generated: bool
    jupyter: str | None
    jupyter_generated: bool


def _tokens(env: EnvReader, mode: Mode, under_hub: bool) -> _Tokens:
    """GATEWAY_TOKEN when the gateway will ask for a token and, standalone, JUPYTER_TOKEN; made
    if missing.

    The gateway's mode is resolved by the same rule the gateway applies (common.auth_mode), so
    a token is generated and printed exactly when the gateway will use one.
    An empty JUPYTER_TOKEN would switch Jupyter's authentication off, so it counts as missing.
    """
    gateway = env.raw("GATEWAY_TOKEN")
    gateway_generated = False
    if gateway is None and resolve_auth_mode(env, under_hub) is AuthMode.TOKEN:
        gateway, gateway_generated = secrets.token_urlsafe(24), True
    jupyter = None
    jupyter_generated = False
    if mode is Mode.FULL and not under_hub:
        jupyter = env.raw("JUPYTER_TOKEN")
        if jupyter is None:
            jupyter, jupyter_generated = secrets.token_hex(24), True
    return _Tokens(gateway, gateway_generated, jupyter, jupyter_generated)


def _restart_policy(env: EnvReader) -> RestartPolicy:
    initial = env.seconds("SUPERVISOR_BACKOFF_INITIAL", 1.0)
    maximum = env.seconds("SUPERVISOR_BACKOFF_MAX", 30.0)
    if maximum < initial:
        raise ConfigError("SUPERVISOR_BACKOFF_MAX", str(maximum),
                          f"Must be >= SUPERVISOR_BACKOFF_INITIAL ({initial}).")
    return RestartPolicy(
        backoff_initial_s=initial,
        backoff_max_s=maximum,
        stable_uptime_s=env.seconds("SUPERVISOR_STABLE_UPTIME", 30.0),
        flap_restarts=env.count("SUPERVISOR_FLAP_RESTARTS", 5, minimum=2),
        flap_window_s=env.seconds("SUPERVISOR_FLAP_WINDOW", 60.0),
    )


def _idle_policy(env: EnvReader) -> IdlePolicy:
    return IdlePolicy(
        timeout_s=env.seconds_or_zero("WAIIDE_IDLE_TIMEOUT", 0.0),
        warning_s=env.seconds_or_zero("WAIIDE_IDLE_WARNING", 300.0),
        busy_counts=env.flag("WAIIDE_IDLE_BUSY_COUNTS", True),
    )


def _liveness(env: EnvReader) -> LivenessPolicy:
    return LivenessPolicy(
        interval_s=env.seconds("SUPERVISOR_PROBE_INTERVAL", 5.0),
        timeout_s=env.seconds("SUPERVISOR_PROBE_TIMEOUT", 2.0),
        failures=env.count("SUPERVISOR_HANG_PROBES", 3, minimum=1),
    )


@dataclass(frozen=True, slots=True)
class SupervisorConfig:
    """Everything the supervisor needs, built once by `from_env` and passed down explicitly.

    `environ` is the supervisor's environment as read; every child's env is built from a copy.
    `notes` are warnings for `main()` to log once logging is configured.
    """

    mode: Mode = Mode.FULL
    under_hub: bool = False
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    api_port: int = DEFAULT_API_PORT
    service_prefix: str = "/"
    debug: bool = False
    waiide_argv: tuple[str, ...] = ()
    waiide_default_command: bool = True
    waiide_host: str = DEFAULT_WAIIDE_HOST
    waiide_port: int = DEFAULT_WAIIDE_PORT
    waiide_socket: str | None = None
    waiide_socket_default: bool = False  # the private one of supervisor.ide_socket
    workspace: str = ""  # the IDE's folder and Jupyter's root_dir
    waiide_user_data_dir: str | None = None  # the default code-server's (supervisor.ide_settings)
    machine_settings: str | None = None  # WAIIDE_MACHINE_SETTINGS: a JSON file or "none"
    waiide_memory_limit: int | None = None  # bytes: WAIIDE_MEMORY_LIMIT, else the cgroup's
    credentials_dir: str | None = None  # where generated tokens are kept (supervisor.credentials)
    waiide_ready_path: str = DEFAULT_READY_PATH
    waiide_ready_timeout_s: float = DEFAULT_WAIIDE_READY_TIMEOUT_S
    ready_timeout_s: float = DEFAULT_READY_TIMEOUT_S
    gateway_argv: tuple[str, ...] = ()
    monitor_argv: tuple[str, ...] = ()
    gateway_token: str | None = None
    gateway_token_generated: bool = False
    gateway_token_reused: bool = False
    jupyter_token: str | None = None
    jupyter_token_generated: bool = False
    # Proves to the gateway that a request comes through jupyter-server-proxy, which the
    # single-user server has already authenticated (see supervisor.jupyter).
    internal_secret: str = field(default="", repr=False)
    status_path: str | None = None
    metrics_dir: str | None = None
    restart: RestartPolicy = field(default_factory=RestartPolicy)
    liveness: LivenessPolicy = field(default_factory=LivenessPolicy)
    idle: IdlePolicy = field(default_factory=IdlePolicy)
    # Proves to the gateway that an activity report comes from the IDE extension.
    activity_secret: str = field(default="", repr=False)
    stop_timeout_s: float = DEFAULT_STOP_TIMEOUT_S
    allow_root: bool = False
    python: str = sys.executable
    environ: dict[str, str] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    def local_url(self, port: int, path: str = "/") -> str:
        """The URL by which this machine reaches a server listening on HOST:`port`."""
        return f"http://{url_host(local_host(self.host))}:{port}{path}"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ, *, euid: int | None = None,
                 python: str | None = None, cgroup: Cgroup | None = None) -> SupervisorConfig:
        """Read and validate the supervisor's variables (the README lists them all).

        Args:
            environ: the variables to read; a plain dict in tests.
            euid: effective uid deciding `--allow-root` for Jupyter (default: this process's).
            python: interpreter for `-m gateway`, `-m monitor`, Jupyter (default: this one).
            cgroup: where the container's memory limit is read (default: /sys/fs/cgroup).
        """
        env = EnvReader(environ)
        debug = env.flag("DEBUG", False)
        mode = Mode.FULL if env.flag("USE_ALL_COMPONENTS", True) else Mode.LIGHTWEIGHT
        under_hub = env.raw("JUPYTERHUB_API_TOKEN") is not None
        address = _main_address(env, env.raw("JUPYTERHUB_SERVICE_URL") if under_hub else None)
        api_port = env.port("API_SERVER_PORT", DEFAULT_API_PORT)
        waiide = _waiide(env, debug, api_port)
        ready_path = env.text("WAIIDE_READY_PATH", DEFAULT_READY_PATH)
        if not ready_path.startswith("/"):
            raise ConfigError("WAIIDE_READY_PATH", ready_path, "Must start with '/'.")
        interpreter = python or sys.executable
        tokens = _tokens(env, mode, under_hub)
        _check_distinct_ports(address.port, api_port, waiide)
        notes = tuple(note for note in (address.note, _proxy_note(mode, address.host, api_port),
                                        _tcp_note(waiide)) if note)
        return cls(
            mode=mode, under_hub=under_hub, host=address.host, port=address.port,
            api_port=api_port, service_prefix=env.prefix(), debug=debug,
            waiide_argv=waiide.argv, waiide_default_command=waiide.is_default,
            waiide_host=waiide.host, waiide_port=waiide.port, waiide_socket=waiide.socket,
            waiide_socket_default=waiide.socket_is_default, workspace=waiide.workspace,
            waiide_user_data_dir=waiide.user_data_dir,
            machine_settings=env.raw("WAIIDE_MACHINE_SETTINGS"),
            waiide_memory_limit=(env.byte_size("WAIIDE_MEMORY_LIMIT")
                                 or (cgroup or Cgroup()).memory_limit()),
            credentials_dir=_credentials_dir(env),
            waiide_ready_path=ready_path,
            waiide_ready_timeout_s=env.seconds("WAIIDE_READY_TIMEOUT",
                                               DEFAULT_WAIIDE_READY_TIMEOUT_S),
            ready_timeout_s=env.seconds("SUPERVISOR_READY_TIMEOUT", DEFAULT_READY_TIMEOUT_S),
            gateway_argv=env.command("SUPERVISOR_GATEWAY_COMMAND", (interpreter, "-m", "gateway")),
            monitor_argv=env.command("SUPERVISOR_MONITOR_COMMAND", (interpreter, "-m", "monitor")),
            gateway_token=tokens.gateway, gateway_token_generated=tokens.gateway_generated,
            jupyter_token=tokens.jupyter, jupyter_token_generated=tokens.jupyter_generated,
            internal_secret=secrets.token_urlsafe(32),
            status_path=env.absolute_path("WAIIDE_HUB_STATUS_PATH"),
            metrics_dir=env.absolute_path("PROMETHEUS_MULTIPROC_DIR"),
            restart=_restart_policy(env), liveness=_liveness(env), idle=_idle_policy(env),
            activity_secret=secrets.token_urlsafe(32),
            stop_timeout_s=env.seconds("SUPERVISOR_STOP_TIMEOUT", DEFAULT_STOP_TIMEOUT_S),
            allow_root=(os.geteuid() if euid is None else euid) == 0,
            python=interpreter, environ=dict(environ),
            notes=notes,
        )


def _proxy_note(mode: Mode, host: str, api_port: int) -> str | None:
    """jupyter-server-proxy always dials `localhost:<port>` for a named server (handlers.py
    `LocalProxyHandler.proxy`); in full mode that port is the gateway's (supervisor.jupyter)."""
    if mode is Mode.FULL and host not in ("0.0.0.0", "::", "", "127.0.0.1", "localhost", "::1"):
        return (f"HOST={host}: jupyter-server-proxy connects to the gateway at "
                f"localhost:{api_port}, which a gateway listening only on {host} may not answer")
    return None


def _tcp_note(waiide: _Waiide) -> str | None:
    if waiide.socket is not None:
        return None
    return TCP_NOTE.format(where=f"{url_host(waiide.host)}:{waiide.port}")


def _credentials_dir(env: EnvReader) -> str:
    """$XDG_DATA_HOME/waiide-hub, else ~/.local/share/waiide-hub (supervisor.credentials)."""
    data_home = env.raw("XDG_DATA_HOME")
    if not data_home or not os.path.isabs(data_home):
        data_home = os.path.join(_home(env.environ), ".local", "share")
    return os.path.join(data_home, "waiide-hub")


def _check_distinct_ports(port: int, api_port: int, waiide: _Waiide) -> None:
    """Two children on one port would fail late and obscurely; say it now."""
    if port == api_port:
        raise ConfigError("API_SERVER_PORT", str(api_port), "Must differ from PORT.")
    if waiide.socket is None and waiide.port in (port, api_port):
        raise ConfigError("WAIIDE_PORT", str(waiide.port),
                          "Must differ from PORT and API_SERVER_PORT.")
