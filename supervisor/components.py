"""The children in start order, built from the config: argv, environment, readiness, policies.

Start order, and the reverse stop order:
waiide → gateway → singleuser (full mode only) → monitor.
WAIIDE must be serving before anything that proxies to it or probes it starts; Jupyter's proxy
goes through the gateway (supervisor.jupyter), so the gateway comes before it; the monitor comes
last so that every pid is in the components file when it first reads it, and stops first so it
does not record the others' shutdown as failures.

Environments are built explicitly from the supervisor's own (never by mutating it):
- gateway and monitor get the internal wiring: PROMETHEUS_MULTIPROC_DIR, MONITOR_COMPONENTS_FILE,
  GATEWAY_TOKEN, the resolved HOST/PORT/API_SERVER_PORT and WAIIDE_HOST/PORT/SOCKET;
- WAIIDE and Jupyter run the user's code (terminals, kernels), so they get the user's environment
  without the internal wiring or the gateway's token. WAIIDE also loses PORT and
  CODE_SERVER_HOST: code-server lets them override `--bind-addr` (code-server
  `src/node/cli.ts: bindAddrFromArgs`), which would move the IDE onto the public port.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from common.activity_files import ENV_VAR as ACTIVITY_DIR_VAR
from common.activity_files import IDE_REPORT_PATH
from common.activity_files import SECRET_ENV as ACTIVITY_SECRET_VAR
from common.activity_files import URL_ENV as ACTIVITY_URL_VAR
from common.components_file import ENV_VAR as COMPONENTS_FILE_VAR
from common.defaults import GATEWAY_HEALTH_PATH, INTERNAL_SECRET_ENV, url_host
from supervisor.config import SETUP_HINT, Mode, SupervisorConfig
from supervisor.ide_setup import ide_env
from supervisor.jupyter import jupyter_spec
from supervisor.rundir import RunPaths
from supervisor.spec import ChildSpec, ReadyCheck

INTERNAL_VARS = ("PROMETHEUS_MULTIPROC_DIR", COMPONENTS_FILE_VAR, "GATEWAY_TOKEN",
                 INTERNAL_SECRET_ENV, ACTIVITY_DIR_VAR, ACTIVITY_SECRET_VAR, ACTIVITY_URL_VAR)
STATUS_PATH = "/api/status"
WAIIDE_HIDDEN_VARS = (*INTERNAL_VARS, "JUPYTER_TOKEN", "PORT", "CODE_SERVER_HOST")


def _flag(value: bool) -> str:
    return "true" if value else "false"


def _logging_env(config: SupervisorConfig) -> dict[str, str]:
    # Children write to pipes; unbuffered Python output keeps the relayed log in order.
    return {"DEBUG": _flag(config.debug), "PYTHONUNBUFFERED": "1"}


def user_env(config: SupervisorConfig, hidden: Sequence[str] = INTERNAL_VARS) -> dict[str, str]:
    """The user's environment for children that run user code, minus `hidden`."""
    env = {key: value for key, value in config.environ.items() if key not in hidden}
    env.update(_logging_env(config))
    return env


def service_env(config: SupervisorConfig, paths: RunPaths) -> dict[str, str]:
    """The environment of the gateway and the monitor: the user's plus the internal wiring."""
    env = dict(config.environ)
    env.update(_logging_env(config))
    env.update({
        "USE_ALL_COMPONENTS": _flag(config.mode is Mode.FULL),
        "HOST": config.host,
        "PORT": str(config.port),
        "API_SERVER_PORT": str(config.api_port),
        "WAIIDE_HOST": config.waiide_host,
        "WAIIDE_PORT": str(config.waiide_port),
        "PROMETHEUS_MULTIPROC_DIR": str(paths.metrics_dir),
        COMPONENTS_FILE_VAR: str(paths.components_file),
        ACTIVITY_DIR_VAR: str(paths.activity_dir),
        ACTIVITY_SECRET_VAR: config.activity_secret,
    })
    if config.waiide_socket:
        env["WAIIDE_SOCKET"] = config.waiide_socket
    if config.waiide_memory_limit is not None:  # the monitor exports it for the alert rule
        env["WAIIDE_MEMORY_LIMIT"] = str(config.waiide_memory_limit)
    if "JUPYTERHUB_SERVICE_PREFIX" in env:
        env["JUPYTERHUB_SERVICE_PREFIX"] = config.service_prefix  # with its trailing slash
    if config.gateway_token:
        env["GATEWAY_TOKEN"] = config.gateway_token
    if config.mode is Mode.FULL:
        env[INTERNAL_SECRET_ENV] = config.internal_secret
    return env


def waiide_ready_check(config: SupervisorConfig) -> ReadyCheck:
    """GET WAIIDE_READY_PATH on the IDE's own address (code-server: /healthz, no auth)."""
    if config.waiide_socket:
        return ReadyCheck(f"http://localhost{config.waiide_ready_path}", config.waiide_socket)
    host = url_host(config.waiide_host)
    return ReadyCheck(f"http://{host}:{config.waiide_port}{config.waiide_ready_path}")


def waiide_env(config: SupervisorConfig) -> dict[str, str]:
    """The user's environment, plus where the built-in extension reports use (and its secret)."""
    env = user_env(config, WAIIDE_HIDDEN_VARS)
    env[ACTIVITY_URL_VAR] = config.local_url(config.api_port, IDE_REPORT_PATH)
    env[ACTIVITY_SECRET_VAR] = config.activity_secret
    return env


def waiide_spec(config: SupervisorConfig) -> ChildSpec:
    """The IDE: WAIIDE_COMMAND, or the code-server installed by scripts/setup.sh."""
    return ChildSpec(
        name="waiide",
        argv=config.waiide_argv,
        env=ide_env(config, waiide_env(config)),
        ready=waiide_ready_check(config),
        ready_timeout_s=config.waiide_ready_timeout_s,
        stop_timeout_s=config.stop_timeout_s,
        restart=config.restart,
        hint=SETUP_HINT if config.waiide_default_command else "",
        stale_sockets=(config.waiide_socket,) if config.waiide_socket else (),
        # A hung IDE (deadlock, SIGSTOP) keeps its port open and answers nothing: restart it.
        liveness=config.liveness,
    )


def gateway_spec(config: SupervisorConfig, env: Mapping[str, str]) -> ChildSpec:
    """The gateway; any answer on /api/healthz means ready, and it is probed while it runs."""
    return ChildSpec(
        name="gateway",
        argv=config.gateway_argv,
        env=env,
        ready=ReadyCheck(config.local_url(config.api_port, GATEWAY_HEALTH_PATH)),
        ready_timeout_s=config.ready_timeout_s,
        stop_timeout_s=config.stop_timeout_s,
        restart=config.restart,
        liveness=config.liveness,
        term_leader_only=True,  # Sanic's main stops its workers and manager in order
        **_own_component(config, config.gateway_argv, "gateway"),
    )


def monitor_spec(config: SupervisorConfig, env: Mapping[str, str]) -> ChildSpec:
    """The monitor; ready once the gateway serves its first record (see `_record_check`)."""
    return ChildSpec(name="monitor", argv=config.monitor_argv, env=env,
                     ready=_record_check(config), ready_timeout_s=config.ready_timeout_s,
                     stop_timeout_s=config.stop_timeout_s, restart=config.restart,
                     **_own_component(config, config.monitor_argv, "monitor"))


def _is_own(config: SupervisorConfig, argv: tuple[str, ...], module: str) -> bool:
    """The child is this product's `python -m <module>` (not a stand-in command)."""
    return argv == (config.python, "-m", module)


def _own_component(config: SupervisorConfig, argv: tuple[str, ...],
                   module: str) -> dict[str, Any]:
    """Our own gateway or monitor: settings checked before any start, exit 2 never restarted."""
    if not _is_own(config, argv, module):
        return {}
    return {"check_argv": (*argv, "--check-config"), "config_exit": True}


def _record_check(config: SupervisorConfig) -> ReadyCheck | None:
    """GET /api/status until it carries a known status: the monitor wrote its first record and
    the gateway's workers read it. Only our own gateway and monitor speak this contract."""
    if not (_is_own(config, config.gateway_argv, "gateway")
            and _is_own(config, config.monitor_argv, "monitor")):
        return None
    return ReadyCheck(config.local_url(config.api_port, STATUS_PATH), owned=False,
                      known_status=True)


def build_specs(config: SupervisorConfig, paths: RunPaths,
                extra_args: Sequence[str] = ()) -> list[ChildSpec]:
    """All children of this mode, in start order (writes the Jupyter proxy config in full mode)."""
    services = service_env(config, paths)
    specs = [waiide_spec(config), gateway_spec(config, services)]
    if config.mode is Mode.FULL:
        specs.append(jupyter_spec(config, user_env(config), paths.jupyter_config_dir, extra_args))
    specs.append(monitor_spec(config, services))
    return specs
