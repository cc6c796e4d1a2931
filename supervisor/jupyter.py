"""Full mode's Jupyter child: jupyterhub-singleuser under a hub, a plain Jupyter server standalone,
both with jupyter-server-proxy serving the already-running WAIIDE at `{prefix}WAIIDE/`.

Checked against the installed jupyter-server-proxy 4.6.0 source:
- `config.py: ServerProcess.get_proxy_base_class()` picks `SuperviseAndProxyHandler` (which
  launches the command through simpervisor) only when `command` is truthy. With `command: []`
  and a `port` or a string `unix_socket` it picks `NamedLocalProxyHandler`, a plain proxy: no
  process is started, no readiness wait, nothing is restarted. (Even the launching handler's
  `ensure_process()` returns early for an empty command.) So there is exactly one IDE: ours.
- `NamedLocalProxyHandler` dials `localhost:<port>` (`LocalProxyHandler.proxy`), or the socket.
- The file is found through JUPYTER_CONFIG_PATH, which jupyter_core puts *first* in the config
  search path (`jupyter_core.paths.jupyter_config_path`), so a user's ~/.jupyter cannot point
  WAIIDE elsewhere; unlike JUPYTER_CONFIG_DIR it leaves the user's own config in force.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from common.defaults import INTERNAL_HEADER, url_host
from supervisor.config import SupervisorConfig
from supervisor.spec import ChildSpec, ReadyCheck

JSP_SERVER_NAME = "WAIIDE"
ACTIVITY_URL_VAR = "JUPYTERHUB_ACTIVITY_URL"
CONFIG_FILE_NAME = "jupyter_server_config.json"
ALLOW_ROOT = "--allow-root"
# supervisor.jupyter_status, the server extension behind `GET PORT/api/status`, and its settings.
# (Named, not imported: it imports jupyter_server, which the supervisor itself does not need.)
STATUS_EXTENSION = "supervisor.jupyter_status"
STATUS_CONFIG_SECTION = "WaiideHubStatus"
STATUS_URL_KEY = "gateway_status_url"
LAUNCHER_TITLE = "WAIIDE"
LAUNCHER_ICON = Path(__file__).with_name("waiide-icon.svg")  # JupyterLab's launcher tile


def proxy_config(config: SupervisorConfig) -> dict[str, object]:
    """The ServerProxy section that serves `{prefix}WAIIDE/` through the gateway.

    jupyter-server-proxy forwards every request header, so pointed at WAIIDE directly it would
    hand the IDE the visitor's hub token and hub cookies (`Authorization`, `jupyterhub-*`; the
    server's OAuth cookie carries the token). It points at the gateway instead, with a header
    carrying a secret only the supervisor, Jupyter and the gateway know: the gateway treats such
    a request as already authenticated by Jupyter, removes the hub and Jupyter credentials and
    the secret, and relays it to WAIIDE like any other.
    """
    server: dict[str, object] = {
        "command": [],  # empty: proxy only, never launch (see module docstring)
        "absolute_url": False,  # strip {prefix}WAIIDE; code-server builds relative URLs
        "new_browser_tab": True,
        "launcher_entry": {"enabled": True, "title": LAUNCHER_TITLE,
                           "path_info": f"{JSP_SERVER_NAME}/", "icon_path": str(LAUNCHER_ICON)},
        "port": config.api_port,
        "request_headers_override": {INTERNAL_HEADER: config.internal_secret},
        # jupyter-server-proxy would count every relayed message (VS Code's keepalives and
        # polling included) as activity of the single-user server; the gateway measures use.
        "update_last_activity": False,
    }
    return {"ServerProxy": {"servers": {JSP_SERVER_NAME: server}}}


def status_config(config: SupervisorConfig) -> dict[str, object]:
    """Loads supervisor.jupyter_status: `GET PORT/api/status` relays the gateway's health."""
    return {
        "ServerApp": {"jpserver_extensions": {STATUS_EXTENSION: True}},
        STATUS_CONFIG_SECTION: {STATUS_URL_KEY: config.local_url(config.api_port, "/api/status")},
    }


def write_proxy_config(directory: Path, config: SupervisorConfig) -> Path:
    """Write `jupyter_server_config.json` (the proxy and the status extension) into `directory`
    (created if needed); its path."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / CONFIG_FILE_NAME
    settings = {**proxy_config(config), **status_config(config)}
    path.write_text(json.dumps(settings, indent=2) + "\n", encoding="utf-8")
    return path


def jupyter_argv(config: SupervisorConfig, extra_args: Sequence[str]) -> tuple[str, ...]:
    """`python -m jupyterhub.singleuser` or `python -m jupyter_server` on HOST:PORT.

    `extra_args` are the supervisor's own command-line arguments: the hub appends
    `Spawner.args` to whatever `Spawner.cmd` is, so they belong to the Jupyter server.
    """
    module = "jupyterhub.singleuser" if config.under_hub else "jupyter_server"
    argv = [config.python, "-m", module, f"--ip={config.host}", f"--port={config.port}",
            "--no-browser", "--ServerApp.port_retries=0"]
    if config.workspace:
        # The same folder as the IDE's; given first so a hub's --notebook-dir (Spawner.args) wins.
        argv.append(f"--ServerApp.root_dir={config.workspace}")
    if not config.under_hub and config.service_prefix != "/":
        # jupyterhub-singleuser takes its base URL from JUPYTERHUB_SERVICE_PREFIX; a standalone
        # server is told, so the banner's, the monitor's and the user's URLs are the same.
        argv.append(f"--ServerApp.base_url={config.service_prefix}")
    if config.debug:
        argv.append("--debug")  # Jupyter does not read DEBUG itself
    if config.allow_root:
        argv.append(ALLOW_ROOT)
    argv.extend(arg for arg in extra_args if not (arg == ALLOW_ROOT and config.allow_root))
    return tuple(argv)


def jupyter_env(config: SupervisorConfig, base: Mapping[str, str],
                config_dir: Path) -> dict[str, str]:
    """The Jupyter child's env: `base` plus the config path first and, standalone, the token."""
    env = dict(base)
    search = [str(config_dir)]
    if env.get("JUPYTER_CONFIG_PATH"):
        search.append(env["JUPYTER_CONFIG_PATH"])
    env["JUPYTER_CONFIG_PATH"] = os.pathsep.join(search)
    if config.under_hub:
        # jupyterhub-singleuser refuses to start without it; --ip/--port override its address.
        env.setdefault("JUPYTERHUB_SERVICE_URL",
                       f"http://{url_host(config.host)}:{config.port}{config.service_prefix}")
        # The gateway posts this server's activity (only real use). jupyterhub-singleuser
        # would post its own every JUPYTERHUB_ACTIVITY_INTERVAL, and re-posts its last time
        # even when nothing happened (it skips only older ones): without the URL it posts
        # nothing (it logs "Activity events disabled").
        env.pop(ACTIVITY_URL_VAR, None)
    elif config.jupyter_token:
        env["JUPYTER_TOKEN"] = config.jupyter_token  # read by IdentityProvider.token
    return env


def jupyter_spec(config: SupervisorConfig, base_env: Mapping[str, str], config_dir: Path,
                 extra_args: Sequence[str]) -> ChildSpec:
    """The `singleuser` child (writes the proxy config file into `config_dir`)."""
    write_proxy_config(config_dir, config)
    # The hub decides "up" by GET {prefix}api (any status < 500); probe the same URL.
    url = config.local_url(config.port, f"{config.service_prefix}api")
    return ChildSpec(
        name="singleuser",
        argv=jupyter_argv(config, extra_args),
        env=jupyter_env(config, base_env, config_dir),
        ready=ReadyCheck(url),
        ready_timeout_s=config.ready_timeout_s,
        stop_timeout_s=config.stop_timeout_s,
        restart=config.restart,
    )

