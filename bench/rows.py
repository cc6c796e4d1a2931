"""The rows of the table: each way of reaching the upstream, started and stopped by the benchmark.

| row       | what                                                                           |
|-----------|--------------------------------------------------------------------------------|
| direct    | the upstream itself: the limit                                                 |
| gateway   | `python -m gateway` (this repo), default settings plus any `--gateway-env`     |
| gateway-unix | the same, to the upstream's unix socket (WAIIDE_SOCKET), as the IDE by default |
| chp       | configurable-http-proxy (npm), --default-target the upstream                   |
| nginx     | nginx reverse proxy, `proxy_buffering off` (nginx's other defaults)            |
| nginx-64k | nginx reverse proxy, `proxy_buffering on` with 8 x 64 KiB buffers, memory only |
| jsp       | jupyter-server-proxy in a `jupyter server`, a ServerProxy entry, no command    |

Both nginx rows use one worker per core, HTTP/1.1 with upstream keepalive, WebSocket upgrade
headers and `proxy_request_buffering off` (so an upload is streamed, not spooled to disk).
A row that cannot start is reported as "unavailable: <reason>" and the run goes on without it.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

from bench import nginx_conf
from bench.procs import LOOPBACK, Service, ServiceError, free_port, http_status
from bench.tools import ROOT, Tools
from bench.upstream import Upstream

logger = logging.getLogger(__name__)

ROW_NAMES = ("direct", "gateway", "gateway-unix", "chp", "nginx", "nginx-64k", "jsp")
READY_TIMEOUT_S = 30.0
JSP_SERVER_NAME = "bench"
_GATEWAY_ENV_PREFIXES = ("GATEWAY_", "JUPYTERHUB_", "MONITOR_", "SUPERVISOR_")
_GATEWAY_ENV_NAMES = {"USE_ALL_COMPONENTS", "WAIIDE_SOCKET", "DEBUG", "PROMETHEUS_MULTIPROC_DIR"}


@dataclass(frozen=True, slots=True)
class RowTarget:
    """Where a row is reached, and the service whose process tree is the proxy (none for direct)."""

    name: str
    origin: str
    path_prefix: str = ""
    service: Service | None = field(default=None, repr=False)

    @property
    def base_url(self) -> str:
        return self.origin + self.path_prefix

    @property
    def ws_base(self) -> str:
        return "ws://" + self.base_url.removeprefix("http://")


@dataclass(frozen=True, slots=True)
class RowContext:
    """What starting a row needs."""

    tools: Tools
    upstream: Upstream
    workdir: Path
    gateway_env: Mapping[str, str]
    stack: ExitStack


def _started(ctx: RowContext, service: Service, ready_urls: list[str]) -> None:
    ctx.stack.callback(service.stop)
    service.start()
    service.ready(ready_urls, READY_TIMEOUT_S)


def _start_direct(ctx: RowContext) -> RowTarget:
    return RowTarget("direct", ctx.upstream.base_url)


def _start_gateway(ctx: RowContext, name: str = "gateway", unix: bool = False) -> RowTarget:
    if not (ROOT / "gateway" / "__main__.py").exists():
        raise ServiceError("no gateway/__main__.py yet (python -m gateway does not exist)")
    port = free_port()
    prom_dir = ctx.workdir / "gateway-prometheus"
    prom_dir.mkdir(exist_ok=True)
    # Default settings: nothing of a surrounding hub or stack leaks in from the caller's shell.
    env = {key: value for key, value in ctx.tools.environ.items()
           if not key.startswith(_GATEWAY_ENV_PREFIXES) and key not in _GATEWAY_ENV_NAMES}
    # PORT too, in case the gateway also serves it: never the default 8090 of a running stack.
    env.update(HOST=LOOPBACK, API_SERVER_PORT=str(port), PORT=str(free_port()),
               WAIIDE_HOST=LOOPBACK, WAIIDE_PORT=str(ctx.upstream.port),
               GATEWAY_AUTH="none", PROMETHEUS_MULTIPROC_DIR=str(prom_dir))
    if unix:
        env["WAIIDE_SOCKET"] = str(ctx.upstream.unix_socket)
    env.update(ctx.gateway_env)
    base = f"http://{LOOPBACK}:{port}"
    service = Service(name, [ctx.tools.python, "-m", "gateway"], ctx.workdir / f"{name}.log",
                      env=env, cwd=ROOT)
    _started(ctx, service, [f"{base}/api/healthz", f"{base}/api"])
    return RowTarget(name, base, service=service)


def _start_chp(ctx: RowContext) -> RowTarget:
    if not ctx.tools.chp.exists():
        raise ServiceError(f"configurable-http-proxy not installed at {ctx.tools.chp}")
    port, api_port = free_port(), free_port()
    # Its API is never used here; a token only keeps it from warning.
    env = ctx.tools.env(CONFIGPROXY_AUTH_TOKEN=secrets.token_hex(16))
    argv = [ctx.tools.node, str(ctx.tools.chp.resolve()), "--ip", LOOPBACK, "--port", str(port),
            "--api-ip", LOOPBACK, "--api-port", str(api_port),
            "--default-target", ctx.upstream.base_url, "--log-level", "warn"]
    base = f"http://{LOOPBACK}:{port}"
    service = Service("chp", argv, ctx.workdir / "chp.log", env=env)
    _started(ctx, service, [f"{base}/f1k"])
    return RowTarget("chp", base, service=service)


def _start_nginx(ctx: RowContext, name: str, buffering: nginx_conf.ProxyBuffering) -> RowTarget:
    port = free_port()
    layout = nginx_conf.NginxLayout(ctx.workdir / f"nginx-{name}")
    nginx_conf.write_proxy(layout, port=port, upstream_port=ctx.upstream.port, workers="auto",
                           buffering=buffering)
    base = f"http://{LOOPBACK}:{port}"
    service = Service(name, layout.argv(ctx.tools.nginx), layout.dir / "stdout.log",
                      env=ctx.tools.env())
    _started(ctx, service, [f"{base}/f1k"])
    return RowTarget(name, base, service=service)


_JSP_CONFIG = """\
c.ServerApp.ip = {ip!r}
c.ServerApp.port = {port}
c.ServerApp.port_retries = 0
c.ServerApp.open_browser = False
c.ServerApp.allow_root = True
c.ServerApp.root_dir = {root!r}
c.ServerApp.disable_check_xsrf = True
c.ServerApp.jpserver_extensions = {{"jupyter_server_proxy": True}}
c.IdentityProvider.token = ""
c.ServerProxy.servers = {{
    {name!r}: {{"command": [], "port": {upstream_port}, "absolute_url": False,
               "launcher_entry": {{"enabled": False}}}},
}}
"""


def _start_jsp(ctx: RowContext) -> RowTarget:
    port = free_port()
    home = ctx.workdir / "jsp"
    for sub in ("config", "data", "runtime", "root"):
        (home / sub).mkdir(parents=True, exist_ok=True)
    config = home / "jupyter_server_config.py"
    config.write_text(_JSP_CONFIG.format(ip=LOOPBACK, port=port, root=str(home / "root"),
                                         name=JSP_SERVER_NAME, upstream_port=ctx.upstream.port))
    # Keep the user's own Jupyter configuration out of the measurement.
    env = ctx.tools.env(JUPYTER_CONFIG_DIR=str(home / "config"),
                        JUPYTER_DATA_DIR=str(home / "data"),
                        JUPYTER_RUNTIME_DIR=str(home / "runtime"), JUPYTER_PLATFORM_DIRS="1")
    argv = [ctx.tools.python, "-m", "jupyter_server", f"--config={config}"]
    origin = f"http://{LOOPBACK}:{port}"
    service = Service("jsp", argv, ctx.workdir / "jsp.log", env=env)
    _started(ctx, service, [f"{origin}/api"])
    return RowTarget("jsp", origin, f"/{JSP_SERVER_NAME}", service)


_STARTERS: dict[str, Callable[[RowContext], RowTarget]] = {
    "direct": _start_direct,
    "gateway": _start_gateway,
    "gateway-unix": lambda ctx: _start_gateway(ctx, "gateway-unix", unix=True),
    "chp": _start_chp,
    "nginx": lambda ctx: _start_nginx(ctx, "nginx", "off"),
    "nginx-64k": lambda ctx: _start_nginx(ctx, "nginx-64k", "64k"),
    "jsp": _start_jsp,
}


def start_row(ctx: RowContext, name: str) -> RowTarget:
    """Start row `name` (its processes stop with `ctx.stack`) and check that it serves a file.

    Raises:
        ServiceError: the row cannot be measured; the message says why.
    """
    target = _STARTERS[name](ctx)
    status = http_status(f"{target.base_url}/f1k", timeout_s=10.0)
    if status != 200:
        raise ServiceError(f"GET /f1k through {name} answered {status}")
    logger.info("row %s ready at %s", name, target.base_url)
    return target
