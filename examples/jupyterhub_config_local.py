"""A JupyterHub on this machine that spawns WAIIDE Hub as each user's (default) server.

For development and the end-to-end tests: no Docker, no UNIX users. The hub, the real
configurable-http-proxy (CHP) and every server run as the hub's own user
(SimpleLocalProcessSpawner), each server being `scripts/entrypoint-jupyterhub.sh`, so a user who
logs in reaches the IDE at /user/{name}/WAIIDE/ (JupyterLab at /user/{name}/lab), as with the
DockerSpawner example.

    JH_RUN_DIR=$(mktemp -d) jupyterhub -f examples/jupyterhub_config_local.py

Everything is parametrised by the hub's environment, so a test fixture can pick free ports and a
temp dir (every value is read here, once, when the hub loads this file):

    JH_RUN_DIR            state: sqlite db, cookie secret, pid files, users' homes (required)
    JH_PORT               public proxy port on 127.0.0.1 (8000)
    JH_HUB_PORT           the hub's own API port (JH_PORT + 81)
    JH_PROXY_API_PORT     CHP's REST API port (JH_PORT + 1)
    JH_CHP                CHP executable ($WAIIDE_HUB_HOME/npm-tools/node_modules/.bin/
                          configurable-http-proxy, as scripts/setup.sh test installs it)
    JH_USERS              users who may log in, comma-separated ("alice,bob")
    JH_ADMIN_USERS        admins, comma-separated ("admin"; dummy authenticator only)
    JH_PASSWORD           set: SharedPasswordAuthenticator with this password (>= 8 chars);
                          unset: DummyAuthenticator (any password)
    JH_TEST_TOKEN         set: a service "e2e" with this token may manage users, servers, tokens
    JH_USE_ALL_COMPONENTS the servers' USE_ALL_COMPONENTS ("true"; "false" = lightweight)
    JH_ACTIVITY_INTERVAL  the servers' JUPYTERHUB_ACTIVITY_INTERVAL in seconds ("5")
    JH_LAST_ACTIVITY_INTERVAL  how often the hub reads activity from CHP, seconds (10)
    JH_START_TIMEOUT / JH_HTTP_TIMEOUT  spawn deadlines in seconds (60 / 120)
    JH_POLL_INTERVAL      how often the hub checks that a server's process still runs, seconds
                          (30): a server that stops itself (WAIIDE_IDLE_TIMEOUT) shows as
                          stopped in the hub's API within this long
    JH_SPAWN_ENV_OPTION   "true": a spawn's user_options may carry {"env": {...}} with
                          WAIIDE_*/GATEWAY_*/MONITOR_*/SUPERVISOR_* values for that server only,
                          over the hub's (tests spawn servers with different settings on one hub;
                          never on a shared hub: users could set their servers' environment)
    JH_DEBUG              "true": debug logs from the hub and every server
    WAIIDE_HUB_ROOT       the checkout whose entrypoint is spawned (this file's repo)
    WAIIDE_HUB_HOME       where scripts/setup.sh put code-server and CHP (~/.cache/waiide-hub)
    WAIIDE_*, GATEWAY_*, MONITOR_*, SUPERVISOR_*  passed on to every server as they are, e.g.
                          WAIIDE_COMMAND="python3 -m http.server --bind 127.0.0.1 {port}"
                          WAIIDE_READY_PATH=/ MONITOR_WAIIDE_HEALTH_PATH=/ for a stand-in IDE

Ports: each server gets its own free API_SERVER_PORT, chosen when it spawns (`Spawner.port` is
already random, 0 by default): with several servers on one machine (alice and bob, or a second
named server), a fixed 8091 would collide. The IDE listens on its private unix socket (0600 in a
0700 directory keyed by API_SERVER_PORT): on a machine shared by several users, a TCP port would
hand every local user the IDE's shell. Only a WAIIDE_COMMAND that uses {port} (a stand-in such as
the http.server above) gets a WAIIDE_PORT of its own too. The hub's API does not say where a
server's gateway is, so each spawn records its ports in
JH_RUN_DIR/servers/{username}/{servername or "default"}.json, e.g. {"API_SERVER_PORT": 41234}.
In full mode the gateway is also reachable through the hub at
/user/{name}/proxy/<API_SERVER_PORT>/ (jupyter-server-proxy).
"""

# ruff: noqa: F821  (`c`/`get_config` come from traitlets' config loader)
from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from jupyterhub.utils import random_port

c = get_config()  # type: ignore[name-defined]

PASS_PREFIXES = ("WAIIDE_", "GATEWAY_", "MONITOR_", "SUPERVISOR_")
# Never copied from the hub's environment: one value shared by every server would collide
# (ports, sockets, the status record), or it only concerns the hub (WAIIDE_HUB_ROOT).
NOT_PASSED = frozenset({"WAIIDE_PORT", "WAIIDE_SOCKET", "WAIIDE_HUB_STATUS_PATH",
                        "WAIIDE_HUB_ROOT"})


def _env(name: str, default: str) -> str:
    return os.environ.get(name, "").strip() or default


def _names(name: str, default: str) -> set[str]:
    return {part.strip() for part in _env(name, default).split(",") if part.strip()}


def _per_server_port(key: str) -> Callable[[Any], str]:
    """A Spawner.environment value: a free port, recorded in the server's ports file."""

    def pick(spawner: Any) -> str:
        # Called by Spawner.get_env() at every spawn, so each server gets ports of its own.
        port = random_port()
        path = RUN_DIR / "servers" / spawner.user.name / f"{spawner.name or 'default'}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        ports = json.loads(path.read_text()) if path.exists() else {}
        path.write_text(json.dumps({**ports, key: port}))
        return str(port)

    return pick


RUN_DIR = Path(os.environ["JH_RUN_DIR"]).resolve()
ROOT = Path(_env("WAIIDE_HUB_ROOT", str(Path(__file__).resolve().parent.parent)))
HUB_HOME = Path(_env("WAIIDE_HUB_HOME", "~/.cache/waiide-hub")).expanduser()
PORT = int(_env("JH_PORT", "8000"))
DEBUG = _env("JH_DEBUG", "false").lower() in ("true", "1")

# ---- the hub, its proxy, its state: loopback ports, everything under JH_RUN_DIR ----------------
c.JupyterHub.bind_url = f"http://127.0.0.1:{PORT}"
c.JupyterHub.hub_bind_url = f"http://127.0.0.1:{_env('JH_HUB_PORT', str(PORT + 81))}"
c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{_env('JH_PROXY_API_PORT', str(PORT + 1))}"
c.ConfigurableHTTPProxy.command = [
    _env("JH_CHP", str(HUB_HOME / "npm-tools" / "node_modules" / ".bin" / "configurable-http-proxy"))
]
c.ConfigurableHTTPProxy.pid_file = str(RUN_DIR / "proxy.pid")
c.JupyterHub.db_url = "sqlite:///" + str(RUN_DIR / "jupyterhub.sqlite")
c.JupyterHub.cookie_secret_file = str(RUN_DIR / "jupyterhub_cookie_secret")
c.JupyterHub.pid_file = str(RUN_DIR / "jupyterhub.pid")
c.JupyterHub.last_activity_interval = int(_env("JH_LAST_ACTIVITY_INTERVAL", "10"))
c.JupyterHub.log_level = "DEBUG" if DEBUG else "INFO"

# ---- who may log in ----------------------------------------------------------------------------
c.Authenticator.allowed_users = _names("JH_USERS", "alice,bob")
if os.environ.get("JH_PASSWORD"):
    c.JupyterHub.authenticator_class = "shared-password"
    c.SharedPasswordAuthenticator.user_password = os.environ["JH_PASSWORD"]
    # Admins of SharedPasswordAuthenticator need an admin_password (>= 32 chars); none here.
else:
    c.JupyterHub.authenticator_class = "dummy"  # any password: for tests only
    c.Authenticator.admin_users = _names("JH_ADMIN_USERS", "admin")

if os.environ.get("JH_TEST_TOKEN"):
    c.JupyterHub.services = [{"name": "e2e", "api_token": os.environ["JH_TEST_TOKEN"]}]
    c.JupyterHub.load_roles = [{
        "name": "e2e-driver", "services": ["e2e"],
        "scopes": ["admin:users", "admin:servers", "tokens", "read:metrics", "access:servers"],
    }]

# ---- the servers: the project's entrypoint as each user's default server ------------------------
c.JupyterHub.spawner_class = "simple"  # SimpleLocalProcessSpawner: no setuid, testing only
c.SimpleLocalProcessSpawner.home_dir_template = str(RUN_DIR / "home" / "{username}")
# Named servers are allowed for tests that start a second one (/user/{name}/{server}/); the
# story users see is the default server, as in the DockerSpawner example.
c.JupyterHub.allow_named_servers = True
c.Spawner.cmd = [str(ROOT / "scripts" / "entrypoint-jupyterhub.sh")]
# The hub appends Spawner.args to any cmd; as root, Jupyter needs --allow-root, and the
# entrypoint accepts it (the supervisor passes it on by itself).
c.Spawner.args = ["--allow-root"] if os.geteuid() == 0 else []
c.Spawner.default_url = "/WAIIDE/"
c.Spawner.start_timeout = int(_env("JH_START_TIMEOUT", "60"))
# From spawn to an answer at {prefix}api: the IDE must be ready first, then Jupyter (or, in
# lightweight mode, the gateway) starts; code-server on two busy cores takes its time.
c.Spawner.http_timeout = int(_env("JH_HTTP_TIMEOUT", "120"))
c.Spawner.poll_interval = int(_env("JH_POLL_INTERVAL", "30"))

_environment: dict[str, object] = {
    key: value for key, value in os.environ.items()
    if key.startswith(PASS_PREFIXES) and key not in NOT_PASSED
}
_environment.update({
    "USE_ALL_COMPONENTS": _env("JH_USE_ALL_COMPONENTS", "true"),
    "HOST": "127.0.0.1",
    "API_SERVER_PORT": _per_server_port("API_SERVER_PORT"),
    # The spawner sets HOME to the user's home under JH_RUN_DIR; code-server is where setup.sh
    # put it, under the hub user's WAIIDE_HUB_HOME.
    "WAIIDE_HUB_HOME": str(HUB_HOME),
    "JUPYTERHUB_ACTIVITY_INTERVAL": _env("JH_ACTIVITY_INTERVAL", "5"),
    "DEBUG": "true" if DEBUG else "false",
})
if "{port}" in str(_environment.get("WAIIDE_COMMAND", "")):
    _environment["WAIIDE_PORT"] = _per_server_port("WAIIDE_PORT")
c.Spawner.environment = _environment


def _spawn_env_option(spawner: Any) -> None:
    """pre_spawn_hook: this server's own settings from the spawn's user_options["env"]."""
    extra = (spawner.user_options or {}).get("env") or {}
    if not isinstance(extra, dict):
        raise TypeError(f"user_options env must be an object, not {extra!r}")
    bad = [key for key in extra if not (isinstance(key, str) and key.startswith(PASS_PREFIXES))
           or key in NOT_PASSED or not isinstance(extra[key], str)]
    if bad:
        raise ValueError(f"user_options env may only set string {'/'.join(PASS_PREFIXES)}* "
                         f"values (not {sorted(map(str, bad))})")
    # A new dict: the configured one is shared by every spawner.
    spawner.environment = {**spawner.environment, **extra}


if _env("JH_SPAWN_ENV_OPTION", "false").lower() in ("true", "1"):
    c.Spawner.pre_spawn_hook = _spawn_env_option
